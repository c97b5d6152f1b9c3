package mediatest

import (
	"context"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
)

// TestPlayLive: the stream arrives in real time, the publisher closes at
// its end, and a test that ends first stops it.
func TestPlayLive(t *testing.T) {
	s := Generate(t, Options{Pieces: []Piece{{Width: 160, Height: 90, Duration: time.Second}}})
	h := hub.New(0)
	key := hub.Key{Stream: 1, Rendition: hub.Source}
	sub := h.Subscribe(key, "t")
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	s.PlayLive(t, ctx, h, key, PlayOptions{})
	n := 0
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == hub.AccessUnit {
			n++
		}
		if ev.Kind == hub.SessionEnd {
			break
		}
	}
	if took := time.Since(t0); n != len(s.Samples) || took < s.Duration*8/10 {
		t.Errorf("%d of %d access units in %v: want all, in real time (%v)", n, len(s.Samples), took, s.Duration)
	}

	// A test that ends before the stream does stops its publisher.
	long := Generate(t, Options{Pieces: []Piece{{Width: 160, Height: 90, Duration: 20 * time.Second}}})
	key2 := hub.Key{Stream: 2, Rendition: hub.Source}
	t.Run("stopped", func(t *testing.T) { long.PlayLive(t, ctx, h, key2, PlayOptions{}) })
	if h.Live(key2) {
		t.Errorf("publisher still live after its test ended")
	}
}
