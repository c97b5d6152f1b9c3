package dash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgenode/edgenode/internal/httpx"
	"github.com/edgenode/edgenode/origin/cmaf"
)

// statusOf maps errors to HTTP status codes, in one place.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	code := statusOf(err)
	httpx.SetCORS(w.Header())
	if code == http.StatusNotFound {
		w.Header().Set("Cache-Control", cmaf.CacheNotFound)
	} else {
		w.Header().Set("Cache-Control", cmaf.CacheNoStore)
	}
	msg := http.StatusText(code)
	if code == http.StatusBadRequest {
		msg = err.Error() // says which parameter was wrong
	}
	http.Error(w, msg, code)
	s.requests.WithLabelValues(strconv.Itoa(code)).Inc()
}

// timeURL is the UTCTiming value for a request.
func (s *Server) timeURL(r *http.Request) string {
	if s.cfg.UTCTimingURL != "" {
		return s.cfg.UTCTimingURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	host := r.Host
	if h := r.Header.Get("X-Forwarded-Host"); h != "" && !strings.ContainsAny(h, "/ ,\"<>") {
		host = h
	}
	return scheme + "://" + host + s.cfg.TimePath
}

// primary is the track that defines Periods: the first rendition's
// (source first) video, or its audio.
func primary(st *cmaf.Stream) *cmaf.Track {
	for _, r := range st.Renditions() {
		if r.Video != nil {
			return r.Video
		}
		if r.Audio != nil {
			return r.Audio
		}
	}
	return nil
}

// snapshot reads every track of st, primary first. It waits (up to
// FirstSegmentWait) until the primary track has a segment.
func (s *Server) snapshot(ctx context.Context, id uint64) ([]view, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FirstSegmentWait)
	defer cancel()
	for {
		st, ok := s.reg.Stream(id)
		if !ok && s.known != nil && !s.known(id) {
			return nil, fmt.Errorf("%w: stream %d", ErrNotFound, id)
		}
		if !ok {
			// A player opened before the publisher goes live (or while it
			// reconnects, or the node restarts) is held rather than failed:
			// dash.js gives up after a few MPD errors.
			if st, ok = s.reg.WaitStream(ctx, id); !ok {
				return nil, fmt.Errorf("%w: stream %d", ErrNotFound, id)
			}
		}
		p := primary(st)
		if p == nil {
			return nil, fmt.Errorf("%w: stream %d has no track", ErrNotFound, id)
		}
		changed := p.Changed()
		ps := p.Snapshot()
		if len(ps.Segments) > 0 && len(ps.Segments[0].Parts) > 0 {
			// A young stream's MPD waits (up to two segments from its
			// start) for the rungs its encoder makes: players keep the
			// Representations of their first MPD (cmaf.WaitRungs).
			if settle := ps.Segments[0].Wall.Add(2 * ps.Info.SegmentTarget); time.Now().Before(settle) {
				wctx, wcancel := context.WithDeadline(ctx, settle)
				s.reg.WaitRungs(wctx, id)
				wcancel()
				ps = p.Snapshot()
			}
			// A rung's rate cap bounds its video's @bandwidth from
			// below, as it does the HLS BANDWIDTH (cmaf.Bandwidth).
			rateCap := func(t *cmaf.Track) int {
				if t.Kind() != cmaf.Video {
					return 0
				}
				return s.reg.RateCap(id, t.Rendition())
			}
			views := []view{{rendition: p.Rendition(), kind: p.Kind(), snap: ps, track: p, rateCap: rateCap(p)}}
			for _, r := range st.Renditions() {
				for _, t := range r.Tracks() {
					if t == p {
						continue
					}
					views = append(views, view{rendition: t.Rendition(), kind: t.Kind(), snap: t.Snapshot(), track: t, rateCap: rateCap(t)})
				}
			}
			return views, nil
		}
		if ps.Ended {
			return nil, fmt.Errorf("%w: stream %d ended without media", ErrNotFound, id)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: stream %d has no segment yet", ErrNotFound, id)
		}
	}
}

