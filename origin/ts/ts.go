// Package ts serves legacy HLS with MPEG-TS segments for players that do
// not speak fMP4/LL-HLS (old set-top boxes, smart TVs, ffmpeg-based
// tools): /hls/{id}/master.m3u8, /hls/{id}/{rendition}/index.m3u8 and
// /hls/{id}/{rendition}/seg{n}.ts.
//
// It has its own hub consumer ("origin-ts") and its own MPEG-TS muxer
// (mediacommon's mpegts.Writer) per rendition: the CMAF packager's fMP4
// fragments cannot be reused in TS. Segments (default 2 s) start at IDRs
// (HLS §3.1.1 / Apple authoring spec: every TS segment starts with PAT, PMT
// and an IDR); one program; continuity counters run on across the
// segments of a publisher session. A new publisher session or a new SPS
// starts a segment marked EXT-X-DISCONTINUITY.
//
// Audio: Apple's and most TS players only decode AAC in TS. A rendition
// whose session carries AAC (the transcoder's renditions) gets it; Opus
// (what WebRTC publishers send) is left out by default — the segments are
// video-only — and carried as Opus-in-TS (ETSI TS 102 366 style, playable
// by ffmpeg/VLC, not by hls.js or Safari) only when Config.Opus is set.
// The transcoder's audio-only AAC rendition is the EXT-X-MEDIA audio group
// of the video variants that carry no audio; the multivariant playlist
// lists a variant only once its video and that audio both have a complete
// segment (players load it once: see playable).
//
// Media sequence and discontinuity sequence numbers are persisted through
// State so that a node restart or a reconnecting publisher continues them.
package ts

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/hub"
)

// ConsumerName is the name this package registers with the hub.
const ConsumerName = "origin-ts"

// Config of legacy HLS (the `origin.ts` section).
type Config struct {
	// SegmentDuration: a segment is cut at the first IDR at or after this
	// much media. Default 2s.
	SegmentDuration time.Duration `yaml:"segment_duration"`
	// Window is how much media the playlists list. Default 30s.
	Window time.Duration `yaml:"window"`
	// Grace: after the publisher leaves, how long to wait for a reconnect
	// before the playlists end with EXT-X-ENDLIST. Default 10s.
	Grace time.Duration `yaml:"grace"`
	// Linger: how long an ended stream stays downloadable. Default 60s.
	Linger time.Duration `yaml:"linger"`
	// Opus carries Opus audio in the segments when the rendition has no
	// AAC. Default false (video-only segments): hls.js and Apple players
	// cannot decode Opus in TS.
	Opus bool `yaml:"opus"`
	// BlockTimeout: a media playlist asked for before the first segment of
	// a live rendition is complete waits this long for it. Default 6s.
	BlockTimeout time.Duration `yaml:"block_timeout"`
}

// Validate checks c; errors name the key relative to this section.
func (c Config) Validate() error {
	if c.SegmentDuration != 0 && (c.SegmentDuration < 500*time.Millisecond || c.SegmentDuration > 30*time.Second) {
		return fmt.Errorf("%w: 'segment_duration' must be 0.5s..30s", ErrConfig)
	}
	d := c.WithDefaults()
	if c.Window < 0 || (c.Window != 0 && c.Window < 3*d.SegmentDuration) {
		return fmt.Errorf("%w: 'window' must be at least 3 × segment_duration", ErrConfig)
	}
	if c.Grace < 0 {
		return fmt.Errorf("%w: 'grace' must not be negative", ErrConfig)
	}
	if c.Linger < 0 {
		return fmt.Errorf("%w: 'linger' must not be negative", ErrConfig)
	}
	if c.BlockTimeout < 0 || c.BlockTimeout > time.Minute {
		return fmt.Errorf("%w: 'block_timeout' must be 0..1m", ErrConfig)
	}
	return nil
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.SegmentDuration == 0 {
		c.SegmentDuration = 2 * time.Second
	}
	if c.Window == 0 {
		c.Window = 30 * time.Second
	}
	if c.Grace == 0 {
		c.Grace = 10 * time.Second
	}
	if c.Linger == 0 {
		c.Linger = 60 * time.Second
	}
	if c.BlockTimeout == 0 {
		c.BlockTimeout = 6 * time.Second
	}
	return c
}

