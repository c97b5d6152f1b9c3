package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/cpusteal"
	"github.com/edgenode/edgenode/origin/player/playertest"
)

// TestFallbackPlayersKeepPlaying is issue 6 acceptance 3's fault
// injection with a player: the vaapi plugin, built with the test-only fault
// switches, pretends to have a device and fails every session after 240
// frames; the node gives up on it mid-stream and encodes with x264, while
// hls.js (LL-HLS, ABR on) plays the stream from before the first failure to
// after the switch without an error and keeps up with the clock; the API
// and the master playlist show the x264 ladder afterwards.
func TestFallbackPlayersKeepPlaying(t *testing.T) {
	needEncoderE2E(t)
	// The plugins inherit the node's environment.
	t.Setenv("EDGENODE_FAULT_VAAPI_PRETEND", "1")
	t.Setenv("EDGENODE_FAULT_VAAPI_FAIL_AFTER", "240")
	dir := buildPlugins(t, "faultinject")
	n, token := startFullNode(t, hwenc.Config{PluginDir: dir, FallbackAfter: 2, RestartBackoff: 100 * time.Millisecond})
	s := createStream(t, n, token, "fallback")
	if enc := streamEncoder(t, n, token, s.ID); enc.Chosen != "vaapi" {
		t.Fatalf("chosen %q (%s), want the pretend vaapi", enc.Chosen, enc.Why)
	}

	steal := cpusteal.Start()
	b := browsertest.Start(t, browsertest.Options{FakeCameraFPS: 30, Lifetime: 4 * time.Minute})
	goLive(t, b.Tab(t), s.GoLiveURL)
	tab := b.Tab(t)
	if err := playertest.Open(tab, s.PlayerURL+"?format=ll-hls"); err != nil {
		t.Fatal(err)
	}
	first, _, err := playertest.WaitPlaying(tab, time.Second, 60*time.Second)
	if err != nil {
		t.Fatalf("hls.js does not play: %v", err)
	}
	startWall, startT := time.Now(), first.CurrentTime
	enc := streamEncoder(t, n, token, s.ID)
	if enc.FellBack != "" {
		// The fault comes 240 frames (8 s) in: a box starved by its host
		// can take longer than that to start the browser and player.
		steal.Fatalf(t, "fell back before the player played: %+v", enc)
	}
	t.Logf("playing at t=%.1f with %s (restarts %d)", first.CurrentTime, enc.Plugin, enc.Restarts)

	var fellAt time.Time
	waitFor(t, 90*time.Second, "fallback to x264", func() bool {
		enc = streamEncoder(t, n, token, s.ID)
		return enc.FellBack == "vaapi" && enc.Plugin == hwenc.ModeX264 && enc.Live
	})
	fellAt = time.Now()
	t.Logf("fell back %v after playing began: %+v", fellAt.Sub(startWall).Round(100*time.Millisecond), enc)
	// The x264 rungs are published again.
	waitFor(t, 30*time.Second, "x264 rungs", func() bool {
		enc = streamEncoder(t, n, token, s.ID)
		return len(enc.Renditions) > 0
	})
	// The player keeps playing for 5 s more, through whatever level ABR
	// picked while the rungs came and went.
	time.Sleep(5 * time.Second)
	last, err := playertest.Read(tab)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(startWall).Seconds()
	played := last.CurrentTime - startT
	t.Logf("played %.1f s in %.1f s; stalls %d; latency %.2f s; %dx%d", played, wall, last.Stalls-first.Stalls, deref(last.Latency), last.Width, last.Height)
	if len(last.Errors) > 0 {
		t.Errorf("player errors: %v", last.Errors)
	}
	if !last.Playing || played < wall-3 {
		steal.Errorf(t, "the player fell behind across the fallback: played %.1f s of %.1f s (playing %v): %s", played, wall, last.Playing, hlsState(tab))
	}
	if mv := string(fetch(t, s.HLSCMAFURL)); !strings.Contains(mv, enc.Renditions[0].Name+"/video.m3u8") || !strings.Contains(mv, "mp4a.40.2") {
		t.Errorf("master after the fallback lacks the x264 rungs:\n%s", mv)
	}
}
