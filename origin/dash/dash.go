// Package dash serves LL-DASH: /cmaf/{id}/index.mpd, a dynamic MPD over
// the same CMAF segments that LL-HLS lists (origin/cmaf), so that a CDN
// caches one copy of the media for both formats.
//
// What the MPD carries (DASH-IF IOP v5 low latency, DVB A168; SPECS.md
// § LL-DASH):
//   - UTCTiming (urn:mpeg:dash:utc:http-iso:2014) pointing at the node's
//     own time endpoint, so players never ask an internet time server;
//   - SegmentTemplate with $Number$ (the LL-HLS media sequence number) and
//     a SegmentTimeline from the segments' tfdt and durations, listing the
//     segment being written;
//   - availabilityTimeOffset = segment duration − part duration and
//     availabilityTimeComplete=false: a segment may be requested as soon as
//     its first chunk exists, and origin/cmaf streams it with chunked
//     transfer as its parts are written;
//   - ServiceDescription (Latency@target/min/max in ms, PlaybackRate),
//     ProducerReferenceTime (type encoder) with a UTCTiming identical to the
//     MPD's, minimumUpdatePeriod, suggestedPresentationDelay,
//     timeShiftBufferDepth, maxSegmentDuration;
//   - one Period per discontinuity of the source rendition (new init
//     segment after an SPS change or a reconnect), anchored at the wall
//     clock of its first segment, so that a publisher's gap shows as a gap
//     between periods and latency stays measurable; availabilityStartTime
//     is the wall clock of media time 0, so that Period@start is the
//     Period's presentationTimeOffset and presentation time is media time
//     (the ProducerReferenceTime then dates frames alike in dash.js and
//     Shaka Player, which ignores Period@start and PTO there; http.go
//     periods);
//   - an MPD request while the window is only a stream's (short) first
//     segment is held until that segment is complete, so that players
//     that reload once a second, as dash.js does, start with the next
//     segment already listed (http.go holdForSegment);
//   - Location: each live MPD names its next version, index.mpd?next=N
//     (N: the segment after its newest), a URL the node holds until every
//     track lists segment N; players follow it for their updates, so a
//     CDN caches and coalesces one answer per segment and players learn of
//     each segment as it starts (http.go holdForNext, docs/cdn.md rule 7);
//   - a static MPD once the stream has ended.
package dash

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/httpx"
	"github.com/edgenode/edgenode/origin/cmaf"
)

// MPDName is the manifest's file name under /cmaf/{id}/.
const MPDName = "index.mpd"

// Config of LL-DASH (the `origin.dash` section).
type Config struct {
	// TargetLatency is the ServiceDescription Latency@target and the
	// suggestedPresentationDelay. Default 1s. Shaka Player keeps within
	// half a second of Latency@target (its liveSync tolerance): at 1.5 s
	// it played 1.9 s behind. dash.js, which takes Latency@target unless
	// given a liveDelay, needs 1.5 s (origin/player Config.TargetLatency,
	// docs/players.md).
	TargetLatency time.Duration `yaml:"target_latency"`
	// MinimumUpdatePeriod tells players how often to reload the MPD.
	// Default 0: the segment target duration of the stream.
	MinimumUpdatePeriod time.Duration `yaml:"minimum_update_period"`
	// UTCTimingURL is the absolute URL players read the time from. Default
	// empty: <scheme>://<host>/time of the MPD request (honouring
	// X-Forwarded-Proto and X-Forwarded-Host from a CDN).
	UTCTimingURL string `yaml:"utc_timing_url"`
	// TimePath is the node's time endpoint used for the default
	// UTCTimingURL. Default "/time".
	TimePath string `yaml:"time_path"`
	// FirstSegmentWait: an MPD asked for before the stream is live or
	// before its first part exists waits this long for it (a player
	// started before the publisher gets an MPD as soon as the first part
	// is written). Default 3s.
	FirstSegmentWait time.Duration `yaml:"first_segment_wait"`
}

