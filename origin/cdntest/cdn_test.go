package cdntest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/cdntest"
	"github.com/edgenode/edgenode/origin/dash"
	"github.com/edgenode/edgenode/origin/player"
	"github.com/edgenode/edgenode/origin/ts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const docPath = "../../docs/cdn.md"

func TestExtractConfig(t *testing.T) {
	md, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := cdntest.ExtractConfig(md)
	if err != nil {
		t.Fatal(err)
	}
	// docs/cdn.md rule 1 and 3 must be in the block the test runs.
	for _, want := range []string{"proxy_cache_key $scheme$http_host$uri$is_args$args;", "proxy_cache_lock on;", "location = /time"} {
		if !strings.Contains(conf, want) {
			t.Errorf("documented config lacks %q", want)
		}
	}
	if _, err := cdntest.ExtractConfig([]byte("no block")); err == nil {
		t.Error("no error for a document without the block")
	}
}

type node struct {
	hub     *hub.Hub
	counter *cdntest.Counter
	origin  string // host:port
}

// startNode runs the origin (LL-HLS, CMAF, /time), LL-DASH, HLS-TS and
// the player page on loopback, counting every request it receives.
func startNode(t *testing.T) *node {
	t.Helper()
	h := hub.New(0)
	reg := prometheus.NewRegistry()
	o, err := origin.New(origin.Config{}, origin.Deps{Hub: h, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dash.New(dash.Config{}, o.Registry(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tss, err := ts.New(ts.Config{}, h, nil, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := player.New(player.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tss.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	o.RegisterRoutes(mux)
	d.RegisterRoutes(mux)
	tss.RegisterRoutes(mux)
	p.RegisterRoutes(mux)
	c := cdntest.NewCounter(mux)
	hs := httptest.NewServer(c)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		_ = tss.Close()
		_ = o.Close()
	})
	return &node{hub: h, counter: c, origin: strings.TrimPrefix(hs.URL, "http://")}
}

// publish plays a generated stream in real time until the test ends.
func publish(t *testing.T, ctx context.Context, h *hub.Hub, id uint64, d time.Duration) {
	t.Helper()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: d}}})
	pub, err := h.Publish(hub.Key{Stream: id, Rendition: hub.Source}, hub.Session{ID: "cdn", Tracks: stream.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = stream.Play(pctx, pub, mediatest.PlayOptions{Realtime: true})
		pub.Close()
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestOnePerPartThroughNginx: several concurrent LL-HLS viewers behind the
// documented nginx configuration; the node must see each part and each
// blocking playlist once, not once per viewer (issue 4 acceptance 4).
func TestOnePerPartThroughNginx(t *testing.T) {
	if cdntest.NginxPath() == "" {
		t.Skip("nginx not installed (Debian package nginx-light); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := startNode(t)
	ng := cdntest.Start(t, docPath, n.origin)
	publish(t, ctx, n.hub, 21, 20*time.Second)

	// Wait until the stream is live through the proxy.
	playlist := ng.URL + "/cmaf/21/source/video.m3u8"
	for {
		res, err := http.Get(playlist)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("stream never live through nginx: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The MPD's clock is where viewers reach the cache, port included
	// (docs/cdn.md rule 5): nginx's $host would drop the port.
	res, err := http.Get(ng.URL + "/cmaf/21/index.mpd")
	if err != nil {
		t.Fatal(err)
	}
	mpd, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := `value="` + ng.URL + `/time"`; !strings.Contains(string(mpd), want) {
		t.Errorf("MPD through nginx: UTCTiming is not %s:\n%s", want, mpd)
	}

	const viewers, parts = 8, 20 // 20 parts ≈ 4 s of media each
	vs := make([]*cdntest.Viewer, viewers)
	errs := make([]error, viewers)
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 4 * viewers}
	defer tr.CloseIdleConnections()
	for i := range vs {
		vs[i] = &cdntest.Viewer{Client: &http.Client{Transport: tr}, PlaylistURL: playlist}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = vs[i].Run(ctx, parts)
		}(i)
		time.Sleep(30 * time.Millisecond) // viewers arrive one after another
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
	}

	seen := n.counter.Served()
	fetched := map[string]int{}
	blocking := map[string]int{}
	for _, v := range vs {
		for _, u := range v.Fetched {
			fetched[strings.TrimPrefix(u, ng.URL)]++
		}
		for _, u := range v.Playlists {
			blocking[strings.TrimPrefix(u, ng.URL)]++
		}
	}
	shared := 0
	for uri, byViewers := range fetched {
		if got := seen[uri]; got != 1 {
			t.Errorf("%s: origin answered it %d times (viewers fetched it %d times), want 1", uri, got, byViewers)
		}
		if byViewers > 1 {
			shared++
		}
	}
	for uri, byViewers := range blocking {
		if got := seen[uri]; got != 1 {
			t.Errorf("%s: origin answered %d blocking requests (viewers sent %d), want 1", uri, got, byViewers)
		}
	}
	var viewerReqs, originReqs int
	for _, c := range fetched {
		viewerReqs += c
	}
	for _, c := range blocking {
		viewerReqs += c
	}
	for uri, c := range n.counter.Snapshot() {
		if strings.Contains(uri, "/cmaf/21/source/video") {
			originReqs += c
		}
	}
	t.Logf("%d viewers: %d part+playlist requests at nginx, %d at the origin; %d distinct parts, %d fetched by several viewers",
		viewers, viewerReqs, originReqs, len(fetched), shared)
	if shared < len(fetched)/2 {
		t.Errorf("only %d of %d parts were fetched by more than one viewer: the viewers did not overlap", shared, len(fetched))
	}
}
