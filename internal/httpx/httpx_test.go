package httpx

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAcceptsGzip(t *testing.T) {
	for in, want := range map[string]bool{
		"":                       false,
		"gzip":                   true,
		"GZIP":                   true,
		"br, gzip;q=0.5":         true,
		"deflate, br":            false,
		"gzip;q=0":               false,
		"gzip; q = 0":            false,
		"x-gzip-not-really, br":  false,
		"identity, gzip;q=0.001": true,
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", in)
		if got := AcceptsGzip(r); got != want {
			t.Errorf("AcceptsGzip(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestServeDocument runs ServeDocument and Preflight on loopback and checks
// what players and caches rely on: gzip only when accepted, a strong ETag
// per representation and content, 304 on If-None-Match, Range, HEAD, CORS.
func TestServeDocument(t *testing.T) {
	doc := []byte(strings.Repeat("#EXTINF:2.000,\nseg.ts\n", 50))
	other := []byte("#EXTM3U\n")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /doc", func(w http.ResponseWriter, r *http.Request) {
		SetCORS(w.Header())
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		ServeDocument(w, r, doc)
	})
	mux.HandleFunc("GET /other", func(w http.ResponseWriter, r *http.Request) { ServeDocument(w, r, other) })
	mux.HandleFunc("OPTIONS /", Preflight)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}} // see the bytes as sent
	defer client.CloseIdleConnections()
	do := func(method, path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}

	res, plain := do("GET", "/doc")
	tag := res.Header.Get("ETag")
	if res.StatusCode != 200 || !bytes.Equal(plain, doc) || res.Header.Get("Content-Encoding") != "" ||
		res.Header.Get("Vary") != "Accept-Encoding" || res.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" ||
		res.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, `W/`) {
		t.Fatalf("identity: %d %v %d bytes", res.StatusCode, res.Header, len(plain))
	}

	res, gz := do("GET", "/doc", "Accept-Encoding", "br, gzip")
	gzTag := res.Header.Get("ETag")
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || gzTag == tag || len(gz) >= len(doc) {
		t.Fatalf("gzip: %d %v %d bytes", res.StatusCode, res.Header, len(gz))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(zr); err != nil || !bytes.Equal(b, doc) {
		t.Fatalf("gzip body does not decode to the document: %v", err)
	}
	if res, _ := do("GET", "/doc", "Accept-Encoding", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got gzip")
	}

	// Conditional requests: each representation validates its own tag.
	if res, b := do("GET", "/doc", "If-None-Match", tag); res.StatusCode != 304 || len(b) != 0 {
		t.Errorf("If-None-Match identity: %d, %d bytes", res.StatusCode, len(b))
	}
	if res, _ := do("GET", "/doc", "If-None-Match", gzTag, "Accept-Encoding", "gzip"); res.StatusCode != 304 {
		t.Errorf("If-None-Match gzip: %d", res.StatusCode)
	}
	if res, _ := do("GET", "/doc", "If-None-Match", gzTag); res.StatusCode != 200 {
		t.Errorf("gzip tag on an identity request: %d, want 200", res.StatusCode)
	}
	if res, _ := do("GET", "/other"); res.Header.Get("ETag") == tag {
		t.Errorf("different content, same ETag %s", tag)
	}

	if res, b := do("GET", "/doc", "Range", "bytes=0-6"); res.StatusCode != 206 || string(b) != "#EXTINF" {
		t.Errorf("range: %d %q", res.StatusCode, b)
	}
	if res, b := do("HEAD", "/doc"); res.StatusCode != 200 || len(b) != 0 || res.ContentLength != int64(len(doc)) {
		t.Errorf("HEAD: %d, %d bytes, length %d", res.StatusCode, len(b), res.ContentLength)
	}

	res, _ = do("OPTIONS", "/doc", "Origin", "http://player.example", "Access-Control-Request-Method", "GET")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "If-None-Match") ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "HEAD") ||
		!strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}
}