// Hub is what the server consumes of the stream hub (*hub.Hub).
type Hub interface {
	AddConsumer(name string, match func(hub.Key) bool, fn hub.Consumer)
}

// State persists numbering across restarts (the node's store implements
// it). GetState returns (nil, nil) for a missing key, the only answer
// that means "start from zero": any error is a failed read
// (ErrStateUnavailable).
type State interface {
	GetState(component, key string) ([]byte, error)
	PutState(component, key string, value []byte) error
}

// Server packages every published rendition into TS segments and serves
// them.
type Server struct {
	cfg   Config
	hub   Hub
	state State
	log   *slog.Logger
	m     *metrics

	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	started bool
	closed  bool
	streams map[uint64]*stream
	wg      sync.WaitGroup

	// changed is closed and replaced whenever any rendition changes
	// (appears, starts a session, completes a segment, ends).
	chMu    sync.Mutex
	changed chan struct{}

	known atomic.Pointer[func(uint64) bool] // nil: every id may appear
}

// SetKnown installs a check for stream ids that exist at all: master
// playlist requests for other ids get 404 at once; known ones that are not
// live yet are held up to BlockTimeout (a player opened before the
// publisher goes live), as LL-HLS and the MPD do.
func (s *Server) SetKnown(f func(id uint64) bool) { s.known.Store(&f) }

// changes returns a channel closed at the next change of any rendition.
func (s *Server) changes() <-chan struct{} {
	s.chMu.Lock()
	defer s.chMu.Unlock()
	return s.changed
}

// notify wakes everyone waiting on changes. Never blocks; safe under
// s.mu and any rendition's mu.
func (s *Server) notify() {
	s.chMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.chMu.Unlock()
}

type stream struct {
	id         uint64
	renditions map[string]*rendition
}

// New validates cfg and returns a Server. state and reg may be nil. It has
// no side effects.
func New(cfg Config, h Hub, state State, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil hub", ErrConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg: cfg.WithDefaults(), hub: h, state: state, log: log, m: m,
		streams: map[uint64]*stream{}, changed: make(chan struct{}),
	}, nil
}

// Start registers the hub consumer. Packaging runs until Close.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return nil
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.hub.AddConsumer(ConsumerName, nil, s.consume)
	return nil
}

// Close stops every packager and waits for them. Safe after a partial
// start and twice. The hub consumer stays registered (the hub has no
// removal) but closes every subscription it is handed from then on.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// consume runs under the hub's lock: only start a goroutine.
func (s *Server) consume(key hub.Key, sub *hub.Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		go sub.Close() // not under the hub's lock
		return
	}
	st, ok := s.streams[key.Stream]
	if !ok {
		st = &stream{id: key.Stream, renditions: map[string]*rendition{}}
		s.streams[key.Stream] = st
	}
	r, ok := st.renditions[key.Rendition]
	if !ok {
		r = newRendition(s, key)
		st.renditions[key.Rendition] = r
		s.notify()
	}
	r.runs++
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(r, sub)
	}()
}

// remove drops r from the index once it has lingered.
func (s *Server) remove(r *rendition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[r.key.Stream]
	if !ok || st.renditions[r.key.Rendition] != r {
		return
	}
	delete(st.renditions, r.key.Rendition)
	if len(st.renditions) == 0 {
		delete(s.streams, r.key.Stream)
	}
}

func (s *Server) lookup(id uint64, name string) (*rendition, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[id]
	if !ok {
		return nil, false
	}
	r, ok := st.renditions[name]
	return r, ok
}

func (s *Server) renditions(id uint64) []*rendition {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.streams[id]
	if !ok {
		return nil
	}
	out := make([]*rendition, 0, len(st.renditions))
	for _, r := range st.renditions {
		out = append(out, r)
	}
	return out
}
