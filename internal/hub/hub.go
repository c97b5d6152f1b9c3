// Package hub routes access units from the single publisher of each stream
// to every consumer of that stream (the origin's packagers, the transcoder).
//
// Ingest calls Publish when a WHIP session starts and writes access units
// into the returned Publisher. Consumers register once with AddConsumer; the
// hub hands each of them a Subscription the first time a stream is
// published. A Subscription outlives publisher sessions (a presenter who
// reconnects appears as SessionEnd followed by SessionStart on the same
// Subscription) until its consumer closes it.
//
// A slow subscriber never blocks the publisher or the other subscribers: its
// queue is bounded, access units that do not fit are dropped, and the next
// event it reads says how many it missed. Session events are never dropped.
package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/media"
)

// ErrBusy is returned by Publish when the stream already has a publisher.
var ErrBusy = errors.New("hub: stream already has a publisher")

// ErrClosed is returned by Subscription.Next after Close.
var ErrClosed = errors.New("hub: subscription closed")

// DefaultQueue is the number of access units a subscriber may fall behind
// before the hub drops for it (about 5 s of 30 fps video plus audio).
const DefaultQueue = 512

// EventKind tells what an Event carries.
type EventKind uint8

// Event kinds.
const (
	// SessionStart: a publisher began; Event.Session describes it.
	SessionStart EventKind = iota + 1
	// AccessUnit: Event.AU is the next unit of track Event.Track.
	AccessUnit
	// SessionEnd: the publisher left (cleanly or not).
	SessionEnd
)

// Session describes one publisher session of a stream.
type Session struct {
	// ID is unique per session (the WHIP resource id).
	ID string
	// Tracks lists the published tracks; Event.Track indexes it.
	Tracks []media.Track
	// Started is when the session began.
	Started time.Time
}

// Event is what a Subscription yields. Access units are shared between
// subscribers and must not be modified.
type Event struct {
	Kind    EventKind
	Session *Session
	Track   int
	AU      *media.AccessUnit
	// Missed counts access units dropped for this subscriber just before
	// this event because it fell behind. After a drop a video consumer must
	// wait for the next key frame.
	Missed uint64
}

// Source is the rendition name of what the publisher sends, untouched.
const Source = "source"

// Key names one rendition of one stream. Ingest publishes Key{ID, Source};
// the transcoder subscribes to that and publishes one Key per ladder rung.
type Key struct {
	Stream    uint64
	Rendition string
}

// Consumer is told about each rendition the first time it is published (and
// again after it closed its previous Subscription for that stream). It must
// not block and must not call the Hub (it runs under the hub's lock): it
// starts its own goroutine that reads sub.
type Consumer func(key Key, sub *Subscription)

// Hub is safe for concurrent use. The zero value is not usable; call New.
type Hub struct {
	mu        sync.Mutex
	streams   map[Key]*stream
	consumers []consumerEntry
	queue     int
}

type consumerEntry struct {
	name  string
	match func(Key) bool
	fn    Consumer
}

type stream struct {
	key     Key
	pub     *Publisher
	session *Session
	subs    map[string]*Subscription // by consumer name
}

// New returns a Hub whose subscriptions queue up to queue access units
// (DefaultQueue when queue <= 0).
func New(queue int) *Hub {
	if queue <= 0 {
		queue = DefaultQueue
	}
	return &Hub{streams: map[Key]*stream{}, queue: queue}
}

// AddConsumer registers fn under a unique name for every key that match
// accepts (every key when match is nil). Keys that are live at the time of
// the call are handed to fn at once.
func (h *Hub) AddConsumer(name string, match func(Key) bool, fn Consumer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := consumerEntry{name, match, fn}
	h.consumers = append(h.consumers, c)
	for _, s := range h.streams {
		if s.pub != nil {
			h.attachLocked(s, c)
		}
	}
}

// Subscribe returns a Subscription to key that is not tied to a
// registered consumer (tests, diagnostics). It sees sessions that start
// after the call, plus the current one if the stream is live. Close it when
// done.
func (h *Hub) Subscribe(key Key, name string) *Subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streamLocked(key)
	sub := h.newSubLocked(s, name)
	if s.session != nil {
		sub.push(Event{Kind: SessionStart, Session: s.session}, true)
	}
	return sub
}

func (h *Hub) streamLocked(key Key) *stream {
	s, ok := h.streams[key]
	if !ok {
		s = &stream{key: key, subs: map[string]*Subscription{}}
		h.streams[key] = s
	}
	return s
}

func (h *Hub) newSubLocked(s *stream, name string) *Subscription {
	sub := &Subscription{
		hub: h, stream: s, name: name, max: h.queue,
		notify: make(chan struct{}, 1),
	}
	if old, ok := s.subs[name]; ok {
		old.closeLocked()
	}
	s.subs[name] = sub
	return sub
}

