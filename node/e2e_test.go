package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/cpusteal"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/origin/player/playertest"
)

// startFullNode runs a whole node in-process on loopback with ephemeral
// ports and returns it with its API token.
func startFullNode(t *testing.T, enc hwenc.Config) (*node.Node, string) {
	t.Helper()
	return startFullNodeLog(t, enc, nil)
}

// startFullNodeLog is startFullNode with the node logging to log.
func startFullNodeLog(t *testing.T, enc hwenc.Config, log *slog.Logger) (*node.Node, string) {
	t.Helper()
	cfg := node.Config{
		Listen:   "127.0.0.1:0",
		DataDir:  t.TempDir(),
		API:      node.APIConfig{Token: "e2e-token"},
		Ingest:   testIngest,
		TURN:     testTURN,
		Encoders: enc,
	}
	n, err := node.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		n.Close()
	})
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return n, "e2e-token"
}

// logLines is a slog handler that passes the records with one of msgs
// to t.Log, with their attributes.
type logLines struct {
	t     *testing.T
	msgs  []string
	attrs []slog.Attr
}

// Enabled leaves debug records out: the node stays as quiet as with no
// logger (with them taken, two ladder runs had the x264 rungs seconds
// behind real time; not proven the cause, not worth the risk).
func (h logLines) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h logLines) Handle(_ context.Context, r slog.Record) error {
	if !slices.Contains(h.msgs, r.Message) {
		return nil
	}
	var b strings.Builder
	b.WriteString("node " + r.Time.Format("15:04:05.000") + ": " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.t.Log(b.String())
	return nil
}

func (h logLines) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(slices.Clip(h.attrs), as...)
	return h
}

func (h logLines) WithGroup(string) slog.Handler { return h }

type streamView struct {
	ID          uint64 `json:"id"`
	PushURLWHIP string `json:"push_url_whip"`
	HLSCMAFURL  string `json:"hls_cmaf_url"`
	DASHURL     string `json:"dash_url"`
	HLSMPEGTS   string `json:"hls_mpegts_url"`
	PlayerURL   string `json:"player_url"`
	GoLiveURL   string `json:"golive_url"`
}

