package hwenc

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	info      *prometheus.GaugeVec
	available *prometheus.GaugeVec
	chosen    *prometheus.GaugeVec
	restarts  *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
	sessions  prometheus.Gauge
	frames    *prometheus.CounterVec
	latency   prometheus.Histogram
	outLag    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "edgenode", Subsystem: "hwenc", Name: "plugin_info",
			Help: "Always 1: each probed plugin with its encoder and, when unusable, the reason.",
		}, []string{"plugin", "available", "encoder", "reason"}),
		available: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "edgenode", Subsystem: "hwenc", Name: "plugin_available",
			Help: "1 when the encoder plugin probed usable on this machine.",
		}, []string{"plugin"}),
		chosen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "edgenode", Subsystem: "hwenc", Name: "plugin_chosen",
			Help: "1 for the plugin new streams are transcoded with.",
		}, []string{"plugin"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgenode", Subsystem: "hwenc", Name: "restarts_total",
			Help: "Encoder sessions restarted after a failure.",
		}, []string{"plugin"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgenode", Subsystem: "hwenc", Name: "fallbacks_total",
			Help: "Streams switched to x264 mid-stream because a hardware plugin kept failing.",
		}, []string{"from"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgenode", Subsystem: "hwenc", Name: "sessions",
			Help: "Encoder sessions running.",
		}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgenode", Subsystem: "hwenc", Name: "frames_total",
			Help: "Video frames published per rendition.",
		}, []string{"rendition"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "edgenode", Subsystem: "hwenc", Name: "latency_seconds",
			Help:    "Time from a source access unit entering the encoder to its rendition frame coming out.",
			Buckets: []float64{.01, .025, .05, .075, .1, .15, .2, .3, .5, .75, 1, 2, 5},
		}),
		// The lag a player's latency cannot go under: the source's
		// date to the encoder's frame (video: every rung's; audio: the
		// AAC, silence left out), against ingest's arrival_lag_seconds.
		outLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "edgenode", Subsystem: "hwenc", Name: "output_lag_seconds",
			Help:    "Time from a source access unit's date (its capture time) to the encoder's output of it reaching the node.",
			Buckets: []float64{.01, .025, .05, .075, .1, .15, .2, .3, .4, .5, .75, 1, 1.5, 2, 3, 5},
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.info, m.available, m.chosen, m.restarts, m.fallbacks, m.sessions, m.frames, m.latency, m.outLag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
