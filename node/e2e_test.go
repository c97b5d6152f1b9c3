package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/origin/player/playertest"
)

// startFullNode runs a whole node in-process on loopback with ephemeral
// ports and returns it with its API token.
func startFullNode(t *testing.T, enc hwenc.Config) (*node.Node, string) {
	t.Helper()
	cfg := node.Config{
		Listen:   "127.0.0.1:0",
		DataDir:  t.TempDir(),
		API:      node.APIConfig{Token: "e2e-token"},
		Ingest:   testIngest,
		TURN:     testTURN,
		Encoders: enc,
	}
	n, err := node.New(cfg, nil)
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
// with currentTime advancing through Chromium's resolution ramp. ffprobe
// reads the TS master playlist and the MPD.
func TestEndToEndBrowserToPlayers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end browser test")
	}
	n, token := startFullNode(t, hwenc.Config{Mode: hwenc.ModeOff})
	s := createStream(t, n, token, "e2e")

	b := browsertest.Start(t, browsertest.Options{FakeCameraFPS: 30, Lifetime: 4 * time.Minute})
	goLive(t, b.Tab(t), s.GoLiveURL)

	for _, format := range []string{"ll-hls", "ll-dash", "hls-ts"} {
		t.Run(format, func(t *testing.T) {
			tab := b.Tab(t)
			if err := playertest.Open(tab, s.PlayerURL+"?format="+format); err != nil {
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
			var lat []float64
			for _, st := range seen {
				if st.Playing && st.Latency != nil {
					lat = append(lat, *st.Latency)
				}
			}
			sort.Float64s(lat)
			if len(lat) > 0 {
				t.Logf("%s: %dx%d, first frame after %v ms, latency median %.2fs (n=%d), stalls %d",
					format, last.Width, last.Height, deref(last.FirstFrameMs), lat[len(lat)/2], len(lat), last.Stalls)
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
