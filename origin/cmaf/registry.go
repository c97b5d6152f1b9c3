package cmaf

import (
	"context"
	"sort"
	"sync"

	"github.com/edgenode/edgenode/internal/media"
)

// Rendition is one rendition of a stream: a video track and, when the
// publisher sends audio, an audio track. Both are nil-safe to read through
// Stream.Rendition.
type Rendition struct {
	Name  string
	Video *Track // nil for an audio-only rendition
	Audio *Track // nil when there is no audio
}

// Tracks lists the non-nil tracks, video first.
func (r *Rendition) Tracks() []*Track {
	var ts []*Track
	if r.Video != nil {
		ts = append(ts, r.Video)
	}
	if r.Audio != nil {
		ts = append(ts, r.Audio)
	}
	return ts
}

// Track returns the track of kind k.
func (r *Rendition) Track(k Kind) *Track {
	switch k {
	case Video:
		return r.Video
	case Audio:
		return r.Audio
	}
	return nil
}

// Stream holds the renditions of one hub stream.
type Stream struct {
	ID uint64

	mu    sync.Mutex
	rends map[string]*Rendition
	// rateCap is the registry's RateCap for this stream.
	rateCap func(name string) int
}

// Renditions lists the renditions: the source first, then the rungs by
// their configured rate (RateCap), highest first, then the rest (the AAC)
// by name. An order that never changes while the renditions stay:
// ordered by measured bandwidth, as it was, the 360p and 480p rungs
// changed places in the MPD as soon as their first segments were
// measured, a second after a player's first MPD.
func (s *Stream) Renditions() []*Rendition {
	s.mu.Lock()
	rs := make([]*Rendition, 0, len(s.rends))
	for _, r := range s.rends {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	// One lookup per rendition, not per comparison: this runs on every
	// manifest request, and each lookup clones the stream's ladder.
	caps := make(map[string]int, len(rs))
	if s.rateCap != nil {
		for _, r := range rs {
			caps[r.Name] = s.rateCap(r.Name)
		}
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Name == "source" || rs[j].Name == "source" {
			return rs[i].Name == "source"
		}
		if ci, cj := caps[rs[i].Name], caps[rs[j].Name]; ci != cj {
			return ci > cj
		}
		return rs[i].Name < rs[j].Name
	})
	return rs
}

// Version sums the versions of every track of the stream: it changes
// whenever any of them changes (or a rendition comes or goes).
func (s *Stream) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := uint64(len(s.rends)) << 48
	for _, r := range s.rends {
		for _, t := range r.Tracks() {
			v += t.Version()
		}
	}
	return v
}

// Rendition returns rendition name.
func (s *Stream) Rendition(name string) (*Rendition, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rends[name]
	return r, ok
}

// Registry maps stream ids to Streams. Safe for concurrent use.
type Registry struct {
	mu      sync.Mutex
	streams map[uint64]*Stream
	added   chan struct{}                     // closed and replaced when a rendition is added
	ladder  func(id uint64) []media.Rendition // SetLadder; nil: none
	rungs   func(id uint64) []string          // SetRungs; nil: none
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{streams: map[uint64]*Stream{}, added: make(chan struct{})}
}

// WaitStream returns stream id, waiting for it to appear until ctx is
// done (then ok is false). Playlist requests use it so that a player
// that asks while a publisher (re)connects or the node restarts is held
// rather than failed.
func (r *Registry) WaitStream(ctx context.Context, id uint64) (*Stream, bool) {
	for {
		r.mu.Lock()
		s, ok := r.streams[id]
		ch := r.added
		r.mu.Unlock()
		if ok {
			return s, true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-ch:
		}
	}
}

// Stream returns stream id if any of its renditions is packaged.
func (r *Registry) Stream(id uint64) (*Stream, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.streams[id]
	return s, ok
}

// Lookup returns the track (stream, rendition, kind).
func (r *Registry) Lookup(id uint64, rendition string, k Kind) (*Track, bool) {
	s, ok := r.Stream(id)
	if !ok {
		return nil, false
	}
	rd, ok := s.Rendition(rendition)
	if !ok {
		return nil, false
	}
	t := rd.Track(k)
	return t, t != nil
}

// add installs rendition rd in stream id.
func (r *Registry) add(id uint64, rd *Rendition) {
	r.mu.Lock()
	s, ok := r.streams[id]
	if !ok {
		s = &Stream{ID: id, rends: map[string]*Rendition{}, rateCap: func(name string) int { return r.RateCap(id, name) }}
		r.streams[id] = s
	}
	s.mu.Lock()
	s.rends[rd.Name] = rd
	s.mu.Unlock()
	close(r.added)
	r.added = make(chan struct{})
	r.mu.Unlock()
}

// remove drops rendition name of stream id (and the stream with its last
// rendition).
func (r *Registry) remove(id uint64, name string, rd *Rendition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.streams[id]
	if !ok {
		return
	}
	s.mu.Lock()
	if s.rends[name] == rd {
		delete(s.rends, name)
	}
	empty := len(s.rends) == 0
	s.mu.Unlock()
	if empty {
		delete(r.streams, id)
	}
}
