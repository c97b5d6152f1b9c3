package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ingest's Prometheus series. Per-stream series carry the
// label stream="<id>"; gauges of a stream are removed when its session ends.
type metrics struct {
	sessions   prometheus.Gauge
	requests   *prometheus.CounterVec // method, code
	postTime   prometheus.Histogram
	connected  *prometheus.GaugeVec     // stream
	width      *prometheus.GaugeVec     // stream
	height     *prometheus.GaugeVec     // stream
	fps        *prometheus.GaugeVec     // stream
	bitrate    *prometheus.GaugeVec     // stream, kind
	keyint     *prometheus.GaugeVec     // stream
	rtt        *prometheus.GaugeVec     // stream
	lost       *prometheus.CounterVec   // stream, kind
	nacks      *prometheus.CounterVec   // stream, kind
	plis       *prometheus.CounterVec   // stream
	frames     *prometheus.CounterVec   // stream, kind
	bframes    *prometheus.CounterVec   // stream
	resChanges *prometheus.CounterVec   // stream
	arrival    *prometheus.HistogramVec // kind
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "edgenode", "ingest"
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "sessions",
			Help: "Live WHIP publisher sessions."}),
		requests: c("whip_requests_total", "WHIP HTTP requests by method and status code.", "method", "code"),
		postTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "whip_post_seconds", Help: "Time from a WHIP POST to its 201 answer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		connected:  g("publisher_connected", "1 while the stream's publisher is connected (ICE+DTLS up).", "stream"),
		width:      g("video_width_pixels", "Coded width of the published video.", "stream"),
		height:     g("video_height_pixels", "Coded height of the published video.", "stream"),
		fps:        g("video_fps", "Frames per second of the published video.", "stream"),
		bitrate:    g("bitrate_bps", "Received media bitrate in bit/s.", "stream", "kind"),
		keyint:     g("keyframe_interval_seconds", "Media time between the last two IDR frames.", "stream"),
		rtt:        g("rtt_seconds", "Round-trip time to the publisher (ICE consent checks).", "stream"),
		lost:       c("packets_lost_total", "RTP packets lost (after reordering and retransmission).", "stream", "kind"),
		nacks:      c("nacks_total", "RTP packets NACKed (retransmission requested).", "stream", "kind"),
		plis:       c("plis_sent_total", "RTCP PLIs sent to ask for a keyframe.", "stream"),
		frames:     c("frames_total", "Access units handed to the hub.", "stream", "kind"),
		bframes:    c("bframes_total", "Access units detected as B-frames.", "stream"),
		resChanges: c("resolution_changes_total", "Changes of the coded video size.", "stream"),
		// Where a stream's latency goes: the publisher's side (capture,
		// encode, network, retransmission, reordering) against the
		// encoder's (hwenc output_lag_seconds) and the players'.
		arrival: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "arrival_lag_seconds",
			Help: "Time from an access unit's date (the publisher's capture clock from RTCP sender reports, " +
				"anchored at the session's first packet) to its hand-over to the hub.",
			Buckets: lagBuckets}, []string{"kind"}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{m.sessions, m.requests, m.postTime, m.connected, m.width,
			m.height, m.fps, m.bitrate, m.keyint, m.rtt, m.lost, m.nacks, m.plis, m.frames, m.bframes, m.resChanges, m.arrival} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("ingest: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// lagBuckets are the histogram buckets of the lag series (seconds), as
// hwenc's output_lag_seconds: fine below half a second, where a healthy
// stream is.
var lagBuckets = []float64{.01, .025, .05, .075, .1, .15, .2, .3, .4, .5, .75, 1, 1.5, 2, 3, 5}

// forget removes the gauges of a stream whose session ended.
func (m *metrics) forget(stream string) {
	for _, g := range []*prometheus.GaugeVec{m.width, m.height, m.fps, m.keyint, m.rtt} {
		g.DeleteLabelValues(stream)
	}
	m.bitrate.DeleteLabelValues(stream, "video")
	m.bitrate.DeleteLabelValues(stream, "audio")
	m.connected.WithLabelValues(stream).Set(0)
}
