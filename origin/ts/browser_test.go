package ts_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin/player"
	"github.com/edgenode/edgenode/origin/player/playertest"
	"github.com/edgenode/edgenode/origin/ts"
)

// TestHLSJSPlaysTS plays the legacy stream with hls.js in headless
// Chromium through the player page, across a resolution change.
func TestHLSJSPlaysTS(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	if playertest.ChromiumPath() == "" {
		t.Skip("chromium not installed (Debian package chromium); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{
		{Width: 320, Height: 180, Duration: 3 * time.Second},
		{Width: 640, Height: 360, Duration: 21 * time.Second},
	}})
	h := hub.New(0)
	srv, err := ts.New(ts.Config{}, h, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pl, err := player.New(player.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.RegisterRoutes(mux)
	pl.RegisterRoutes(mux)
	mux.HandleFunc("GET /time", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()

	bctx := playertest.Browser(t, ctx) // launched before the publisher: its start-up is not the player's
	pub, err := h.Publish(hub.Key{Stream: 9, Rendition: hub.Source}, hub.Session{ID: "x", Tracks: stream.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	pctx, pcancel := context.WithCancel(ctx)
	defer func() { pcancel(); <-done }()
	go func() {
		done <- stream.Play(pctx, pub, mediatest.PlayOptions{Realtime: true})
		pub.Close()
	}()

	if err := playertest.Open(bctx, hs.URL+"/player/9?format=hls-ts"); err != nil {
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
