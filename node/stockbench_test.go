package node_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/stockplayers"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/origin/player/playertest"
)

// viewerFigures is what make bench reports per player (issue 12,
// acceptance 6).
type viewerFigures struct {
	name    string
	start   time.Duration // WHIP POST → the player's first frame
	latency float64       // the player's own live latency, p50 after settling (s)
}

// TestBenchPlayerStart (make bench, scripts/bench-players.sh): for each
// stock player and for the node's own player page, a fresh stream
// published from the Go Live page (fake camera), the player opened before
// the presenter goes live (its first requests are held for the stream),
// time from the WHIP POST to its first frame and its live latency p50
// over 30 s of play. One player at a time (a 2-core box). The node's page
// is the baseline of the same run: each stock figure is also given as a
// ratio to it.
func TestBenchPlayerStart(t *testing.T) {
	if os.Getenv("EDGENODE_BENCH_PLAYERS") == "" {
		t.Skip("a benchmark: make bench (scripts/bench-players.sh) sets EDGENODE_BENCH_PLAYERS=1")
	}
	needEncoderE2E(t)
	var enc hwenc.Config
	mode := os.Getenv("EDGENODE_BENCH_MODE") // "ladder" or passthrough
	if mode == "ladder" {
		enc.PluginDir = buildPlugins(t)
	} else {
		mode = "passthrough"
		enc.Mode = hwenc.ModeOff
	}
	srv := stockplayers.Start(t)
	n, token := startFullNode(t, enc)
	b := browsertest.Start(t, browsertest.Options{FakeCameraFPS: 30, Lifetime: 20 * time.Minute})
	viewers := []string{"page ll-hls", "page ll-dash", "hlsjs hls", "dashjs dash", "shaka dash", "shaka hls"}
	var out []viewerFigures
	for i, v := range viewers {
		f := benchViewer(t, b, srv, n, token, fmt.Sprintf("bench%d", i), v)
		t.Logf("%s: WHIP POST → first frame %.2fs, latency p50 %.2fs", v, f.start.Seconds(), f.latency)
		out = append(out, f)
	}
	base := map[string]viewerFigures{"hls": out[0], "dash": out[1]}
	fmt.Printf("player start-up and latency (%s, one player at a time; baseline: the node's player page in the same run)\n", mode)
	for _, f := range out {
		format := "hls"
		if strings.HasSuffix(f.name, "dash") {
			format = "dash"
		}
		b := base[format]
		fmt.Printf("  %-12s POST→first frame %5.2f s (×%.2f the page)  latency p50 %5.2f s (×%.2f the page)\n",
			f.name, f.start.Seconds(), f.start.Seconds()/b.start.Seconds(), f.latency, f.latency/b.latency)
	}
}

func benchViewer(t *testing.T, b *browsertest.Browser, srv *stockplayers.Server, n *node.Node, token, name, viewer string) viewerFigures {
	t.Helper()
	s := createStream(t, n, token, name)
	pub := b.Tab(t)
	if err := chromedp.Do(pub, chromedp.Navigate(s.GoLiveURL)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "Go Live page ready", func() bool {
		st, _ := chromedp.Run(pub, chromedp.Evaluate[string](`window.golive ? window.golive.status : ""`))
		return st == "ready"
	})
	player, format, _ := strings.Cut(viewer, " ")
	tab, cancel := context.WithCancel(b.Tab(t))
	defer cancel()
	var open string
	switch {
	case player == "page":
		open = s.PlayerURL + "?format=" + format
	case format == "dash":
		open = srv.PlayerURL(stockplayers.Player(player), s.DASHURL)
	default:
		open = srv.PlayerURL(stockplayers.Player(player), s.HLSCMAFURL)
	}
	if err := stockplayers.Open(tab, open); err != nil {
		t.Fatal(err)
	}
	// The player is loading, its requests held for the stream: go live.
	if err := chromedp.Do(pub, chromedp.Click(chromedp.ID("golive"))); err != nil {
		t.Fatal(err)
	}
	var posted float64
	waitFor(t, 20*time.Second, "WHIP POST", func() bool {
		posted, _ = playertest.Eval[float64](pub, `window.golive.postedAt || 0`)
		return posted > 0
	})
	// First frame (the page's date of it), then 30 s of latency figures
	// from 10 s on.
	var first float64
	var lat []float64
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var l *float64
		if player == "page" {
			st, err := playertest.Read(tab)
			if err != nil {
				continue
			}
			if st.FirstFrameMs != nil && first == 0 {
				started, _ := playertest.Eval[float64](tab, `window.edgenode.startedAt`)
				first = started + *st.FirstFrameMs
			}
			l = st.Latency
		} else {
			st, err := stockplayers.Read(tab)
			if err != nil {
				continue
			}
			if st.FirstPlayDate != nil {
				first = *st.FirstPlayDate
			}
			l = st.Latency
		}
		if first == 0 {
			continue
		}
		since := time.Duration((float64(time.Now().UnixMilli()) - first) * float64(time.Millisecond))
		if since > 10*time.Second && l != nil {
			lat = append(lat, *l)
		}
		if since > 40*time.Second {
			break
		}
	}
	if first == 0 {
		t.Fatalf("%s never played", viewer)
	}
	_ = chromedp.Do(pub, chromedp.Click(chromedp.ID("stop")))
	return viewerFigures{name: viewer, start: time.Duration((first - posted) * float64(time.Millisecond)), latency: p50(lat)}
}
