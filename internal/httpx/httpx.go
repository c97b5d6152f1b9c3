// Package httpx holds small HTTP helpers shared by the node's servers:
// CORS for the origin's GET endpoints, and serving a generated document
// (playlist, MPD) with content negotiation and conditional requests.
package httpx

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// AcceptsGzip reports whether the request's Accept-Encoding allows gzip
// (RFC 9110 §12.5.3: listed, and not with q=0).
func AcceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// SetCORS sets the CORS headers every origin response carries: players run
// on other origins (hls.js and dash.js fetch with XHR/fetch) and read
// these headers.
func SetCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag, Last-Modified, Age, Date")
}

// Preflight answers a CORS preflight (OPTIONS) for the origin's read-only
// endpoints: GET and HEAD, with the request headers players send (Range,
// conditional requests).
func Preflight(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	SetCORS(h)
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Range, If-None-Match, If-Modified-Since")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// ServeDocument sends body, a document generated per request (playlist,
// MPD), gzip-compressed when the request accepts it (RFC 8216bis App. B.1:
// gzip playlists). Its ETag is a strong validator of the content, distinct
// for the gzip representation (RFC 9110 §8.8.3); http.ServeContent answers
// If-None-Match with 304, Range and HEAD. Vary: Accept-Encoding tells caches
// the representations apart. The caller sets Content-Type, Cache-Control
// and CORS first.
func ServeDocument(w http.ResponseWriter, r *http.Request, body []byte) {
	h := w.Header()
	h.Set("Vary", "Accept-Encoding")
	sum := sha256.Sum256(body)
	etag := hex.EncodeToString(sum[:12])
	if AcceptsGzip(r) {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(body) // writes to memory cannot fail
		_ = zw.Close()
		body = z.Bytes()
		etag += "-gz"
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
