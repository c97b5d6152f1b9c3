package cdntest_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/origin/cdntest"
	"github.com/edgenode/edgenode/origin/player/playertest"
)

var mediaObjectRE = regexp.MustCompile(`^/cmaf/\d+/[^/]+/(video|audio)/(init\d+\.mp4|seg\d+\.m4s|part\d+\.\d+\.m4s)$`)

// TestHLSJSThroughNginx: three hls.js players (low-latency mode, player
// page tabs in one headless Chromium) play the stream through the
// documented nginx configuration; every CMAF object and every blocking
// playlist reaches the node once (issue 4 acceptance 4).
func TestHLSJSThroughNginx(t *testing.T) {
	n, ng, b := browserSetup(t, 22, 40*time.Second)
	bctx := b.Ctx

	const players = 3
	tabs := []context.Context{bctx}
	for len(tabs) < players {
		tabs = append(tabs, b.Tab(t))
	}
	for _, tab := range tabs {
		if err := playertest.Open(tab, ng.URL+"/player/22?format=ll-hls"); err != nil {
			t.Fatal(err)
		}
	}
	for i, tab := range tabs {
		last, _, err := playertest.WaitPlaying(tab, 5*time.Second, 60*time.Second)
		if err != nil {
			t.Fatalf("player %d: %v", i, err)
		}
		if len(last.Errors) != 0 {
			t.Errorf("player %d errors: %v", i, last.Errors)
		}
		t.Logf("player %d: hls.js latency %.2f s (program date: %.2f s), buffer %.2f s, stalls %d",
			i, deref(last.LibLatency), deref(last.Latency), last.Buffer, last.Stalls)
	}

	// Each object is answered 200 by the node once; a request that
	// failed (503 after holding too long on a loaded machine) may be
	// retried and is logged, not counted against the CDN.
	var objects, blocking, total, retried int
	served := n.counter.Served()
	for uri, c := range n.counter.Snapshot() {
		total += c
		if !mediaObjectRE.MatchString(uri) && !strings.Contains(uri, "_HLS_msn=") {
			continue
		}
		if mediaObjectRE.MatchString(uri) {
			objects++
		} else {
			blocking++
		}
		if served[uri] > 1 {
			t.Errorf("%s: the node answered it %d times (of %d requests), want once", uri, served[uri], c)
		}
		if c > served[uri] {
			retried++
			t.Logf("%s: %d requests, %d answered 200", uri, c, served[uri])
		}
	}
	if objects == 0 || blocking == 0 {
		t.Fatalf("the players fetched %d media objects and %d blocking playlists through nginx", objects, blocking)
	}
	t.Logf("%d players through nginx: the origin served %d media objects and %d blocking playlists once each (%d requests in all, %d failed and retried)",
		players, objects, blocking, total, retried)
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

var mpdRE = regexp.MustCompile(`^/cmaf/\d+/index\.mpd(\?|$)`)

// TestDashJSThroughNginx: two dash.js players (the player page) play the LL-DASH stream through the
// documented nginx configuration without a stall once settled and near
// the 1 s target, while the node answers each MPD update URL once however
// many players reload it. The plain MPD URL may be kept a second by a CDN
// (s-maxage=1, nginx keeps nothing shorter): reloading it, dash.js
// learnt of each segment up to two seconds late and stalled 17-26 times
// in 35 s. Each MPD names its next version instead (Location:
// index.mpd?next=N), which the node holds until segment N starts and
// nginx coalesces (docs/cdn.md rule 7).
func TestDashJSThroughNginx(t *testing.T) {
	n, ng, b := browserSetup(t, 23, 60*time.Second)

	tabs := []context.Context{b.Ctx, b.Tab(t)}
	for _, tab := range tabs {
		if err := playertest.Open(tab, ng.URL+"/player/23?debug=1&format=ll-dash"); err != nil {
			t.Fatal(err)
		}
	}
	for i, tab := range tabs {
		last, seen, err := playertest.WaitPlaying(tab, 20*time.Second, 60*time.Second)
		if err != nil {
			t.Fatalf("player %d: %v", i, err)
		}
		if len(last.Errors) != 0 {
			t.Errorf("player %d errors: %v", i, last.Errors)
		}
		var lat []float64
		for _, st := range seen[len(seen)/2:] {
			if st.Playing && st.Latency != nil {
				lat = append(lat, *st.Latency)
			}
		}
		slices.Sort(lat)
		stalls := playertest.StallsAfter(seen, 3)
		t.Logf("player %d: dash.js latency %.2f s (median of the second half %.2f s, n=%d), buffer %.2f s, stalls %d (%d after settling)",
			i, deref(last.Latency), median(lat), len(lat), last.Buffer, last.Stalls, stalls)
		if stalls > 0 {
			if l, err := playertest.Eval[[]string](tab, `window.edgenode.log`); err == nil {
				t.Logf("player %d log:\n%s", i, strings.Join(l, "\n"))
			}
			t.Errorf("player %d: %d stalls after its first 3 s of playback", i, stalls)
		}
		// The page asks dash.js for 1.5 s (origin/player Config.TargetLatency);
		// issue 12 asks ≤ 2 s of a DASH player.
		if m := median(lat); len(lat) == 0 || m > 2 {
			t.Errorf("player %d: median latency %.2f s (n=%d), want ≤ 2 s", i, m, len(lat))
		}
	}

	var urls, requests int
	served := n.counter.Served()
	for uri, c := range n.counter.Snapshot() {
		if !mpdRE.MatchString(uri) {
			continue
		}
		if !strings.Contains(uri, "?next=") {
			// The plain URL: each player's first load, then only its
			// updates' URLs.
			if served[uri] > len(tabs) {
				t.Errorf("%s: the node answered the plain MPD URL %d times for %d players", uri, served[uri], len(tabs))
			}
			continue
		}
		urls++
		requests += c
		if served[uri] > 1 {
			t.Errorf("%s: the node answered it %d times, want once", uri, served[uri])
		}
	}
	if urls < 20 {
		t.Errorf("%d MPD update URLs reached the node: the players did not follow the MPD's Location", urls)
	}
	t.Logf("2 dash.js players through nginx: %d MPD update URLs reached the node (%d requests)", urls, requests)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return -1
	}
	return v[len(v)/2]
}

// browserSetup skips without nginx or Chromium, and starts a node, the
// documented nginx in front of it, a browser and a publisher of stream id
// for d.
func browserSetup(t *testing.T, id uint64, d time.Duration) (*node, *cdntest.Nginx, *browsertest.Browser) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test")
	}
	if cdntest.NginxPath() == "" {
		t.Skip("nginx not installed (Debian package nginx-light); CI installs it")
	}
	if browsertest.ExecPath() == "" {
		t.Skip("chromium not installed (Debian package chromium); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	t.Cleanup(cancel)
	n := startNode(t)
	ng := cdntest.Start(t, docPath, n.origin)
	b := browsertest.Start(t, browsertest.Options{Lifetime: 150 * time.Second})
	publish(t, ctx, n.hub, id, d)
	return n, ng, b
}