func (h *Hub) attachLocked(s *stream, c consumerEntry) {
	if _, ok := s.subs[c.name]; ok {
		return
	}
	if c.match != nil && !c.match(s.key) {
		return
	}
	sub := h.newSubLocked(s, c.name)
	if s.session != nil {
		sub.push(Event{Kind: SessionStart, Session: s.session}, true)
	}
	c.fn(s.key, sub)
}

// Live reports whether key currently has a publisher.
func (h *Hub) Live(key Key) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.streams[key]
	return ok && s.pub != nil
}

// Publish starts a publisher session on key. It fails with ErrBusy when
// the key already has one.
func (h *Hub) Publish(key Key, sess Session) (*Publisher, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streamLocked(key)
	if s.pub != nil {
		return nil, ErrBusy
	}
	if sess.Started.IsZero() {
		sess.Started = time.Now()
	}
	p := &Publisher{hub: h, stream: s}
	s.pub = p
	s.session = &sess
	for _, sub := range s.subs {
		sub.push(Event{Kind: SessionStart, Session: s.session}, true)
	}
	for _, c := range h.consumers {
		h.attachLocked(s, c)
	}
	return p, nil
}

// Publisher writes one session's access units. Its methods are safe for
// concurrent use (audio and video tracks may be written from different
// goroutines).
type Publisher struct {
	hub    *Hub
	stream *stream
	closed bool
}

// WriteAU hands au (of track index track) to every subscriber. It never
// blocks on a subscriber. au must not be modified afterwards.
func (p *Publisher) WriteAU(track int, au *media.AccessUnit) {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	if p.closed {
		return
	}
	for _, sub := range p.stream.subs {
		sub.push(Event{Kind: AccessUnit, Track: track, AU: au}, false)
	}
}

// Close ends the session; subscribers see SessionEnd. Safe to call twice.
func (p *Publisher) Close() {
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	s := p.stream
	s.pub = nil
	sess := s.session
	s.session = nil
	for _, sub := range s.subs {
		sub.push(Event{Kind: SessionEnd, Session: sess}, true)
	}
	p.hub.gcLocked(s)
}

func (h *Hub) gcLocked(s *stream) {
	if s.pub == nil && len(s.subs) == 0 {
		delete(h.streams, s.key)
	}
}

// Subscription is one consumer's bounded view of a stream.
type Subscription struct {
	hub    *Hub
	stream *stream
	name   string
	max    int

	// guarded by hub.mu
	q      []Event
	aus    int
	missed uint64
	closed bool
	notify chan struct{}
	// Dropped counts every access unit dropped for this subscriber.
	dropped uint64
	// delivered counts events returned by Next.
	delivered uint64
}

func (s *Subscription) push(ev Event, control bool) {
	if s.closed {
		return
	}
	if !control {
		if s.aus >= s.max {
			s.missed++
			s.dropped++
			return
		}
		s.aus++
	}
	ev.Missed = s.missed
	s.missed = 0
	s.q = append(s.q, ev)
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Next returns the next event, waiting for one until ctx is done or the
// subscription is closed.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	for {
		s.hub.mu.Lock()
		if s.closed {
			s.hub.mu.Unlock()
			return Event{}, ErrClosed
		}
		if len(s.q) > 0 {
			ev := s.q[0]
			s.q[0] = Event{}
			s.q = s.q[1:]
			if ev.Kind == AccessUnit {
				s.aus--
			}
			if len(s.q) == 0 {
				s.q = nil
			}
			s.delivered++
			s.hub.mu.Unlock()
			return ev, nil
		}
		s.hub.mu.Unlock()
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-s.notify:
		}
	}
}

// Dropped is the total number of access units dropped for this subscriber.
func (s *Subscription) Dropped() uint64 {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.dropped
}

// Close detaches the subscription; a pending Next returns ErrClosed. The
// next session on the stream hands its consumer a new Subscription.
//
// A consumer that has been reading a Subscription and closes it with a new
// session still unread (its linger ended just as the presenter came back)
// is handed a fresh Subscription for that session, from another goroutine,
// so that the session is not missed and the consumer's callback never runs
// inside the caller's locks. A Subscription closed before anything was
// read from it (a consumer that is shutting down) is not handed again.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	missed := !s.closed && s.delivered > 0 && s.pendingStartLocked()
	s.closeLocked()
	st := s.stream
	if missed && st.pub != nil {
		for _, c := range h.consumers {
			if c.name == s.name {
				go func() {
					h.mu.Lock()
					defer h.mu.Unlock()
					if st.pub != nil && h.streams[st.key] == st {
						h.attachLocked(st, c)
					}
				}()
			}
		}
	}
	h.gcLocked(st)
}

func (s *Subscription) pendingStartLocked() bool {
	for _, ev := range s.q {
		if ev.Kind == SessionStart {
			return true
		}
	}
	return false
}

func (s *Subscription) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	s.q = nil
	if s.stream.subs[s.name] == s {
		delete(s.stream.subs, s.name)
	}
	close(s.notify)
}
