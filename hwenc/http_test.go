package hwenc_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
)

func do(t *testing.T, method, url, body string, want int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf strings.Builder
	_, _ = io.Copy(&buf, res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, res.StatusCode, buf.String(), want)
	}
	return []byte(buf.String())
}

// TestStreamAPILadderOverride: the per-stream ladder set over HTTP is what
// the stream gets; the node default applies to the others.
func TestStreamAPILadderOverride(t *testing.T) {
	e := start(t, hwenc.Config{})
	mux := http.NewServeMux()
	e.m.RegisterRoutes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var st hwenc.Status
	if err := json.Unmarshal(do(t, "GET", srv.URL+"/api/encoders", "", 200), &st); err != nil {
		t.Fatal(err)
	}
	if st.Chosen == "" || len(st.Plugins) < 3 || len(st.Ladder) != len(hwenc.DefaultLadder()) {
		t.Fatalf("status %+v", st)
	}
	do(t, "PUT", srv.URL+"/api/streams/9/ladder", `[{"name":"x","width":641,"height":360,"bitrate":600000}]`, 400)
	do(t, "PUT", srv.URL+"/api/streams/nine/ladder", `[]`, 400)
	do(t, "PUT", srv.URL+"/api/streams/9/ladder", `[{"name":"source"},{"name":"180p","width":320,"height":180,"bitrate":200000}]`, 200)
	var l []media.Rendition
	if err := json.Unmarshal(do(t, "GET", srv.URL+"/api/streams/9/ladder", "", 200), &l); err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 || l[1].Name != "180p" {
		t.Fatalf("ladder %+v", l)
	}

	s := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: 3 * time.Second}}})
	r180 := watch(t, e.hub, hub.Key{Stream: 9, Rendition: "180p"})
	r360 := watch(t, e.hub, hub.Key{Stream: 9, Rendition: "360p"})
	play(t, e.hub, 9, s)
	wait(t, r180, "180p")
	if len(r180.video) == 0 {
		t.Errorf("the override's 180p carried nothing")
	}
	if r360.n.Load() != 0 || r360.sess != nil {
		t.Errorf("360p of the default ladder was published despite the override")
	}

	do(t, "DELETE", srv.URL+"/api/streams/9/ladder", "", 204)
	if err := json.Unmarshal(do(t, "GET", srv.URL+"/api/streams/9/ladder", "", 200), &l); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l, hwenc.DefaultLadder()) {
		t.Errorf("after DELETE the ladder is %+v, want the default", l)
	}
}
