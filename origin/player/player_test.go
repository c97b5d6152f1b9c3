package player_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/origin/player"
	"github.com/edgenode/edgenode/origin/player/playertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(t *testing.T, cfg player.Config) *httptest.Server {
	t.Helper()
	p, err := player.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.RegisterRoutes(mux)
	mux.HandleFunc("GET /time", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  player.Config
		want string
	}{
		{player.Config{}, ""},
		{player.Config{DefaultFormat: "ll-dash", TargetLatency: time.Second, TimePath: "/t"}, ""},
		{player.Config{DefaultFormat: "rtmp"}, "'default_format'"},
		{player.Config{TargetLatency: -1}, "'target_latency'"},
		{player.Config{TimePath: "time"}, "'time_path'"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, player.ErrConfig) {
			t.Errorf("%+v: got %v, want error naming %s", tc.cfg, err, tc.want)
		}
	}
}

func TestPageAndAssets(t *testing.T) {
	srv := newServer(t, player.Config{})
	c := srv.Client()

	res, err := c.Get(srv.URL + "/player/cam1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q does not pin scripts to the node", csp)
	}
	for _, want := range []string{
		`src="/player/assets/hls.min.js"`, `src="/player/assets/dash.mediaplayer.min.js"`,
		`"/cmaf/cam1/master.m3u8"`, `"/cmaf/cam1/index.mpd"`, `"/hls/cam1/master.m3u8"`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("page lacks %s", want)
		}
	}
	if bytes.Contains(body, []byte("http://")) || bytes.Contains(body, []byte("https://")) {
		t.Errorf("page references an absolute URL:\n%s", body)
	}

	// Ids that cannot be a stream name never reach the template.
	for _, bad := range []string{"/player/a%3Cb", "/player/" + strings.Repeat("x", 200)} {
		res, err := c.Get(srv.URL + bad)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", bad, res.StatusCode)
		}
	}

	// Assets are the vendored files, byte for byte, with validators.
	want, err := os.ReadFile("assets/hls.min.js")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/player/assets/hls.min.js", nil)
	req.Header.Set("Accept-Encoding", "identity")
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Equal(got, want) {
		t.Fatalf("hls.min.js differs from the vendored file (%d vs %d bytes)", len(got), len(want))
	}
	etag := res.Header.Get("ETag")
	if etag == "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("asset headers: %v", res.Header)
	}
	req.Header.Set("If-None-Match", etag)
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", res.StatusCode)
	}

	// gzip when asked (the Go client then does not decompress for us).
	req, _ = http.NewRequest("GET", srv.URL+"/player/assets/dash.mediaplayer.min.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip: %v", res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(zr)
	res.Body.Close()
	want, _ = os.ReadFile("assets/dash.mediaplayer.min.js")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("gzip body differs: %v", err)
	}

	res, err = c.Get(srv.URL + "/player/assets/nope.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("unknown asset: %d", res.StatusCode)
	}
	c.CloseIdleConnections()
}

// TestPageInChromium loads the page in a real browser: both libraries come
// from the node at the pinned versions, nothing is blocked by the CSP, and
// the format switch selects the right URL.
func TestPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	srv := newServer(t, player.Config{})
	b := browsertest.Start(t, browsertest.Options{Lifetime: 60 * time.Second})
	bctx := b.Ctx
	if err := playertest.Open(bctx, srv.URL+"/player/cam1?format=ll-dash"); err != nil {
		t.Fatal(err)
	}
	versions, err := playertest.Eval[[]string](bctx, `[Hls.version, dashjs.Version]`)
	if err != nil {
		t.Fatal(err)
	}
	if versions[0] != "1.7.4" || versions[1] != "5.2.1" {
		t.Fatalf("player versions %v, want [1.7.4 5.2.1]", versions)
	}
	var st playertest.Status
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if st, err = playertest.Read(bctx); err == nil && st.Format != "" {
			break
		}
	}
	if st.Format != "ll-dash" || st.URL != "/cmaf/cam1/index.mpd" || !strings.HasPrefix(st.Lib, "dash.js 5.2.1") {
		t.Fatalf("after load: %+v", st)
	}
	if _, err := playertest.Eval[bool](bctx, `document.querySelector('button[data-format="hls-ts"]').click(), true`); err != nil {
		t.Fatal(err)
	}
	st, err = playertest.Read(bctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != "hls-ts" || st.URL != "/hls/cam1/master.m3u8" || !strings.HasPrefix(st.Lib, "hls.js 1.7.4") {
		t.Fatalf("after switch: %+v", st)
	}
	loc, err := playertest.Eval[string](bctx, `location.search`)
	if err != nil || !strings.Contains(loc, "format=hls-ts") {
		t.Fatalf("location %q %v", loc, err)
	}
}