// periods returns the Periods of the primary track's window and the
// availabilityStartTime, remembering each Period's anchor the first time
// it is seen so that its start never moves.
func (s *Server) periods(id uint64, prim *cmaf.Snapshot, now time.Time) ([]period, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.streams[id]
	if !ok {
		a = &anchors{periods: map[uint64]anchor{}}
		s.streams[id] = a
	}
	a.seen = now
	ts := float64(prim.Info.Timescale)
	var out []period
	for i, sg := range prim.Segments {
		if i > 0 && sg.DiscontinuitySeq == prim.Segments[i-1].DiscontinuitySeq {
			continue
		}
		an, ok := a.periods[sg.DiscontinuitySeq]
		if !ok {
			wall := sg.Wall
			if wall.IsZero() {
				wall = now
			}
			an = anchor{wall: wall.Truncate(time.Millisecond), media: float64(sg.BaseTime) / ts}
			// Periods never overlap: a later period starts no earlier
			// than the previous one plus its media.
			if n := len(out); n > 0 {
				prev := out[n-1]
				an.wall = maxTime(an.wall, prev.wall.Add(time.Duration((an.media-prev.media)*float64(time.Second))))
			}
			a.periods[sg.DiscontinuitySeq] = an
		}
		out = append(out, period{dsn: sg.DiscontinuitySeq, anchor: an})
	}
	// Forget periods that left the window.
	if len(out) > 0 {
		for dsn := range a.periods {
			if dsn < out[0].dsn {
				delete(a.periods, dsn)
			}
		}
	}
	// availabilityStartTime: fixed for the life of the stream in this
	// process, the wall clock of media time 0 as the first Period gives
	// it, so that each Period@start equals its presentationTimeOffset in
	// seconds (to within a millisecond; the media timeline runs on with
	// the wall clock across reconnects and restarts, cmaf.Segment.BaseTime)
	// and presentation time is media time. ISO/IEC 23009-1 allows any AST
	// (§5.3.2: a Period's media at PTO plays at AST + Period@start), and
	// this one is the only one with which the ProducerReferenceTime reads
	// the same whether the player maps its @presentationTime through
	// Period@start and PTO (§5.12, as dash.js does, DVB TS 103 285
	// §10.20.4) or, like Shaka Player 5.2, takes it for a presentation
	// time (dash_parser.js parseProducerReferenceTime_: wallClockTime −
	// presentationTime/timescale is the date of presentation time 0): with
	// AST one second before the first Period's whole second, Shaka's
	// getPlayheadTimeAsDate was late by Period@start − PTO, 1-2 s.
	if a.ast().IsZero() && len(out) > 0 {
		a.astTime = out[0].wall.Add(-time.Duration(out[0].media * float64(time.Second))).Truncate(time.Millisecond)
	}
	// Drop anchors of streams not asked for in a long while.
	for sid, other := range s.streams {
		if now.Sub(other.seen) > time.Hour {
			delete(s.streams, sid)
		}
	}
	return out, a.ast()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// MPDCacheControl is the Cache-Control of a live MPD (docs/cdn.md).
const MPDCacheControl = "public, max-age=0, s-maxage=1"

func (s *Server) serveMPD(w http.ResponseWriter, r *http.Request) {
	id, ok := cmaf.ParseStreamID(r.PathValue("id"))
	if !ok {
		s.fail(w, fmt.Errorf("%w: stream %q", ErrNotFound, r.PathValue("id")))
		return
	}
	next, hasNext, err := parseNext(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	if hasNext {
		s.holdForNext(r.Context(), id, next)
	}
	views, err := s.snapshot(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	if s.holdForSegment(r.Context(), &views[0]) {
		if views, err = s.snapshot(r.Context(), id); err != nil {
			s.fail(w, err)
			return
		}
	}
	now := time.Now()
	ended := views[0].snap.Ended
	pers, ast := s.periods(id, &views[0].snap, now)
	m := buildMPD(&mpdInput{tracks: views, periods: pers, ast: ast, now: now, timeURL: s.timeURL(r), cfg: s.cfg,
		video: func(v *view, initID uint64) (videoInfo, bool) { return s.videoInfo(id, v, initID) }}, ended)
	var buf bytes.Buffer
	if _, err := m.Write(&buf, "  ", true); err != nil {
		s.fail(w, err)
		return
	}
	h := w.Header()
	httpx.SetCORS(h)
	h.Set("Content-Type", "application/dash+xml")
	switch {
	case ended:
		h.Set("Cache-Control", "public, max-age=60")
	case startingUp(&views[0].snap):
		// Reloaded every part (mpd.go startingUp): a CDN must not hold it.
		h.Set("Cache-Control", "no-cache")
	default:
		// A CDN may serve one copy for a second (s-maxage; nginx honours
		// it before max-age); a browser must not keep one at all: when
		// the player page reloaded the MPD every 200 ms, with max-age=1
		// Chromium answered four of five reloads from its own cache, so
		// dash.js learnt of each segment up to a second late, in step
		// with the segments for the whole session, and ran dry at every
		// boundary in some runs (18–26 stalls in 40 s, node/e2e_test.go
		// player log: a segment first requested 0.85 s after it started).
		h.Set("Cache-Control", MPDCacheControl)
	}
	s.requests.WithLabelValues("200").Inc()
	httpx.ServeDocument(w, r, buf.Bytes())
}

// NextParam is the query parameter of an MPD's update URL: each live MPD
// names, in its Location element, index.mpd?next=N with N the number
// ($Number$, the LL-HLS media sequence number) of the segment after the
// newest it lists.
const NextParam = "next"

// parseNext reads the update URL's segment number, if the request has one.
func parseNext(r *http.Request) (uint64, bool, error) {
	q := r.URL.Query()
	if !q.Has(NextParam) {
		return 0, false, nil
	}
	v := q.Get(NextParam)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %s=%q is not a segment number (a decimal integer)", ErrBadRequest, NextParam, v)
	}
	return n, true, nil
}

// holdForNext holds a request for an MPD's update URL (?next=N, its
// Location) until every track of the stream lists segment N, at most
// three segment durations, or until the stream ends. The URL of each MPD
// version is thus the same for every viewer and names what it will
// contain, so a CDN may cache and coalesce it (docs/cdn.md rule 7) while
// a player that reloads it learns of a segment as it starts: reloading
// the one plain URL through a cache that keeps it a second (nginx cannot
// keep anything shorter), dash.js learnt of each segment up to two
// seconds late and stalled ten times a minute on the ladder. Stock
// players follow Location for every update (ISO/IEC 23009-1 §5.3.1.2
// Table 3, §5.4.1; dash.js 5.2 ManifestUpdater.refreshManifest, Shaka
// Player 5.2 DashParser). Waiting on every track, not only the source
// video, matters for the ladder: a rung's encoder starts each segment a
// few frames after the source does, and an MPD written at the source's
// boundary would list the rung's segment only in the next version, a
// second later (waitsFor).
func (s *Server) holdForNext(ctx context.Context, id, n uint64) {
	st, ok := s.reg.Stream(id)
	if !ok {
		return // snapshot holds or fails a stream that is not live
	}
	p := primary(st)
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, max(p.Snapshot().Info.SegmentTarget, 100*time.Millisecond)*3)
	defer cancel()
	for {
		var wait <-chan struct{}
		for _, r := range st.Renditions() {
			for _, t := range r.Tracks() {
				ch := t.Changed()
				snap := t.Snapshot()
				if waitsFor(t == p, &snap, n) {
					wait = ch
					break
				}
			}
			if wait != nil {
				break
			}
		}
		if wait == nil {
			return
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return
		}
	}
}

// waitsFor reports whether an update for segment n waits for track snap:
// the primary track until it has n; another only while it is on the
// segment just before (a rung whose encoder is down, further behind,
// must not hold every player's update).
func waitsFor(primary bool, snap *cmaf.Snapshot, n uint64) bool {
	k := len(snap.Segments)
	if snap.Ended || n == 0 {
		return false
	}
	if k == 0 {
		return primary
	}
	last := snap.Segments[k-1].MSN
	if primary {
		return last < n
	}
	return last == n-1
}

// holdForSegment holds an MPD request while the window is only a
// stream's first segment, until that segment is complete (at most 1.5
// segment durations), and reports whether it waited. A publisher
// session's first segment is short (ingest asks for an early keyframe so
// that HLS players, which start from a complete segment, start sooner)
// but is announced at its nominal length while it is written; dash.js 5
// reloads the MPD no more often than once a second
// (getManifestUpdatePeriod: max(minimumUpdatePeriod − latency, 1 s)), so
// answered at once it learnt of the second segment only a second later
// and sat idle for 0.9 s after the first one (node/e2e_test.go
// TestStartAfterPublish: 2.3 s to play on a loaded CI box). Held, the
// player starts with the first segment's real length and the next one
// already listed. Later requests are answered at once: a hold cannot
// know which segments the asking player already has.
func (s *Server) holdForSegment(ctx context.Context, v *view) bool {
	t := v.track
	if t == nil || !startingUp(&v.snap) {
		return false
	}
	first := v.snap.Segments[0].MSN
	ctx, cancel := context.WithTimeout(ctx, max(v.snap.Info.SegmentTarget, 100*time.Millisecond)*3/2)
	defer cancel()
	for {
		ch := t.Changed()
		snap := t.Snapshot()
		if n := len(snap.Segments); snap.Ended || n > 0 && snap.Segments[n-1].MSN > first {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return true
		}
	}
}

type initKey struct {
	stream    uint64
	rendition string
	init      uint64
}

// videoInfo reads (once) what init segment initID of v describes.
func (s *Server) videoInfo(id uint64, v *view, initID uint64) (videoInfo, bool) {
	k := initKey{id, v.rendition, initID}
	s.mu.Lock()
	vi, ok := s.inits[k]
	s.mu.Unlock()
	if ok {
		return vi, true
	}
	if v.track == nil {
		return videoInfo{}, false
	}
	b, ok := v.track.Init(initID)
	if !ok {
		return videoInfo{}, false
	}
	vi, err := parseVideoInit(b)
	if err != nil {
		s.log.Warn("dash: unreadable init segment", "stream", id, "rendition", v.rendition, "init", initID, "err", err)
		return videoInfo{}, false
	}
	s.mu.Lock()
	if len(s.inits) > 4096 { // bounded: a long-lived node sees many inits
		clear(s.inits)
	}
	s.inits[k] = vi
	s.mu.Unlock()
	return vi, true
}
