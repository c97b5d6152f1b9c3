package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/manifestrules"
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
	if only := os.Getenv("EDGENODE_BENCH_ONLY"); only != "" { // e.g. "page ll-dash,dashjs dash"
		viewers = strings.Split(only, ",")
	}
	var out []viewerFigures
	for i, v := range viewers {
		f := benchViewer(t, b, srv, n, token, fmt.Sprintf("bench%d", i), v)
		t.Logf("%s: WHIP POST → first frame %.2fs, latency p50 %.2fs", v, f.start.Seconds(), f.latency)
		out = append(out, f)
	}
	base := map[string]viewerFigures{}
	for _, f := range out {
		if p, format, _ := strings.Cut(f.name, " "); p == "page" {
			base[strings.TrimPrefix(format, "ll-")] = f
		}
	}
	fmt.Printf("player start-up and latency (%s, one player at a time; baseline: the node's player page in the same run)\n", mode)
	for _, f := range out {
		format := "hls"
		if strings.HasSuffix(f.name, "dash") {
			format = "dash"
		}
		b, ok := base[format]
		if !ok {
			b = f // no page in this run: ratios to itself
		}
		fmt.Printf("  %-12s POST→first frame %5.2f s (×%.2f the page)  latency p50 %5.2f s (×%.2f the page)\n",
			f.name, f.start.Seconds(), f.start.Seconds()/b.start.Seconds(), f.latency, f.latency/b.latency)
	}
}

func benchViewer(t *testing.T, b *browsertest.Browser, srv *stockplayers.Server, n *node.Node, token, name, viewer string) viewerFigures {
	t.Helper()
	// Encoders of the streams before this one still running load the box
	// (a sixth stream's rungs once ran 3 s behind its source).
	if out, err := exec.Command("pgrep", "-c", "ffmpeg").Output(); err == nil || len(out) > 0 {
		t.Logf("%s: ffmpeg processes running before it: %s", viewer, strings.TrimSpace(string(out)))
	}
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
	// The MPD's availabilityStartTime as it changes from going live on.
	var astLog []string
	astDone := make(chan struct{})
	astCtx, astStop := context.WithCancel(context.Background())
	go func() {
		defer close(astDone)
		last := ""
		began := time.Now()
		for astCtx.Err() == nil && time.Since(began) < 20*time.Second {
			req, _ := http.NewRequestWithContext(astCtx, "GET", s.DASHURL, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if sig := mpdShape(b); sig != last {
					last = sig
					astLog = append(astLog, fmt.Sprintf("%.2fs: %s", time.Since(began).Seconds(), last))
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	defer func() {
		astStop()
		<-astDone
		t.Logf("%s: the MPD's shape from going live on:\n%s", viewer, strings.Join(astLog, "\n"))
	}()
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
	var lat, wall []float64
	var series []string // its latency every 2 s from its first frame
	var nextSeries time.Duration
	defer func() { t.Logf("%s: latency from its first frame on: %s", viewer, strings.Join(series, " ")) }()
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
			if first != 0 && st.PlayheadDate != nil && float64(time.Now().UnixMilli())-first > 10000 {
				wall = append(wall, (st.Now-*st.PlayheadDate)/1000)
			}
		}
		if first == 0 {
			continue
		}
		since := time.Duration((float64(time.Now().UnixMilli()) - first) * float64(time.Millisecond))
		if l != nil && since >= nextSeries {
			series = append(series, fmt.Sprintf("%.0fs:%.2f", since.Seconds(), *l))
			nextSeries += 2 * time.Second
		}
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
	if len(wall) > 0 {
		// The player's own figure beside now − the date it gives its
		// playhead: the two disagree when its clock or its timeline does.
		t.Logf("%s: now - playhead date p50 %.2fs (own latency p50 %.2fs)", viewer, p50(wall), p50(lat))
	}
	t.Logf("%s: how old each playlist's dated edge is: %s", viewer, edgeAges(t, s.HLSCMAFURL))
	if p50(lat) > 5 {
		// Far behind: what the player and the stream's manifests say.
		if player != "page" {
			st, _ := stockplayers.Read(tab)
			js, _ := json.Marshal(st)
			t.Logf("%s: %s", viewer, js)
		}
		// Its first requests (the page's resource timing: URL, status,
		// ms from load).
		reqs, _ := chromedp.Run(tab, chromedp.Evaluate[[]string](`performance.getEntriesByType("resource").filter(e => e.startTime < 12000).map(e => e.startTime.toFixed(0) + "-" + e.responseEnd.toFixed(0) + " " + e.responseStatus + " " + e.name.split("/").slice(-3).join("/"))`))
		t.Logf("%s: its first requests:\n%s", viewer, strings.Join(reqs, "\n"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		body := fetch(t, s.DASHURL)
		errs := manifestrules.CheckMPD(ctx, s.DASHURL, body, manifestrules.HTTPGet(nil), time.Now(), manifestrules.Expect{})
		t.Logf("%s: MPD rules: %v\n%s", viewer, errs, body)
	}
	_ = chromedp.Do(pub, chromedp.Click(chromedp.ID("stop")))
	return viewerFigures{name: viewer, start: time.Duration((first - posted) * float64(time.Millisecond)), latency: p50(lat)}
}

var (
	astRE    = regexp.MustCompile(`availabilityStartTime="([^"]+)"`)
	periodRE = regexp.MustCompile(`<Period id="([^"]+)" start="([^"]+)"|<Representation id="([^"]+)"|startNumber="(\d+)"|<S t="(\d+)"`)
)

// mpdShape is an MPD's AST, Periods, Representations and each one's
// first number and time, in one line.
func mpdShape(b []byte) string {
	var out []string
	if m := astRE.FindSubmatch(b); m != nil {
		out = append(out, "AST "+string(m[1]))
	}
	firstS := false
	for _, m := range periodRE.FindAllSubmatch(b, -1) {
		switch {
		case m[1] != nil:
			out = append(out, "| "+string(m[1])+"@"+string(m[2]))
		case m[3] != nil:
			out = append(out, string(m[3]))
		case m[4] != nil:
			out = append(out, "#"+string(m[4]))
			firstS = true
		case m[5] != nil && firstS:
			out = append(out, "t="+string(m[5]))
			firstS = false
		}
	}
	return strings.Join(out, " ")
}

var uriRE = regexp.MustCompile(`(?m)(?:^#EXT-X-MEDIA:.*URI="([^"]+)"|^#EXT-X-STREAM-INF:.*\n(\S+)$)`)

// edgeAges says, for each media playlist of a multivariant playlist, how
// far before now the end of its newest complete segment is dated
// (PROGRAM-DATE-TIME plus the durations after it).
func edgeAges(t *testing.T, master string) string {
	t.Helper()
	base := master[:strings.LastIndex(master, "/")+1]
	var out []string
	for _, m := range uriRE.FindAllStringSubmatch(string(fetch(t, master)), -1) {
		u := m[1] + m[2]
		var edge time.Time
		for _, l := range strings.Split(string(fetch(t, base+u)), "\n") {
			switch {
			case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
				edge, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"))
			case strings.HasPrefix(l, "#EXTINF:"):
				d, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(l, "#EXTINF:"), ","), 64)
				edge = edge.Add(time.Duration(d * float64(time.Second)))
			}
		}
		out = append(out, fmt.Sprintf("%s %.2fs", u, time.Since(edge).Seconds()))
	}
	return strings.Join(out, ", ")
}
