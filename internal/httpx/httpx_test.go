package httpx

import (
	"net/http"
	"testing"
)

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
