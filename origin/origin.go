// Package origin is what the CDN pulls from: it packages every rendition of
// every stream of the hub into CMAF (origin/cmaf) and serves it as LL-HLS
// (origin/hls) under /cmaf/{id}/, plus the node time endpoint that LL-DASH
// UTCTiming points at. LL-DASH (origin/dash) and legacy HLS-TS (origin/ts)
// are mounted by the node next to it over the same Registry / hub.
//
// Lifecycle of a stream: the first publisher session creates the CMAF
// tracks; a publisher who leaves and comes back within EndGrace continues
// the same playlists (new init segment + EXT-X-DISCONTINUITY, numbering
// continues); after EndGrace the playlists end (EXT-X-ENDLIST) and stay
// downloadable for Linger, then the stream is gone (404). Numbering is
// persisted through State so that it also continues across node restarts.
//
// Players: hls.js keeps the PART-HOLD-BACK target (1 s by default) only
// if it may catch up after a slow start or a stall. Its defaults never do
// (maxLiveSyncPlaybackRate 1, no maximum latency, +1 s target per stall);
// the browser test plays with {lowLatencyMode: true,
// maxLiveSyncPlaybackRate: 1.5, liveSyncDuration: 0.6,
// liveMaxLatencyDuration: 2, liveSyncOnStallIncrease: 0}, which holds
// ~1 s glass-to-glass on loopback.
package origin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/httpx"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/origin/cmaf"
	"github.com/edgenode/edgenode/origin/hls"
)

// ConsumerName is the name the origin registers with the hub.
const ConsumerName = "origin"

// Config is the yaml section `origin`.
type Config struct {
	// Packager keys (part_target, segment_duration, window) live at the
	// top of the section.
	cmaf.Config `yaml:",inline"`
	// EndGrace: after the publisher leaves, how long to wait for a
	// reconnect before the playlists end (EXT-X-ENDLIST, static MPD).
	// Default 10s.
	EndGrace time.Duration `yaml:"end_grace"`
	// Linger: how long an ended stream stays downloadable. Default 60s.
	Linger time.Duration `yaml:"linger"`
	// MediaWait: how long a request for a hinted part or an in-progress
	// segment is held before 503. Default 3 × segment_duration.
	MediaWait time.Duration `yaml:"media_wait"`
	// HLS: LL-HLS playlist options (section origin.hls).
	HLS hls.Config `yaml:"hls"`
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	c.Config = c.Config.WithDefaults()
	if c.EndGrace == 0 {
		c.EndGrace = 10 * time.Second
	}
	if c.Linger == 0 {
		c.Linger = 60 * time.Second
	}
	if c.MediaWait == 0 {
		c.MediaWait = 3 * c.SegmentDuration
	}
	return c
}

// Validate checks c; errors name keys relative to the section.
func (c Config) Validate() error {
	d := c.WithDefaults()
	errs := []error{d.Config.Validate()}
	if c.EndGrace < 0 {
		errs = append(errs, errors.New("'end_grace' must not be negative"))
	}
	if c.Linger < 0 {
		errs = append(errs, errors.New("'linger' must not be negative"))
	}
	if c.MediaWait < 0 {
		errs = append(errs, errors.New("'media_wait' must not be negative"))
	}
	if err := c.HLS.Validate(d.PartTarget); err != nil {
		errs = append(errs, fmt.Errorf("hls: %w", err))
	}
	return errors.Join(errs...)
}

// State persists numbering (the node's store implements it).
type State = cmaf.State

// Deps are what the origin uses from the node.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer // may be nil
	Hub     *hub.Hub
	State   State // may be nil: numbering restarts with the process
	// Streams (optional) tells unknown streams (404 at once) from known
	// ones that are not live yet (held StartTimeout for a publisher that
	// is connecting). The node's stream store implements it.
	Streams Streams
	// AudioRendition (optional) names the hub rendition that carries only
	// the transcoder's AAC audio (hwenc.AudioRendition): HLS lists it as
	// the audio group of the source variant instead of the source's Opus,
	// never as a variant of its own.
	AudioRendition string
	// Ladders (optional) gives each stream's transcoding ladder: its bit
	// rates are the floor of the transcoded variants' BANDWIDTH before one
	// is measured. The hwenc Manager implements it.
	Ladders Ladders
}

// Ladders returns the transcoding ladder of a stream and the rungs its
// encoder makes now.
type Ladders interface {
	Ladder(id uint64) []media.Rendition
	Rungs(id uint64) []string
}

// Streams is the node's stream store, as ingest also uses it.
type Streams interface {
	LookupStream(id uint64) (key string, active bool, found bool, err error)
}

// Origin packages and serves streams. New has no side effects; Start
// attaches to the hub; Close detaches and waits for every goroutine.
type Origin struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	reg  *cmaf.Registry
	hls  *hls.Server

	streams prometheus.Gauge

	mu      sync.Mutex
	clocks  map[uint64]*streamClock // by stream id, while a packager runs
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	closed  bool
}

