package ts_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin/player/playertest"
	"github.com/edgenode/edgenode/origin/ts"
)

// TestHLSJSPlaysTS plays the legacy stream with hls.js in headless
// Chromium through the player page, across a resolution change.
func TestHLSJSPlaysTS(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	if browsertest.ExecPath() == "" {
		t.Skip("chromium not installed (Debian package chromium); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{
		{Width: 320, Height: 180, Duration: 3 * time.Second},
		{Width: 640, Height: 360, Duration: 21 * time.Second},
	}})
	e := start(t, ts.Config{}, hub.New(0), nil)
	b := browsertest.Start(t, browsertest.Options{Lifetime: 120 * time.Second})
	bctx := b.Ctx // launched before the publisher: its start-up is not the player's
	stream.PlayLive(t, ctx, e.hub, hub.Key{Stream: 9, Rendition: hub.Source}, mediatest.PlayOptions{})

	if err := playertest.Open(bctx, e.url+"/player/9?format=hls-ts"); err != nil {
		t.Fatal(err)
	}
	last, seen, err := playertest.WaitPlaying(bctx, 4*time.Second, 40*time.Second)
	if err != nil {
		t.Fatalf("%v (seen %d polls)", err, len(seen))
	}
	// Stalls depend on the machine's load: logged, not asserted.
	if last.Width != 640 || len(last.Errors) != 0 {
		t.Fatalf("status %+v", last)
	}
	if last.Latency == nil {
		t.Fatalf("no latency reported: %+v", last)
	}
	t.Logf("hls.js on TS: latency %.2f s, buffer %.2f s, first frame after %v ms, stalls %d", *last.Latency, last.Buffer, deref(last.FirstFrameMs), last.Stalls)
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}
