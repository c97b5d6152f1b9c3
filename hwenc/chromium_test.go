package hwenc_test

// End to end from a real browser: this test imports ingest only to get a
// Chromium publisher into the hub; hwenc itself never depends on ingest.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

type oneStream struct{}

func (oneStream) LookupStream(id uint64) (string, bool, bool, error) {
	return "secret", true, id == 42, nil
}

// TestChromiumRampThroughLadder: Chromium publishes through WHIP while it
// ramps its resolution up; every rung appears once the source is at least
// as tall, never before; each keeps its size through the source's steps;
// its keyframes are exactly the source's keyframes and its frames exactly
// the source's frames over the stretch it covers.
func TestChromiumRampThroughLadder(t *testing.T) {
	e := start(t, hwenc.Config{Mode: hwenc.ModeX264})
	ing, err := ingest.New(ingest.Config{UDPPort: -1, TCPPort: -1, DisableTCP: true},
		ingest.Deps{Logger: testLogger(t), Hub: e.hub, Streams: oneStream{}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := ing.Start(sctx); err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	mux := http.NewServeMux()
	ing.RegisterRoutes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	key := func(r string) hub.Key { return hub.Key{Stream: 42, Rendition: r} }
	src := watch(t, e.hub, key(hub.Source))
	rungs := map[string]*rendition{}
	for _, r := range hwenc.DefaultLadder()[1:] {
		rungs[r.Name] = watch(t, e.hub, key(r.Name))
	}

	b := browsertest.Start(t, browsertest.Options{FakeCameraFPS: 30})
	tab := b.Tab(t)
	ctx, cancel := context.WithTimeout(tab, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/live/42_secret")); err != nil {
		t.Fatal(err)
	}
	waitPage(ctx, t, tab, "ready")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("golive"))); err != nil {
		t.Fatal(err)
	}
	waitPage(ctx, t, tab, "live")
	// Let Chromium ramp and the ladder follow, then end the session: the
	// renditions are flushed and closed with it.
	top := hwenc.DefaultLadder()[1].Name
	waitFor(t, top+" or 15 s", func() bool { return rungs[top].n.Load() >= 90 || src.n.Load() >= 15*30 })
	if !ing.Kick(42) {
		t.Fatal("kick: no session")
	}
	wait(t, src, "source")
	for n, r := range rungs {
		wait(t, r, n)
	}

	// The tallest picture the source sent decides which rungs may exist.
	maxH := 0
	keys := map[int64]bool{}
	var srcPTS []int64
	for _, au := range src.video {
		if _, h, ok := size(au); ok {
			maxH = max(maxH, h)
		}
		keys[au.PTS] = au.Key
		srcPTS = append(srcPTS, au.PTS)
	}
	t.Logf("source: %d frames, tallest %dp", len(src.video), maxH)
	for _, lr := range hwenc.DefaultLadder()[1:] {
		r := rungs[lr.Name]
		if lr.Height > maxH {
			if r.sess != nil {
				t.Errorf("%s published for a source of at most %dp (upscaled)", lr.Name, maxH)
			}
			continue
		}
		if len(r.video) < 20 {
			t.Errorf("%s: only %d frames for a %dp source", lr.Name, len(r.video), maxH)
			continue
		}
		checkSize(t, lr.Name, r.video, lr.Width, lr.Height)
		if r.sess.Tracks[0].Width != lr.Width || r.sess.Tracks[1].Codec != media.CodecAAC {
			t.Errorf("%s: tracks %+v", lr.Name, r.sess.Tracks)
		}
		first, last := r.video[0].PTS, r.video[len(r.video)-1].PTS
		var want []int64
		for _, p := range srcPTS {
			if p >= first && p <= last {
				want = append(want, p)
			}
		}
		got := ptsOf(r.video, false, 0)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d frames over [%d, %d], the source has %d there", lr.Name, len(got), first, last, len(want))
		}
		nkeys := 0
		for _, au := range r.video {
			if au.Key != keys[au.PTS] {
				t.Errorf("%s: frame at %d key=%v, source key=%v", lr.Name, au.PTS, au.Key, keys[au.PTS])
				break
			}
			if au.Key {
				nkeys++
			}
		}
		t.Logf("%s: %d frames, %d keyframes, %d AAC frames, from %.1f s", lr.Name, len(r.video), nkeys, len(r.audio), float64(first-srcPTS[0])/90000)
	}
}

func waitPage(ctx context.Context, t *testing.T, tab context.Context, want string) {
	t.Helper()
	for {
		st, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.golive ? window.golive.status : ""`))
		if err == nil && st == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Go Live page status %q, want %q", st, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
