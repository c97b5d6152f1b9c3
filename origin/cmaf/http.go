package cmaf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"strconv"
	"time"

	"github.com/edgenode/edgenode/internal/httpx"
)

// Cache-Control values (LL-HLS App. B.1; the same objects serve DASH).
const (
	// CacheImmutable: complete init segments, segments and parts never
	// change (numbers are never reused, see State).
	CacheImmutable = "public, max-age=31536000, immutable"
	// CacheNotFound: a 404 for a media object may turn into a 200 within a
	// few part durations.
	CacheNotFound = "public, max-age=1"
	// CacheNoStore for errors that must not be cached (503).
	CacheNoStore = "no-store"
)

// ParseStreamID parses the {id} path element.
func ParseStreamID(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// MediaPattern is the route of media objects; {file} is one of InitName,
// SegmentName, PartName.
const MediaPattern = "/cmaf/{id}/{rendition}/{kind}/{file}"

// RegisterRoutes mounts GET/HEAD/OPTIONS MediaPattern. maxWait bounds how
// long a request for a part or segment that is not complete yet is held
// (LL-HLS §6.2.6 preload hints, LL-DASH chunked segments); past it the
// answer is 503. Zero means 3 × segment duration of cfg.
func (r *Registry) RegisterRoutes(mux *http.ServeMux, maxWait time.Duration) {
	if maxWait <= 0 {
		maxWait = 3 * time.Second
	}
	h := &mediaHandler{reg: r, maxWait: maxWait}
	mux.HandleFunc("GET "+MediaPattern, h.serve)
	mux.HandleFunc("OPTIONS "+MediaPattern, httpx.Preflight)
}

type mediaHandler struct {
	reg     *Registry
	maxWait time.Duration
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", CacheNotFound)
	http.Error(w, "not found", http.StatusNotFound)
}

func (h *mediaHandler) serve(w http.ResponseWriter, r *http.Request) {
	httpx.SetCORS(w.Header())
	id, ok := ParseStreamID(r.PathValue("id"))
	kind, ok2 := ParseKind(r.PathValue("kind"))
	fk, n, idx := ParseName(r.PathValue("file"))
	if !ok || !ok2 || fk == FileUnknown {
		notFound(w)
		return
	}
	t, ok := h.reg.Lookup(id, r.PathValue("rendition"), kind)
	if !ok {
		notFound(w)
		return
	}
	switch fk {
	case FileInit:
		b, ok := t.Init(n)
		if !ok {
			notFound(w)
			return
		}
		serveBytes(w, r, mime(t), b, etag('i', n, 0, crc32.ChecksumIEEE(b), len(b)), time.Time{})
	case FilePart:
		h.servePart(w, r, t, n, idx)
	case FileSegment:
		h.serveSegment(w, r, t, n)
	}
}

func etag(kind byte, n uint64, idx int, crc uint32, size int) string {
	return fmt.Sprintf(`"%c%d.%d-%x-%d"`, kind, n, idx, crc, size)
}

func mime(t *Track) string {
	if t.Kind() == Audio {
		return "audio/mp4"
	}
	return "video/mp4"
}

func serveBytes(w http.ResponseWriter, r *http.Request, ctype string, b []byte, tag string, mod time.Time) {
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("Cache-Control", CacheImmutable)
	hd.Set("ETag", tag)
	// ServeContent handles Range, HEAD, If-None-Match, If-Modified-Since.
	http.ServeContent(w, r, "", mod, bytes.NewReader(b))
}

// hinted reports whether (msn, idx) is at or before the next part to be
// written: such a part is requestable at once and its response waits for
// it (LL-HLS §6.2.6); anything further is 404.
func hinted(s *Track, msn uint64, idx int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	return msn < s.nextMSN || (msn == s.nextMSN && idx <= s.nextPart)
}

func (h *mediaHandler) servePart(w http.ResponseWriter, r *http.Request, t *Track, msn uint64, idx int) {
	if p, ok := t.Part(msn, idx); ok {
		serveBytes(w, r, mime(t), p.Data, etag('p', msn, idx, p.CRC, len(p.Data)), p.Done)
		return
	}
	if !hinted(t, msn, idx) {
		notFound(w)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.maxWait)
	defer cancel()
	if r.Method != http.MethodGet || r.Header.Get("Range") != "" {
		// HEAD and byte ranges get the complete part (with its ETag).
		if err := t.Wait(ctx, msn, idx); err != nil {
			h.waitFailed(w, r, err)
			return
		}
		p, ok := t.Part(msn, idx)
		if !ok { // the awaited position was past the segment's last part
			notFound(w)
			return
		}
		serveBytes(w, r, mime(t), p.Data, etag('p', msn, idx, p.CRC, len(p.Data)), p.Done)
		return
	}
	// LL-HLS §6.2.6: the hinted part's response streams as it is written,
	// chunk by chunk (video: frame by frame).
	sent := 0
	fl, _ := w.(http.Flusher)
	for {
		data, complete, started, ch := t.partProgress(msn, idx)
		if complete && sent == 0 {
			p, _ := t.Part(msn, idx)
			serveBytes(w, r, mime(t), p.Data, etag('p', msn, idx, p.CRC, len(p.Data)), p.Done)
			return
		}
		if started {
			if sent == 0 {
				w.Header().Set("Content-Type", mime(t))
				w.Header().Set("Cache-Control", CacheImmutable)
				w.WriteHeader(http.StatusOK)
			}
			if len(data) > sent {
				if _, err := w.Write(data[sent:]); err != nil {
					return
				}
				sent = len(data)
				if fl != nil {
					fl.Flush()
				}
			}
			if complete {
				return
			}
		} else if err := partGone(t, msn, idx); err != nil {
			if sent > 0 {
				panic(http.ErrAbortHandler) // never let a cache keep a truncated part
			}
			if errors.Is(err, ErrNotFound) {
				notFound(w)
			} else {
				h.waitFailed(w, r, err)
			}
			return
		}
		select {
		case <-ctx.Done():
			if sent > 0 {
				panic(http.ErrAbortHandler)
			}
			h.waitFailed(w, r, ctx.Err())
			return
		case <-ch:
		}
	}
}

// partGone reports why part idx of segment msn, not started, never will
// be: the track ended (ErrEnded), the segment is complete without it or
// left the window (ErrNotFound); nil while it may still come.
func partGone(t *Track, msn uint64, idx int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	sg := t.segLocked(msn)
	switch {
	case sg == nil && len(t.segs) > 0 && msn < t.segs[0].MSN:
		return ErrNotFound
	case sg != nil && sg.Complete && idx >= len(sg.Parts):
		return ErrNotFound // the hint was past the segment's last part
	case t.ended:
		return ErrEnded
	}
	return nil
}

func (h *mediaHandler) waitFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		w.Header().Set("Cache-Control", CacheNoStore)
		http.Error(w, "not available in time", http.StatusServiceUnavailable)
	default:
		notFound(w)
	}
}

