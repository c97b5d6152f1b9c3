package mediatest

import (
	"context"
	"fmt"
	"testing"

	"github.com/edgenode/edgenode/internal/hub"
)

// PlayLive publishes s as key on h and plays it in real time in the
// background (o.Realtime is implied), as a live publisher does; the
// publisher closes when the stream has played. Playback stops at the end
// of the test (or when ctx ends), and the end of the test waits for it, so
// no goroutine outlives the test. It fails the test if h refuses the
// publisher.
func (s *Stream) PlayLive(tb testing.TB, ctx context.Context, h *hub.Hub, key hub.Key, o PlayOptions) {
	tb.Helper()
	pub, err := h.Publish(key, hub.Session{ID: fmt.Sprintf("%s/%d/%s", tb.Name(), key.Stream, key.Rendition), Tracks: s.Tracks})
	if err != nil {
		tb.Fatalf("publish %v: %v", key, err)
	}
	o.Realtime = true
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Play(ctx, pub, o) // ends early only when ctx does
		pub.Close()
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
}