// Validate checks c; errors name the key relative to this section.
func (c Config) Validate() error {
	if c.TargetLatency < 0 || c.TargetLatency > time.Minute {
		return fmt.Errorf("%w: 'target_latency' must be 0..1m", ErrConfig)
	}
	if c.MinimumUpdatePeriod < 0 || c.MinimumUpdatePeriod > time.Minute {
		return fmt.Errorf("%w: 'minimum_update_period' must be 0..1m", ErrConfig)
	}
	if c.UTCTimingURL != "" && !strings.HasPrefix(c.UTCTimingURL, "http://") && !strings.HasPrefix(c.UTCTimingURL, "https://") {
		return fmt.Errorf("%w: 'utc_timing_url' must be an absolute http(s) URL", ErrConfig)
	}
	if c.TimePath != "" && !strings.HasPrefix(c.TimePath, "/") {
		return fmt.Errorf("%w: 'time_path' must start with /", ErrConfig)
	}
	if c.FirstSegmentWait < 0 || c.FirstSegmentWait > time.Minute {
		return fmt.Errorf("%w: 'first_segment_wait' must be 0..1m", ErrConfig)
	}
	return nil
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.TargetLatency == 0 {
		c.TargetLatency = time.Second
	}
	if c.TimePath == "" {
		c.TimePath = "/time"
	}
	if c.FirstSegmentWait == 0 {
		c.FirstSegmentWait = 3 * time.Second
	}
	return c
}

// Server renders MPDs over a cmaf.Registry.
type Server struct {
	cfg      Config
	reg      *cmaf.Registry
	log      *slog.Logger
	requests *prometheus.CounterVec

	mu      sync.Mutex
	streams map[uint64]*anchors
	inits   map[initKey]videoInfo

	known func(uint64) bool // nil: every id may appear
}

// SetKnown installs a check for stream ids that exist at all: MPD requests
// for other ids get 404 at once; known ones that are not live yet are held
// up to FirstSegmentWait for their publisher. Without it every id is held.
// Call before serving.
func (s *Server) SetKnown(f func(id uint64) bool) { s.known = f }

// anchors remembers, per stream, where each Period starts, so that a
// Period keeps its start across MPD updates after its first segment left
// the window.
type anchors struct {
	periods map[uint64]anchor // by discontinuity sequence of the source track
	seen    time.Time
	astTime time.Time
}

func (a *anchors) ast() time.Time { return a.astTime }

type anchor struct {
	wall  time.Time // Period@start (wall clock of its first segment)
	media float64   // media time (s) of the Period's start on the tracks' timeline
}

// New validates cfg and returns a Server over reg. metrics may be nil.
// It has no side effects.
func New(cfg Config, reg *cmaf.Registry, metrics prometheus.Registerer, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, fmt.Errorf("%w: nil registry", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg.WithDefaults(), reg: reg, log: log, streams: map[uint64]*anchors{}, inits: map[initKey]videoInfo{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgenode", Subsystem: "origin_dash", Name: "mpd_requests_total",
			Help: "MPD requests by status code.",
		}, []string{"code"}),
	}
	if metrics != nil {
		if err := metrics.Register(s.requests); err != nil {
			return nil, fmt.Errorf("dash: metrics: %w", err)
		}
	}
	return s, nil
}

// Start does nothing: MPDs are rendered on request from the registry.
func (s *Server) Start(context.Context) error { return nil }

// Close does nothing; see Start.
func (s *Server) Close() error { return nil }

// RegisterRoutes adds GET/HEAD /cmaf/{id}/index.mpd and its CORS
// preflight. The media objects the MPD references are served by
// cmaf.Registry.RegisterRoutes, the time endpoint by the origin.
func (s *Server) RegisterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /cmaf/{id}/"+MPDName, s.serveMPD)
	mux.HandleFunc("OPTIONS /cmaf/{id}/"+MPDName, httpx.Preflight)
}
