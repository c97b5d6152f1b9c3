package dash_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/dash"
	"github.com/edgenode/edgenode/origin/player/playertest"
)

// TestDashJSPlays plays the LL-DASH stream with dash.js 5.2.1 in headless
// Chromium (through the player page), started right after the publisher,
// across resolution changes (each a new init segment and Period). It
// asserts function (low-latency mode detected from the MPD, playback
// advancing into the last resolution, no player error) and logs the
// latency dash.js reports; timing figures are for benchmarks, not
// assertions, on a shared 2-core machine.
func TestDashJSPlays(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	if browsertest.ExecPath() == "" {
		t.Skip("chromium not installed (Debian package chromium); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{
		{Width: 320, Height: 180, Duration: 2 * time.Second},
		{Width: 640, Height: 360, Duration: 2 * time.Second},
		{Width: 960, Height: 540, Duration: 8 * time.Second},
	}})
	e := start(t, origin.Config{}, dash.Config{}, 0)
	b := browsertest.Start(t, browsertest.Options{Lifetime: 180 * time.Second})
	bctx := b.Ctx // launched before the publisher: its start-up is not the player's

	// Five ramps, 60 s in all: enough for a slow (race-instrumented,
	// shared) machine to start the browser and play.
	stream.PlayLive(t, ctx, e.hub, hub.Key{Stream: 11, Rendition: hub.Source}, mediatest.PlayOptions{Loops: 5})

	if err := playertest.Open(bctx, e.url+"/player/11?format=ll-dash"); err != nil {
		t.Fatal(err)
	}
	last, seen, err := playertest.WaitPlaying(bctx, 14*time.Second, 50*time.Second)
	if err != nil {
		t.Fatalf("%v (%d polls)", err, len(seen))
	}
	ll, err := playertest.Eval[bool](bctx, `window.edgenodeLib.getLowLatencyModeEnabled()`)
	if err != nil || !ll {
		t.Errorf("dash.js did not switch to low-latency mode (availabilityTimeComplete=false): %v %v", ll, err)
	}
	prevStalls := 0
	for _, st := range seen {
		if st.Stalls != prevStalls {
			t.Logf("stall #%d at currentTime %.2f (buffer %.2f, latency %.2f)", st.Stalls, st.CurrentTime, st.Buffer, deref(st.LibLatency))
			prevStalls = st.Stalls
		}
	}
	var lats []float64
	for _, st := range seen {
		if st.Playing && st.LibLatency != nil {
			lats = append(lats, *st.LibLatency)
		}
	}
	slices.Sort(lats)
	if len(lats) == 0 {
		t.Fatalf("dash.js reported no latency while playing: %+v", last)
	}
	t.Logf("dash.js latency while playing: min %.2f s, median %.2f s, max %.2f s, last %.2f s; target %.2f s; first frame %.0f ms after load; stalls %d; %dx%d",
		lats[0], lats[len(lats)/2], lats[len(lats)-1], deref(last.LibLatency), deref(last.TargetLatency),
		deref(last.FirstFrameMs), last.Stalls, last.Width, last.Height)
	if len(last.Errors) != 0 {
		t.Errorf("player errors: %v", last.Errors)
	}
	maxW := 0
	for _, st := range seen {
		maxW = max(maxW, st.Width)
	}
	if maxW != 960 {
		t.Errorf("widest picture played %d, want 960 (the ramp's last step)", maxW)
	}
	if deref(last.TargetLatency) != 1.5 {
		t.Errorf("target latency %v, want the page's 1.5 s (not capped by a young stream's timeShiftBufferDepth)", deref(last.TargetLatency))
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}
