package hub

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func au(i int64) *media.AccessUnit {
	return &media.AccessUnit{Codec: media.CodecH264, PTS: i, DTS: i, Key: i == 0}
}

func next(t *testing.T, s *Subscription) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

func TestSecondPublisherIsBusy(t *testing.T) {
	h := New(0)
	k := Key{1, Source}
	p, err := h.Publish(k, Session{ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(k, Session{ID: "b"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Publish: %v, want ErrBusy", err)
	}
	if !h.Live(k) {
		t.Fatal("not live")
	}
	p.Close()
	p.Close() // twice is fine
	if h.Live(k) {
		t.Fatal("still live after Close")
	}
	p2, err := h.Publish(k, Session{ID: "c"})
	if err != nil {
		t.Fatalf("publish after close: %v", err)
	}
	p2.Close()
}

// A slow subscriber loses access units, is told how many, and never blocks
// the publisher or a fast subscriber; session events always arrive.
func TestSlowSubscriberDropsAndIsTold(t *testing.T) {
	h := New(4)
	k := Key{7, Source}
	slow := h.Subscribe(k, "slow")
	fast := h.Subscribe(k, "fast")
	defer slow.Close()
	defer fast.Close()
	p, err := h.Publish(k, Session{ID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	got := 0
	go func() {
		defer wg.Done()
		for {
			ev, err := fast.Next(context.Background())
			if err != nil || ev.Kind == SessionEnd {
				return
			}
			if ev.Kind == AccessUnit {
				got++
			}
		}
	}()
	for i := int64(0); i < 10; i++ {
		p.WriteAU(0, au(i))
		for fast.queued() > 0 { // let the fast reader keep up
			time.Sleep(time.Millisecond)
		}
	}
	p.Close()
	wg.Wait()
	if got != 10 {
		t.Errorf("fast subscriber got %d AUs, want 10", got)
	}

	if ev := next(t, slow); ev.Kind != SessionStart {
		t.Fatalf("slow first event %v", ev.Kind)
	}
	for i := int64(0); i < 4; i++ {
		ev := next(t, slow)
		if ev.Kind != AccessUnit || ev.AU.DTS != i || ev.Missed != 0 {
			t.Fatalf("slow event %d = %+v", i, ev)
		}
	}
	ev := next(t, slow)
	if ev.Kind != SessionEnd || ev.Missed != 6 {
		t.Fatalf("after overflow: kind %v missed %d, want SessionEnd with 6 missed", ev.Kind, ev.Missed)
	}
	if slow.Dropped() != 6 {
		t.Fatalf("Dropped = %d", slow.Dropped())
	}
}

func (s *Subscription) queued() int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return len(s.q)
}

// Consumers get one Subscription per key, across publisher sessions, and
// only for keys they match.
func TestConsumerSeesReconnects(t *testing.T) {
	h := New(0)
	type handed struct {
		key Key
		sub *Subscription
	}
	ch := make(chan handed, 4)
	h.AddConsumer("transcoder", func(k Key) bool { return k.Rendition == Source }, func(k Key, s *Subscription) {
		ch <- handed{k, s}
	})
	src := Key{3, Source}
	p, _ := h.Publish(src, Session{ID: "one"})
	r, _ := h.Publish(Key{3, "720p"}, Session{ID: "r"})
	defer r.Close()
	c := <-ch
	if c.key != src {
		t.Fatalf("handed %v", c.key)
	}
	p.WriteAU(0, au(0))
	p.Close()
	p2, _ := h.Publish(src, Session{ID: "two"})
	p2.Close()
	want := []struct {
		kind EventKind
		id   string
	}{{SessionStart, "one"}, {AccessUnit, ""}, {SessionEnd, "one"}, {SessionStart, "two"}, {SessionEnd, "two"}}
	for i, w := range want {
		ev := next(t, c.sub)
		if ev.Kind != w.kind || (w.id != "" && ev.Session.ID != w.id) {
			t.Fatalf("event %d = %v %+v, want %v %s", i, ev.Kind, ev.Session, w.kind, w.id)
		}
	}
	select {
	case extra := <-ch:
		t.Fatalf("consumer handed a second subscription for %v", extra.key)
	default:
	}
	c.sub.Close()
	if _, err := c.sub.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	// After closing, the next session hands a fresh subscription.
	p3, _ := h.Publish(src, Session{ID: "three"})
	defer p3.Close()
	c = <-ch
	if ev := next(t, c.sub); ev.Kind != SessionStart || ev.Session.ID != "three" {
		t.Fatalf("fresh subscription first event %+v", ev)
	}
	c.sub.Close()
}

func TestNextHonoursContext(t *testing.T) {
	h := New(0)
	s := h.Subscribe(Key{1, Source}, "x")
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v", err)
	}
}

func BenchmarkFanOut(b *testing.B) {
	h := New(1 << 20)
	k := Key{1, Source}
	var subs []*Subscription
	for _, n := range []string{"a", "b", "c"} {
		subs = append(subs, h.Subscribe(k, n))
	}
	p, _ := h.Publish(k, Session{})
	a := au(1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.WriteAU(0, a)
		if i%1000 == 999 {
			for _, s := range subs {
				s.hub.mu.Lock()
				s.q, s.aus = nil, 0
				s.hub.mu.Unlock()
			}
		}
	}
	p.Close()
	for _, s := range subs {
		s.Close()
	}
}

// A consumer that closes its subscription with a new session unread (its
// linger ran out as the presenter came back) is handed that session again;
// one that closes a subscription it never read (shutting down) is not.
func TestConsumerClosingOverUnreadSessionIsReattached(t *testing.T) {
	h := New(0)
	ch := make(chan *Subscription, 2)
	h.AddConsumer("origin", nil, func(_ Key, s *Subscription) { ch <- s })
	k := Key{9, Source}
	p, _ := h.Publish(k, Session{ID: "one"})
	first := <-ch
	next(t, first) // SessionStart "one"
	p.Close()
	next(t, first) // SessionEnd: the consumer lingers...
	p2, _ := h.Publish(k, Session{ID: "two"})
	defer p2.Close()
	first.Close() // ...and gives up just as "two" starts
	var again *Subscription
	select {
	case again = <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("consumer was not handed the unread session again")
	}
	if ev := next(t, again); ev.Kind != SessionStart || ev.Session.ID != "two" {
		t.Fatalf("reattached subscription starts with %+v", ev)
	}
	// A consumer shutting down closes a fresh subscription unread: once.
	p2.Close()
	again.Close()
	p3, _ := h.Publish(k, Session{ID: "three"})
	defer p3.Close()
	fresh := <-ch
	fresh.Close()
	select {
	case s := <-ch:
		t.Fatalf("closed unread subscription handed again: %p", s)
	case <-time.After(100 * time.Millisecond):
	}
}