// New validates cfg and builds the origin.
func New(cfg Config, deps Deps) (*Origin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Hub == nil {
		return nil, ErrNoHub
	}
	cfg = cfg.WithDefaults()
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := cmaf.NewRegistry()
	hs, err := hls.New(cfg.HLS, reg, log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	hs.SetAudioRendition(deps.AudioRendition)
	if deps.Ladders != nil {
		// One rate cap per rung for HLS BANDWIDTH and DASH @bandwidth.
		reg.SetLadder(deps.Ladders.Ladder)
		reg.SetRungs(deps.Ladders.Rungs)
	}
	if deps.Streams != nil {
		hs.SetKnown(func(id uint64) bool {
			_, _, found, err := deps.Streams.LookupStream(id)
			return found || err != nil // on a store error, rather wait
		})
	}
	o := &Origin{
		cfg: cfg, deps: deps, log: log, reg: reg, hls: hs,
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgenode", Subsystem: "origin", Name: "renditions",
			Help: "Renditions being packaged (live or lingering).",
		}),
	}
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(o.streams); err != nil {
			return nil, fmt.Errorf("origin: metrics: %w", err)
		}
	}
	return o, nil
}

// Registry is the set of CMAF tracks, for LL-DASH and tests.
func (o *Origin) Registry() *cmaf.Registry { return o.reg }

// Config is the effective configuration (defaults applied).
func (o *Origin) Config() Config { return o.cfg }

// Start registers the hub consumer. Every (stream, rendition) gets a
// packager goroutine.
func (o *Origin) Start(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	if o.started {
		return nil
	}
	o.started = true
	o.ctx, o.cancel = context.WithCancel(context.WithoutCancel(ctx))
	o.deps.Hub.AddConsumer(ConsumerName, nil, o.consume)
	return nil
}

// consume runs under the hub's lock: only start a goroutine.
func (o *Origin) consume(key hub.Key, sub *hub.Subscription) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		go sub.Close() // not under the hub's lock, which consume runs in
		return
	}
	o.wg.Add(1)
	go o.run(key, sub)
}

// Close stops every packager and waits for them. Safe to call before
// Start and twice.
func (o *Origin) Close() error {
	o.mu.Lock()
	o.closed = true
	cancel := o.cancel
	o.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	o.wg.Wait()
	return nil
}

// streamClock is a stream's segment clock and how many packagers use it.
type streamClock struct {
	c    *cmaf.SegmentClock
	refs int
}

// clock returns the segment clock of stream id, shared by the packagers of
// all its renditions so that their segments line up (cmaf.SegmentClock);
// release it when done.
func (o *Origin) clock(id uint64) *cmaf.SegmentClock {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.clocks == nil {
		o.clocks = map[uint64]*streamClock{}
	}
	sc := o.clocks[id]
	if sc == nil {
		sc = &streamClock{c: cmaf.NewSegmentClock()}
		o.clocks[id] = sc
	}
	sc.refs++
	return sc.c
}

func (o *Origin) releaseClock(id uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if sc := o.clocks[id]; sc != nil {
		if sc.refs--; sc.refs <= 0 {
			delete(o.clocks, id)
		}
	}
}

// run feeds one subscription into one packager until the stream ended and
// lingered, or the origin closes.
func (o *Origin) run(key hub.Key, sub *hub.Subscription) {
	defer o.wg.Done()
	defer sub.Close()
	o.streams.Inc()
	defer o.streams.Dec()
	log := o.log.With("stream", key.Stream, "rendition", key.Rendition)
	p := cmaf.NewPackager(o.cfg.Config, key, o.reg, o.deps.State, log)
	p.SetClock(o.clock(key.Stream))
	defer o.releaseClock(key.Stream)
	defer p.Remove()

	const (
		live = iota
		grace
		ended
	)
	phase := live
	var deadline time.Time
	for {
		ctx := o.ctx
		var cancel context.CancelFunc = func() {}
		if phase != live {
			ctx, cancel = context.WithDeadline(o.ctx, deadline)
		}
		ev, err := sub.Next(ctx)
		cancel()
		if err != nil {
			if o.ctx.Err() != nil || errors.Is(err, hub.ErrClosed) {
				// Shutting down: complete the segment in progress and save
				// where the media ended, so a restart continues exactly.
				p.EndSession()
				return
			}
			switch phase {
			case grace:
				log.Info("origin: publisher gone, ending playlists")
				p.Finish()
				phase, deadline = ended, time.Now().Add(o.cfg.Linger)
			case ended:
				return
			}
			continue
		}
		switch ev.Kind {
		case hub.SessionStart:
			if err := p.StartSession(ev.Session); err != nil {
				log.Warn("origin: cannot package session", "err", err)
				continue
			}
			phase = live
		case hub.AccessUnit:
			if phase != live {
				continue
			}
			if err := p.WriteAU(ev.Track, ev.AU, ev.Missed); err != nil {
				log.Debug("origin: access unit dropped", "err", err)
			}
		case hub.SessionEnd:
			p.EndSession()
			if phase == live {
				phase, deadline = grace, time.Now().Add(o.cfg.EndGrace)
			}
		}
	}
}

// RegisterRoutes mounts the LL-HLS playlists, the CMAF media objects and
// GET /time.
func (o *Origin) RegisterRoutes(mux *http.ServeMux) {
	o.hls.RegisterRoutes(mux)
	o.reg.RegisterRoutes(mux, o.cfg.MediaWait)
	mux.HandleFunc("GET /time", ServeTime)
	mux.HandleFunc("OPTIONS /time", httpx.Preflight)
}

// TimePath is the node time endpoint for DASH UTCTiming
// (urn:mpeg:dash:utc:http-iso:2014).
const TimePath = "/time"

// ServeTime answers the current UTC time as ISO 8601 with milliseconds
// (DASH-IF IOP: http-iso), uncacheable, with CORS.
func ServeTime(w http.ResponseWriter, _ *http.Request) {
	httpx.SetCORS(w.Header())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(time.Now().UTC().Format("2006-01-02T15:04:05.000Z")))
}
