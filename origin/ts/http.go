package ts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/edgenode/edgenode/internal/httpx"
	"github.com/edgenode/edgenode/internal/hub"
)

// RegisterRoutes adds the legacy HLS routes:
//
//	GET /hls/{id}/master.m3u8            multivariant playlist
//	GET /hls/{id}/{rendition}/index.m3u8 media playlist
//	GET /hls/{id}/{rendition}/{file}     seg<n>.ts
//	OPTIONS /hls/                        CORS preflight
//
// {id} is the hub stream id in decimal. GET patterns also answer HEAD.
func (s *Server) RegisterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /hls/{id}/master.m3u8", s.serveMaster)
	mux.HandleFunc("GET /hls/{id}/{rendition}/index.m3u8", s.serveMedia)
	mux.HandleFunc("GET /hls/{id}/{rendition}/{file}", s.serveSegment)
	mux.HandleFunc("OPTIONS /hls/", httpx.Preflight)
}

// statusOf maps the package's errors to HTTP status codes, in one place.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (s *Server) fail(w http.ResponseWriter, kind string, err error) {
	code := statusOf(err)
	h := w.Header()
	httpx.SetCORS(h)
	// Apple HLS authoring spec / RFC 8216bis App. B.1: cache a failure
	// about one target duration, so a CDN absorbs retries. The
	// multivariant playlist's only 1 s, as LL-HLS's: it becomes playable
	// within a segment of the publisher's start.
	age := max(1, int(s.cfg.SegmentDuration.Seconds()))
	if kind == "master" {
		age = 1
	}
	h.Set("Cache-Control", fmt.Sprintf("max-age=%d", age))
	msg := http.StatusText(code)
	if code == http.StatusNotFound {
		msg = strings.TrimPrefix(err.Error(), "ts: ") // says what is missing
	}
	http.Error(w, msg, code)
	s.m.requests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
}

func parseID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: stream %q", ErrNotFound, r.PathValue("id"))
	}
	return id, nil
}

// waitFirst waits (up to BlockTimeout) until r has a complete segment, so
// that a player that starts with the publisher gets a playlist at once
// instead of a 404 and a retry.
func (s *Server) waitFirst(ctx context.Context, r *rendition) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.BlockTimeout)
	defer cancel()
	for {
		r.mu.Lock()
		n, live, ch := len(r.segs), r.live, r.changed
		r.mu.Unlock()
		if n > 0 {
			return nil
		}
		if !live {
			return fmt.Errorf("%w: no segment yet", ErrNotFound)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: no segment yet", ErrNotFound)
		}
	}
}

// serveMaster answers with the variants that are playable (see playable).
// Before any is, it waits up to BlockTimeout, so that a player that starts
// with the publisher gets a playlist as soon as one is, instead of a 404
// and a retry. Unknown stream (SetKnown): 404 at once; a known one not
// live or nothing playable in time: 404 (as LL-HLS's multivariant
// playlist, origin/hls), cached 1 s.
func (s *Server) serveMaster(w http.ResponseWriter, req *http.Request) {
	id, err := parseID(req)
	if err != nil {
		s.fail(w, "master", err)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), s.cfg.BlockTimeout)
	defer cancel()
	for {
		changed := s.changes() // before the snapshot: no change is missed
		rs := s.renditions(id)
		if len(rs) == 0 {
			if known := s.known.Load(); known == nil || !(*known)(id) {
				s.fail(w, "master", fmt.Errorf("%w: stream %d", ErrNotFound, id))
				return
			}
			select { // known, not live (yet): wait for its publisher
			case <-changed:
				continue
			case <-ctx.Done():
				s.fail(w, "master", fmt.Errorf("%w: stream %d is not live", ErrNotFound, id))
				return
			}
		}
		snap := make([]variant, 0, len(rs))
		live := false
		for _, r := range rs {
			v := r.snapshot()
			live = live || v.live
			snap = append(snap, v)
		}
		vs, why := playable(snap)
		if len(vs) > 0 {
			sortVariants(vs)
			s.writePlaylist(w, req, "master", renderMaster(vs), false)
			return
		}
		if !live {
			s.fail(w, "master", fmt.Errorf("%w: stream %d: %s", ErrNotFound, id, why))
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			s.fail(w, "master", fmt.Errorf("%w: stream %d not playable yet: %s", ErrNotFound, id, why))
			return
		}
	}
}