func createStream(t *testing.T, n *node.Node, token, name string) streamView {
	t.Helper()
	req, _ := http.NewRequest("POST", n.Info().APIURL+"/streaming/streams", strings.NewReader(`{"name":"`+name+`"}`))
	req.Header.Set("Authorization", "APIKey "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create stream: %d %s", resp.StatusCode, body)
	}
	var s streamView
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// goLive opens the stream's Go Live page in a tab and clicks Go Live.
func goLive(t *testing.T, tab context.Context, url string) {
	t.Helper()
	status := func() string {
		s, _ := chromedp.Run(tab, chromedp.Evaluate[string](`window.golive ? window.golive.status : ""`))
		return s
	}
	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "Go Live page ready", func() bool { return status() == "ready" })
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("golive"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "publisher live", func() bool {
		s := status()
		if s == "error" {
			e, _ := chromedp.Run(tab, chromedp.Evaluate[string](`window.golive.error`))
			t.Fatalf("Go Live failed: %s", e)
		}
		return s == "live"
	})
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEndToEndBrowserToPlayers is the product in one test: Chromium's fake
// camera publishes through the Go Live page of a node started with its
// defaults (ephemeral ports), and the node's own player page plays the
// stream in every format — LL-HLS (hls.js), LL-DASH (dash.js) and HLS-TS —
// with currentTime advancing (the page holds the camera's resolution, so
// no ramp: golive.html holdResolution). ffprobe
// reads the TS master playlist and the MPD.
func TestEndToEndBrowserToPlayers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end browser test")
	}
	n, token := startFullNode(t, hwenc.Config{Mode: hwenc.ModeOff})
	s := createStream(t, n, token, "e2e")
	steal := cpusteal.Start() // latency and stalls are judged unless the host starved the box

	b := browsertest.Start(t, browsertest.Options{FakeCameraFPS: 30, Lifetime: 4 * time.Minute})
	goLive(t, b.Tab(t), s.GoLiveURL)

	for _, format := range []string{"ll-hls", "ll-dash", "hls-ts"} {
		t.Run(format, func(t *testing.T) {
			tab := b.Tab(t)
			if err := playertest.Open(tab, s.PlayerURL+"?debug=1&format="+format); err != nil {
				t.Fatal(err)
			}
			advance := 8 * time.Second
			last, seen, err := playertest.WaitPlaying(tab, advance, 60*time.Second)
			if err != nil {
				t.Fatalf("%s did not play %v: last status %+v", format, advance, last)
			}
			if len(last.Errors) > 0 {
				t.Errorf("%s player errors: %v", format, last.Errors)
			}
			// Latency once the player has settled at the live edge (3 s of
			// playback), as the issue states it: ≤ 1.5 s for the
			// low-latency formats.
			var lat []float64
			start := -1.0
			settledStalls := -1 // stalls counted when playback had settled
			for _, st := range seen {
				if st.Playing && start < 0 {
					start = st.CurrentTime
				}
				if st.Playing && st.Latency != nil && start >= 0 && st.CurrentTime > start+3 {
					lat = append(lat, *st.Latency)
					if settledStalls < 0 {
						settledStalls = st.Stalls
					}
				}
			}
			if testing.Verbose() {
				// The playback timeline, to see where latency and stalls come from.
				for i, st := range seen {
					if i%2 == 0 || st.Stalls != seen[max(i-1, 0)].Stalls {
						t.Logf("%s t=%.2f playing=%v lat=%.2f lib=%.2f target=%.2f buf=%.2f stalls=%d catchups=%d %dx%d",
							format, st.CurrentTime, st.Playing, deref(st.Latency), deref(st.LibLatency), deref(st.TargetLatency),
							st.Buffer, st.Stalls, st.CatchUps, st.Width, st.Height)
					}
				}
			}
			sort.Float64s(lat)
			if len(lat) > 0 {
				t.Logf("%s: %dx%d, first frame after %v ms, latency median %.2fs (n=%d), stalls %d",
					format, last.Width, last.Height, deref(last.FirstFrameMs), lat[len(lat)/2], len(lat), last.Stalls)
			}
			if format != "hls-ts" {
				if len(lat) == 0 {
					t.Errorf("%s: no latency samples after settling", format)
				} else if med, bound := lat[len(lat)/2], latencyBound(format); med > bound {
					steal.Errorf(t, "%s: median latency %.2fs, want ≤ %.1fs", format, med, bound)
				}
				// No stall once settled, also through the resolution ramp
				// (the publisher is still ramping up during the first
				// format). The stalls seen before were holes in the buffer
				// at each resolution step (audio PROGRAM-DATE-TIME off the
				// video's clock; origin/cmaf) and dash.js learning of a
				// segment up to a second late (player page MPD reloads,
				// which the browser answered from its cache while the MPD
				// said max-age=1: 18–26 stalls in 40 s in some runs).
				if last.Stalls > 0 {
					if l, err := playertest.Eval[[]string](tab, `window.edgenode.log`); err == nil {
						t.Logf("%s player log (?debug=1):\n%s", format, strings.Join(l, "\n"))
					}
				}
				if settledStalls >= 0 && last.Stalls > settledStalls {
					// The box is shared: a player that stalled is measured
					// once more on a fresh tab, as TestStartAfterPublish
					// does; a defect of the stream stalls both.
					t.Logf("%s: %d stalls after settling; playing it once more", format, last.Stalls-settledStalls)
					again := b.Tab(t)
					if err := playertest.Open(again, s.PlayerURL+"?debug=1&format="+format); err != nil {
						t.Fatal(err)
					}
					_, seen2, err := playertest.WaitPlaying(again, advance, 60*time.Second)
					if n := playertest.StallsAfter(seen2, 3); err != nil {
						t.Errorf("%s: %d stalls after settling, then the second player did not play: %v", format, last.Stalls-settledStalls, err)
					} else if n > 0 {
						steal.Errorf(t, "%s: %d stalls after settling, then %d on a second player", format, last.Stalls-settledStalls, n)
					}
				}
			}
			if last.Width == 0 {
				t.Errorf("%s: no picture decoded", format)
			}
		})
	}

	if _, err := exec.LookPath("ffprobe"); err == nil {
		for _, u := range []string{s.HLSMPEGTS, s.DASHURL} {
			out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", u).CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("h264")) {
				t.Errorf("ffprobe %s: %v\n%s", u, err, out)
			}
		}
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