// serveGap serves gap segment msn's still picture (GapFill), or 404 when
// it has none. LL-HLS players do not load it (EXT-X-GAP, RFC 8216bis
// §4.4.4.7); DASH players must be able to.
func (h *mediaHandler) serveGap(w http.ResponseWriter, r *http.Request, t *Track, msn uint64) {
	b, ok := t.GapFill(msn)
	if !ok {
		notFound(w)
		return
	}
	serveBytes(w, r, mime(t), b, etag('g', msn, 0, crc32.ChecksumIEEE(b), len(b)), time.Time{})
}

func (h *mediaHandler) serveSegment(w http.ResponseWriter, r *http.Request, t *Track, msn uint64) {
	sg, ok := t.Segment(msn)
	if ok && sg.Gap {
		h.serveGap(w, r, t, msn)
		return
	}
	if ok && sg.Complete {
		b, _ := t.SegmentBytes(msn)
		var crc uint32
		for _, p := range sg.Parts {
			crc = crc*31 + p.CRC
		}
		var mod time.Time
		if len(sg.Parts) > 0 {
			mod = sg.Parts[len(sg.Parts)-1].Done
		}
		serveBytes(w, r, mime(t), b, etag('s', msn, 0, crc, len(b)), mod)
		return
	}
	// In progress or about to start: stream it with chunked transfer as
	// its parts are written (LL-DASH, DASH-IF IOP low latency).
	// DASH clients may ask for the segment after the one being written.
	if !ok && !hinted(t, msn, 0) && (msn == 0 || !hinted(t, msn-1, 0)) {
		notFound(w)
		return
	}
	if first, live := t.Window(); !ok && live && msn < first {
		// Left the window: 404, not an aborted 200 (WriteSegment finds
		// it gone after the headers; clients saw EOF).
		notFound(w)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.maxWait)
	defer cancel()
	if err := t.Wait(ctx, msn, 0); err != nil {
		h.waitFailed(w, r, err)
		return
	}
	if t.IsGap(msn) {
		h.serveGap(w, r, t, msn)
		return
	}
	w.Header().Set("Content-Type", mime(t))
	w.Header().Set("Cache-Control", CacheImmutable)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	// The whole segment may take one segment duration more.
	ctx2, cancel2 := context.WithTimeout(r.Context(), h.maxWait+t.Info().MaxSegment)
	defer cancel2()
	if err := t.WriteSegment(ctx2, w, msn); err != nil {
		// Never let a cache keep a truncated segment.
		panic(http.ErrAbortHandler)
	}
}