func joinCodecs(v, a string) string {
	if v == "" {
		return a
	}
	if a == "" {
		return v
	}
	return v + "," + a
}

// sortVariants orders by peak bandwidth, highest first; the source
// rendition first among equals.
func sortVariants(vs []variant) {
	slices.SortStableFunc(vs, func(a, b variant) int {
		if a.peak != b.peak {
			return b.peak - a.peak
		}
		if a.name == hub.Source {
			return -1
		}
		if b.name == hub.Source {
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
}

func (s *Server) serveMedia(w http.ResponseWriter, req *http.Request) {
	id, err := parseID(req)
	if err != nil {
		s.fail(w, "media", err)
		return
	}
	r, ok := s.lookup(id, req.PathValue("rendition"))
	if !ok {
		s.fail(w, "media", fmt.Errorf("%w: rendition", ErrNotFound))
		return
	}
	if err := s.waitFirst(req.Context(), r); err != nil {
		s.fail(w, "media", err)
		return
	}
	r.mu.Lock()
	body := renderMedia(r.listedLocked(), s.cfg.SegmentDuration, r.ended)
	ended := r.ended
	r.mu.Unlock()
	s.writePlaylist(w, req, "media", body, ended)
}

// writePlaylist sends a playlist: gzip when accepted (RFC 8216bis App.
// B.1), strong ETag of the content, Cache-Control half a target duration
// while live.
func (s *Server) writePlaylist(w http.ResponseWriter, req *http.Request, kind, body string, ended bool) {
	h := w.Header()
	httpx.SetCORS(h)
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	maxAge := max(1, int(s.cfg.SegmentDuration.Seconds()/2))
	if ended {
		maxAge = int(s.cfg.Linger.Seconds())
	}
	h.Set("Cache-Control", fmt.Sprintf("max-age=%d", maxAge))
	s.m.requests.WithLabelValues(kind, "200").Inc()
	httpx.ServeDocument(w, req, []byte(body))
}

func (s *Server) serveSegment(w http.ResponseWriter, req *http.Request) {
	id, err := parseID(req)
	if err != nil {
		s.fail(w, "segment", err)
		return
	}
	seq, ok := parseSegmentName(req.PathValue("file"))
	if !ok {
		s.fail(w, "segment", fmt.Errorf("%w: file %q", ErrNotFound, req.PathValue("file")))
		return
	}
	r, ok := s.lookup(id, req.PathValue("rendition"))
	if !ok {
		s.fail(w, "segment", fmt.Errorf("%w: rendition", ErrNotFound))
		return
	}
	var seg *segment
	r.mu.Lock()
	for _, sg := range r.segs {
		if sg.seq == seq {
			seg = sg
			break
		}
	}
	r.mu.Unlock()
	if seg == nil {
		s.fail(w, "segment", fmt.Errorf("%w: segment %d", ErrNotFound, seq))
		return
	}
	h := w.Header()
	httpx.SetCORS(h)
	h.Set("Content-Type", "video/mp2t")
	// Complete segments never change (numbers are never reused, also
	// across restarts): RFC 8216bis App. B.1 long caching.
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", fmt.Sprintf(`"ts-%d-%s-%d-%d"`, id, r.key.Rendition, seq, len(seg.data)))
	s.m.requests.WithLabelValues("segment", "200").Inc()
	http.ServeContent(w, req, "", seg.done, bytes.NewReader(seg.data))
}