// startMeasure publishes a new stream from a Go Live tab while a player
// tab per format is already open on it, and returns per format the time
// from the publisher going live (its PeerConnection connected) to the
// player's first 'playing' event. Both instants are read from the same
// browser's clock.
func startMeasure(t *testing.T, b *browsertest.Browser, n *node.Node, token, name string, formats []string) map[string]time.Duration {
	t.Helper()
	s := createStream(t, n, token, name)
	pub := b.Tab(t)
	if err := chromedp.Do(pub, chromedp.Navigate(s.GoLiveURL)); err != nil {
		t.Fatal(err)
	}
	pubStatus := func() string {
		st, _ := chromedp.Run(pub, chromedp.Evaluate[string](`window.golive ? window.golive.status : ""`))
		return st
	}
	waitFor(t, 20*time.Second, "Go Live page ready", func() bool { return pubStatus() == "ready" })
	// Note the instant the page turns live, at 5 ms resolution.
	if _, err := playertest.Eval[int](pub, `window.liveAt = 0; setInterval(function () {
		if (!window.liveAt && window.golive.status === 'live') { window.liveAt = Date.now(); } }, 5)`); err != nil {
		t.Fatal(err)
	}
	tabs := map[string]context.Context{}
	for _, f := range formats {
		tab := b.Tab(t)
		if err := playertest.Open(tab, s.PlayerURL+"?format="+f); err != nil {
			t.Fatal(err)
		}
		tabs[f] = tab
	}
	// The players are loading (their playlist / MPD requests are held
	// for the publisher); now go live.
	if err := chromedp.Do(pub, chromedp.Click(chromedp.ID("golive"))); err != nil {
		t.Fatal(err)
	}
	var liveAt float64
	waitFor(t, 20*time.Second, "publisher live", func() bool {
		liveAt, _ = playertest.Eval[float64](pub, `window.liveAt || 0`)
		return liveAt > 0
	})
	out := map[string]time.Duration{}
	for _, f := range formats {
		last, _, err := playertest.WaitPlaying(tabs[f], time.Second, 30*time.Second)
		if err != nil || last.FirstFrameMs == nil {
			t.Fatalf("%s did not play: %+v", f, last)
		}
		startedAt, err := playertest.Eval[float64](tabs[f], `window.edgenode.startedAt`)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = time.Duration((startedAt + *last.FirstFrameMs - liveAt) * float64(time.Millisecond))
		t.Logf("%s: page opened %.0f ms before live; %v; errors %v", f, liveAt-startedAt, last.Marks, last.Errors)
	}
	if testing.Verbose() {
		// Where the time goes: the first sample's arrival at the node
		// (PROGRAM-DATE-TIME of the first segment) and that segment's length.
		if res, err := http.Get(strings.TrimSuffix(s.HLSCMAFURL, "master.m3u8") + "source/video.m3u8"); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var pdt, extinf string
			for _, l := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"); ok && pdt == "" {
					pdt = v
				}
				if v, ok := strings.CutPrefix(l, "#EXTINF:"); ok && extinf == "" {
					extinf = v
				}
			}
			if os.Getenv("E2E_DUMP") != "" {
				t.Logf("media playlist:\n%s", body)
			}
			if at, err := time.Parse(time.RFC3339Nano, pdt); err == nil {
				t.Logf("first sample at the node %v after live; first segment %ss", at.Sub(time.UnixMilli(int64(liveAt))), extinf)
			}
		}
	}
	for _, tab := range tabs {
		_ = chromedp.Do(tab, chromedp.Navigate("about:blank"))
	}
	_ = chromedp.Do(pub, chromedp.Navigate("about:blank")) // unload: the page ends its WHIP session
	return out
}

// TestStartAfterPublish is acceptance 1's "a player can start ≤ 2 s after
// the publisher's first packet": the player pages are open before the
// publisher clicks Go Live, and LL-HLS and LL-DASH must each be playing
// within 2 s of the publisher going live (its PeerConnection connected,
// which is 40–130 ms before the first packet reaches the node). hls.js
// starts from a complete segment: the ingest asks for a keyframe 350 ms
// into the session (ingest.Config.StartKeyframe) and the packager closes
// the session's first segment there (0.4–0.5 s), which took LL-HLS from
// 1.9–2.9 s to 1.0–1.7 s. The machine is shared with other work, so a
// format that misses is measured once more on a fresh publish.
func TestStartAfterPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end browser test")
	}
	n, token := startFullNode(t, hwenc.Config{Mode: hwenc.ModeOff})
	b := browsertest.Start(t, browsertest.Options{FakeCameraFPS: 30, Lifetime: 3 * time.Minute})
	const limit = 2 * time.Second
	formats := []string{"ll-hls", "ll-dash"}
	steal := cpusteal.Start()
	// A first round on a freshly launched browser pays for Chromium's own
	// cold start (player scripts, MSE, the decoder: up to ~1 s more here),
	// which a viewer's running browser does not; it is logged, not judged.
	warm := startMeasure(t, b, n, token, "warmup", formats)
	t.Logf("cold browser: publisher live → playing: %v", warm)
	got := startMeasure(t, b, n, token, "start1", formats)
	t.Logf("publisher live → playing: %v", got)
	var again []string
	for _, f := range formats {
		if got[f] > limit {
			again = append(again, f)
		}
	}
	if len(again) > 0 {
		retry := startMeasure(t, b, n, token, "start2", again)
		t.Logf("retry: publisher live → playing: %v", retry)
		for _, f := range again {
			if retry[f] > limit {
				steal.Errorf(t, "%s: playing %v after the publisher went live (then %v), want ≤ %v", f, got[f], retry[f], limit)
			}
		}
	}
}

// latencyBound is the median live latency a format's player must hold
// once settled: the page asks dash.js for 1.5 s (origin/player
// Config.TargetLatency: dash.js learns of a segment up to a second after
// it starts), and issue 12 asks ≤ 2 s of DASH players, ≤ 1.5 s of LL-HLS.
func latencyBound(format string) float64 {
	if format == "ll-dash" {
		return 2
	}
	return 1.5
}
