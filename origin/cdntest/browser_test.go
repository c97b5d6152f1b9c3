package cdntest_test

import (
	"context"
	"regexp"
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
	defer cancel()
	n := startNode(t)
	ng := cdntest.Start(t, docPath, n.origin)
	b := browsertest.Start(t, browsertest.Options{Lifetime: 150 * time.Second})
	bctx := b.Ctx
	publish(t, ctx, n.hub, 22, 40*time.Second)

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
