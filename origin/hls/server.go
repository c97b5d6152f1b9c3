// Package hls serves the CMAF tracks of origin/cmaf as Low-Latency HLS
// (draft-pantos-hls-rfc8216bis): a multivariant playlist per stream and a
// media playlist per track, with parts, preload hints, blocking reloads,
// delta updates, rendition reports and PROGRAM-DATE-TIME.
//
// URLs (all under /cmaf/{id}/):
//
//	master.m3u8                   multivariant playlist
//	{rendition}/video.m3u8        video media playlist
//	{rendition}/audio.m3u8        audio media playlist (EXT-X-MEDIA group)
//	{rendition}/{kind}/{file}     init, segments, parts (origin/cmaf)
//
// Audio is not muxed: it is an EXT-X-MEDIA audio group. With a transcoder
// every variant shares one group, its AAC-only rendition
// (SetAudioRendition), cut at the video's segment boundaries with the same
// MSNs (cmaf.SegmentClock); without one each variant has its own track
// (the source's Opus). The multivariant
// playlist lists the renditions that have a complete segment (waiting up to
// two segment durations for ones that are starting): see serveMaster.
package hls

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/httpx"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/origin/cmaf"
)

// Server serves LL-HLS playlists. Safe for concurrent use.
type Server struct {
	cfg Config
	reg *cmaf.Registry
	log *slog.Logger

	requests *prometheus.CounterVec
	blocked  prometheus.Gauge
	blockedN atomic.Int64 // the same, for benchmarks

	cacheMu sync.Mutex
	cache   map[plKey]*plEntry

	// tails: the newest part each track's playlists have listed and when
	// (tail.go holdTails).
	tailsMu sync.Mutex
	tails   map[trackKey]newestPart

	known func(uint64) bool // nil: every id may appear

	// audioRendition names the rendition that only carries AAC audio
	// (the transcoder's); "" when none.
	audioRendition string
}

// SetAudioRendition names the rendition that carries only the
// transcoder's AAC audio (hwenc.AudioRendition): it is not a variant of
// the multivariant playlist but the audio group of the renditions whose
// own audio is not AAC (the source's Opus). Call before serving.
func (s *Server) SetAudioRendition(name string) { s.audioRendition = name }

// SetKnown installs a check for stream ids that exist at all: requests for
// other ids get 404 at once instead of waiting StartTimeout for a
// publisher. Call before serving.
func (s *Server) SetKnown(f func(id uint64) bool) { s.known = f }

// plKey names one rendered media playlist variant.
type plKey struct {
	stream    uint64
	rendition string
	kind      cmaf.Kind
	skip      bool
}

// plEntry is the last rendering of a playlist; requests released together
// by a blocking reload share it instead of rendering it a thousand times.
type plEntry struct {
	mu   sync.Mutex
	sig  uint64
	body []byte
	gz   []byte
	tag  string
	mod  time.Time
	td   time.Duration
	// until: the rendering held a segment's completion back (tail.go) until
	// then; it is stale from then on though nothing in the stream changed.
	until time.Time
}

// New returns a Server over reg. metrics may be nil.
func New(cfg Config, reg *cmaf.Registry, log *slog.Logger, metrics prometheus.Registerer) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 3 * time.Second
	}
	s := &Server{
		cfg: cfg, reg: reg, log: log,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgenode", Subsystem: "origin_hls", Name: "playlist_requests_total",
			Help: "LL-HLS playlist requests by kind and status code.",
		}, []string{"kind", "code"}),
		blocked: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgenode", Subsystem: "origin_hls", Name: "blocked_requests",
			Help: "Playlist requests currently held by blocking reload.",
		}),
	}
	if metrics != nil {
		for _, c := range []prometheus.Collector{s.requests, s.blocked} {
			if err := metrics.Register(c); err != nil {
				return nil, fmt.Errorf("hls: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// RegisterRoutes mounts the playlist routes.
func (s *Server) RegisterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /cmaf/{id}/master.m3u8", s.serveMaster)
	mux.HandleFunc("OPTIONS /cmaf/{id}/master.m3u8", httpx.Preflight)
	mux.HandleFunc("GET /cmaf/{id}/{rendition}/{playlist}", s.serveMedia)
	mux.HandleFunc("OPTIONS /cmaf/{id}/{rendition}/{playlist}", httpx.Preflight)
}

// waitStream holds a request for a stream that is not packaged (yet, or
// again after a node restart) for StartTimeout.
func (s *Server) waitStream(ctx context.Context, id uint64) (*cmaf.Stream, bool) {
	if st, ok := s.reg.Stream(id); ok {
		return st, true
	}
	if s.known != nil && !s.known(id) {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	return s.reg.WaitStream(ctx, id)
}

// waitStart waits until every track has a complete segment of media
// (hasMedia), or the timeout.
func (s *Server) waitStart(ctx context.Context, tracks func() []*cmaf.Track) bool {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	for {
		ready := true
		var ch <-chan struct{}
		ts := tracks()
		if len(ts) == 0 {
			return false
		}
		for _, t := range ts {
			snap := t.Snapshot()
			if !hasMedia(snap) {
				ready = false
				ch = t.Changed()
				break
			}
		}
		if ready {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

func (s *Server) fail(w http.ResponseWriter, kind string, code int, cache string, msg string) {
	s.requests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
	w.Header().Set("Cache-Control", cache)
	http.Error(w, msg, code)
}

func maxAge(d time.Duration) string {
	ms := d.Milliseconds()
	sec := max((ms+500)/1000, 1)
	return fmt.Sprintf("public, max-age=%d", sec)
}

func (s *Server) serveMaster(w http.ResponseWriter, r *http.Request) {
	httpx.SetCORS(w.Header())
	id, ok := cmaf.ParseStreamID(r.PathValue("id"))
	if !ok {
		s.fail(w, "master", http.StatusNotFound, maxAge(time.Second), "no such stream")
		return
	}
	st, ok := s.waitStream(r.Context(), id)
	// Wait for the source rendition (the first one when there is no
	// "source") to have a segment.
	if !ok || !s.waitStart(r.Context(), func() []*cmaf.Track {
		if rd, ok := st.Rendition(hub.Source); ok {
			return rd.Tracks()
		}
		if rs := st.Renditions(); len(rs) > 0 {
			return rs[0].Tracks()
		}
		return nil
	}) {
		s.fail(w, "master", http.StatusNotFound, maxAge(time.Second), "no such stream")
		return
	}
	// Renditions appear while the publisher ramps up (the transcoder adds
	// a rung once the source is tall enough). hls.js loads the
	// multivariant playlist once, so give renditions that exist but have
	// no complete segment yet up to two segment durations to get one; the
	// playlist then lists the renditions that are ready. A player that
	// loaded it earlier keeps playing the levels it got (all of them stay
	// valid: a rung, once published, keeps its size); renditions that
	// appear later reach players on their next load of master.m3u8
	// (max-age 1 s).
	settle := 2 * time.Second
	if rd, ok := st.Rendition(hub.Source); ok && rd.Video != nil {
		snap := rd.Video.Snapshot()
		settle = 2 * snap.Info.SegmentTarget
		// A young stream's rungs may not exist yet (the encoder's first
		// output comes a GOP after the source's): wait for the ones the
		// encoder makes, as the MPD does, so that a player opened before
		// the stream went live gets the whole ladder.
		if len(snap.Segments) > 0 {
			if until := snap.Segments[0].Wall.Add(settle); time.Now().Before(until) {
				wctx, wcancel := context.WithDeadline(r.Context(), until)
				s.reg.WaitRungs(wctx, id)
				wcancel()
			}
		}
	}
	s.waitReady(r.Context(), settle, func() []*cmaf.Track {
		var ts []*cmaf.Track
		for _, rd := range st.Renditions() {
			ts = append(ts, rd.Tracks()...)
		}
		return ts
	})
	s.write(w, r, "master", Multivariant(s.variants(st)), maxAge(time.Second), time.Time{})
}

// variants lists the ready renditions of st as multivariant variants.
func (s *Server) variants(st *cmaf.Stream) []Variant {
	// The transcoder's AAC-only rendition is the audio of every variant
	// (the source's instead of its Opus: Apple HLS authoring spec, AAC
	// audio; Opus only when no encoder runs).
	var aac *cmaf.Rendition
	if s.audioRendition != "" {
		if rd, ok := st.Rendition(s.audioRendition); ok && rd.Audio != nil && ready(rd.Tracks()) {
			aac = rd
		}
	}
	var vs []Variant
	for _, rd := range st.Renditions() {
		if rd.Name == s.audioRendition || !ready(rd.Tracks()) {
			continue
		}
		v := Variant{Name: rd.Name, AudioGroup: "a-" + rd.Name}
		audio := rd.Audio
		if aac != nil && audio != nil && rd.Video != nil {
			// Every variant shares the AAC group: the transcoder's rungs
			// carry the very same AAC frames, and one group means hls.js
			// never switches (and flushes) audio on a level switch.
			audio = aac.Audio
			v.AudioGroup, v.AudioName = "a-"+aac.Name, aac.Name
		}
		if rd.Video != nil {
			v.URI = rd.Name + "/video.m3u8"
			v.Video = rd.Video.Info()
			// A transcoded rung: its configured bit rate (the registry's
			// ladder) is a floor for BANDWIDTH and the average until one
			// is measured. The MPD's @bandwidth is the same figure
			// (cmaf.Bandwidth).
			v.Bandwidth, v.AverageBandwidth = bandwidth(rd.Video, s.reg.RateCap(st.ID, rd.Name))
		} else if audio != nil {
			v.URI = audio.Rendition() + "/audio.m3u8"
		}
		if audio != nil {
			ai := audio.Info()
			if rd.Video == nil {
				v.Video = ai
			} else {
				v.Audio = &ai
				v.AudioURI = audio.Rendition() + "/audio.m3u8"
			}
			pb, ab := bandwidth(audio, 0)
			v.Bandwidth += pb
			v.AverageBandwidth += ab
		}
		vs = append(vs, v)
	}
	return vs
}

// waitListed waits, up to the start timeout, until the source video's
// playlist, as syncSnapshot lists it, has a complete media segment: the
// track's own first segment is complete (waitStart) a little before its
// audio group and the rungs cover it, and a playlist of parts only has no
// segment to a player. hls.js raised levelEmptyError ("No Segments found
// in Playlist") on the ladder's source playlist at start and retried it a
// second later (TestStockPlayers: first frame 1.4 s against 0.4 s for
// passthrough).
func (s *Server) waitListed(ctx context.Context, t, audio *cmaf.Track, rungs []*cmaf.Track) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	for {
		tc, ac := t.Changed(), audio.Changed()
		if hasMedia(syncSnapshot(t.Snapshot(), audio.Snapshot(), rungSnapshots(rungs)...)) {
			return
		}
		// The source's frames come every few tens of milliseconds, so its
		// changes also wake a wait on the rungs.
		select {
		case <-ctx.Done():
			return
		case <-tc:
		case <-ac:
		}
	}
}

// waitReady waits up to d for every track to be playable.
func (s *Server) waitReady(ctx context.Context, d time.Duration, tracks func() []*cmaf.Track) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		var ch <-chan struct{}
		for _, t := range tracks() {
			if snap := t.Snapshot(); !playable(snap) {
				ch = t.Changed()
				break
			}
		}
		if ch == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// ready reports whether every track has a complete segment.
func ready(ts []*cmaf.Track) bool {
	for _, t := range ts {
		if !playable(t.Snapshot()) {
			return false
		}
	}
	return len(ts) > 0
}

// hasMedia reports whether snap lists a complete segment that is media,
// not a gap (EXT-X-GAP): players and parsers expect at least one EXTINF
// they can load.
func hasMedia(snap cmaf.Snapshot) bool {
	for _, sg := range snap.Segments {
		if sg.Complete && !sg.Gap {
			return true
		}
	}
	return false
}

// playable reports whether the multivariant playlist may offer snap's
// rendition to a player that starts now: it has media (hasMedia) and its
// latest complete segment is media too. Shaka Player probes a new
// playlist's middle segment, moving on past gaps, and its load failed
// ("TypeError: Cannot read properties of undefined (reading 'match')")
// when that brought it to the open segment, which has parts but no URI
// yet: a rung whose encoder shed its first GOPs while starting (it is
// behind real time then) is all gaps but for the open segment. A rung
// that is restarting or shedding is offered again once it has media.
func playable(snap cmaf.Snapshot) bool {
	for i := len(snap.Segments) - 1; i >= 0; i-- {
		if sg := snap.Segments[i]; sg.Complete {
			return !sg.Gap
		}
	}
	return false
}

// bandwidth is the peak and average bit rate of t as the multivariant
// playlist states it (cmaf.Bandwidth: the MPD states the same figures).
func bandwidth(t *cmaf.Track, rateCap int) (peak, avg int) {
	snap := t.Snapshot()
	return cmaf.Bandwidth(&snap, rateCap)
}

// query holds the parsed _HLS_ parameters.
type query struct {
	msn      uint64
	part     int // -1 when absent
	blocking bool
	skip     bool
}

// parseQuery applies §6.2.5.2 / §6.2.5.1 syntax rules.
func parseQuery(r *http.Request) (query, error) {
	q := query{part: -1}
	v := r.URL.Query()
	msn, hasMSN := v["_HLS_msn"]
	part, hasPart := v["_HLS_part"]
	if hasPart && !hasMSN {
		// §6.2.5.2: _HLS_part without _HLS_msn is a client error.
		return q, fmt.Errorf("%w: _HLS_part without _HLS_msn", ErrBadRequest)
	}
	if hasMSN {
		n, err := strconv.ParseUint(msn[0], 10, 64)
		if err != nil {
			return q, fmt.Errorf("%w: _HLS_msn %q", ErrBadRequest, msn[0])
		}
		q.msn, q.blocking = n, true
	}
	if hasPart {
		n, err := strconv.ParseUint(part[0], 10, 31)
		if err != nil {
			return q, fmt.Errorf("%w: _HLS_part %q", ErrBadRequest, part[0])
		}
		q.part = int(n)
	}
	switch sk := v.Get("_HLS_skip"); sk {
	case "":
	case "YES", "v2":
		q.skip = true
	default:
		return q, fmt.Errorf("%w: _HLS_skip %q", ErrBadRequest, sk)
	}
	return q, nil
}

func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) {
	httpx.SetCORS(w.Header())
	id, ok := cmaf.ParseStreamID(r.PathValue("id"))
	name := r.PathValue("playlist")
	kindName, isPl := strings.CutSuffix(name, ".m3u8")
	kind, okKind := cmaf.ParseKind(kindName)
	q, qerr := parseQuery(r)
	notFoundCache := maxAge(time.Second)
	if q.blocking {
		notFoundCache = maxAge(4 * time.Second) // App. B.1: 404 of a blocking request 4 × TD
	}
	if !ok || !isPl || !okKind {
		s.fail(w, "media", http.StatusNotFound, notFoundCache, "not found")
		return
	}
	rendition := r.PathValue("rendition")
	var t *cmaf.Track
	st, ok := s.waitStream(r.Context(), id)
	if ok {
		if rd, ok := st.Rendition(rendition); ok {
			t = rd.Track(kind)
		}
	}
	if t == nil {
		s.fail(w, "media", http.StatusNotFound, notFoundCache, "not found")
		return
	}
	if qerr != nil {
		s.fail(w, "media", http.StatusBadRequest, "no-store", qerr.Error())
		return
	}
	if !s.waitStart(r.Context(), func() []*cmaf.Track { return []*cmaf.Track{t} }) {
		s.fail(w, "media", http.StatusNotFound, notFoundCache, "no media yet")
		return
	}
	// Only a player's first, non-blocking load can come before the
	// source's first segment is listed; blocking reloads (the hot path)
	// never wait here.
	if !q.blocking {
		if a := s.audioGroup(st, rendition, kind); a != nil {
			s.waitListed(r.Context(), t, a, s.rungs(st, rendition, kind))
		}
	}
	snap := t.Snapshot()
	td := time.Duration(TargetDuration(snap)) * time.Second
	// §6.2.5.2: ignore blocking parameters once the playlist has ENDLIST.
	if q.blocking && !snap.Ended {
		timeout := s.cfg.BlockTimeout
		if timeout == 0 {
			timeout = 3 * td // §6.2.5.2: 503 after 3 × target duration
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		s.blocked.Inc()
		s.blockedN.Add(1)
		err := t.Wait(ctx, q.msn, q.part)
		s.blockedN.Add(-1)
		s.blocked.Dec()
		cancel()
		if err == nil {
			if a := s.audioGroup(st, rendition, kind); a != nil {
				snap := t.Snapshot()
				if end, ok := partEnd(&snap, q.msn, q.part); ok {
					waitAudio(r.Context(), a, end)
					waitRungs(r.Context(), s.rungs(st, rendition, kind), end)
				}
			}
		}
		if err == nil {
			s.waitTail(r.Context(), st, trackKey{id, rendition, kind}, t, q.msn, q.part)
		}
		switch {
		case err == nil, errors.Is(err, cmaf.ErrEnded):
		case errors.Is(err, cmaf.ErrTooFar):
			// §6.2.5.2: more than two segments ahead → 400 at once.
			s.fail(w, "media", http.StatusBadRequest, "no-store", "_HLS_msn too far in the future")
			return
		case r.Context().Err() != nil:
			return // client gone
		default:
			s.fail(w, "media", http.StatusServiceUnavailable, "no-store", "blocked too long")
			return
		}
	}
	if !q.blocking && !snap.Ended {
		// A non-blocking reload while a segment's completion is held
		// back (tail.go) waits out the hold (at most tailHold): the
		// preload hint names the next segment's first part, which a
		// client that fetches the hint and reloads without blocking
		// (gohlslib 2.4.5) may have had already, and would fetch again
		// and again until the hold ended, feeding its decoder the same
		// frames twice.
		//
		// The hold counts from now for this client, as for any other
		// that lists these parts now: recorded as listed, or the
		// rendering after the wait counted the hold from its own time
		// and held again, so that a non-blocking load that came first
		// to a segment's tail waited 1.5 part targets and still got a
		// listing that old (its listed edge ~0.7-1 s behind the wall
		// clock where the media was 0.1 s: a player starting from it
		// starts that much further behind).
		k := trackKey{id, rendition, kind}
		now := time.Now()
		if held, until := s.listing(st, k, t, now); !until.IsZero() {
			s.noteListed(k, &held, now)
			timer := time.NewTimer(time.Until(until))
			select {
			case <-r.Context().Done():
			case <-timer.C:
			}
			timer.Stop()
		}
	}
	e := s.render(st, plKey{id, rendition, kind, q.skip}, t)
	// A non-blocking load is where a player takes its start position
	// (hls.js: the listed edge minus PART-HOLD-BACK) and stock hls.js
	// never catches up after it, so a copy a CDN kept for a second
	// (App. B.1 suggests 0.5 × TD; nginx keeps whole seconds, 1-2 s)
	// started it up to that much further behind for the whole session
	// (through the documented nginx: 1.6 s against 1.2 s direct). Players
	// load it once, then reload blocking (cached below): not caching it
	// costs the node one request per viewer start.
	cache := "no-cache"
	if q.blocking {
		cache = maxAge(6 * e.td) // App. B.1: blocking responses 6 × TD
	}
	s.writeEntry(w, r, e, cache)
}

// render returns the current rendering of a media playlist, from the
// cache when nothing in the stream changed since.
func (s *Server) render(st *cmaf.Stream, k plKey, t *cmaf.Track) *plEntry {
	s.cacheMu.Lock()
	if s.cache == nil {
		s.cache = map[plKey]*plEntry{}
	}
	e, ok := s.cache[k]
	if !ok {
		e = &plEntry{}
		s.cache[k] = e
		// Forget streams that are gone.
		for ck := range s.cache {
			if _, live := s.reg.Stream(ck.stream); !live {
				delete(s.cache, ck)
			}
		}
		s.tailsMu.Lock()
		for tk := range s.tails {
			if _, live := s.reg.Stream(tk.stream); !live {
				delete(s.tails, tk)
			}
		}
		s.tailsMu.Unlock()
	}
	s.cacheMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	sig := st.Version()
	now := time.Now()
	if e.body != nil && e.sig == sig && (e.until.IsZero() || now.Before(e.until)) {
		return &plEntry{body: e.body, gz: e.gz, tag: e.tag, mod: e.mod, td: e.td}
	}
	tk := trackKey{k.stream, k.rendition, k.kind}
	var snap cmaf.Snapshot
	snap, e.until = s.listing(st, tk, t, now)
	s.noteListed(tk, &snap, now)
	body := MediaPlaylist(snap, MediaOptions{
		Prefix:       k.kind.String() + "/",
		PartHoldBack: s.cfg.PartHoldBack,
		Skip:         k.skip,
		Reports:      s.reports(k.stream, k.rendition, k.kind),
	})
	var mod time.Time
	if n := len(snap.Segments); n > 0 {
		if p := snap.Segments[n-1].Parts; len(p) > 0 {
			mod = p[len(p)-1].Done
		}
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(body)
	_ = zw.Close()
	e.sig, e.body, e.gz, e.mod = sig, body, buf.Bytes(), mod
	e.td = time.Duration(TargetDuration(snap)) * time.Second
	e.tag = fmt.Sprintf(`"%x-%d`, crc32.ChecksumIEEE(body), len(body))
	return &plEntry{body: e.body, gz: e.gz, tag: e.tag, mod: e.mod, td: e.td}
}

// writeEntry sends a cached playlist rendering.
func (s *Server) writeEntry(w http.ResponseWriter, r *http.Request, e *plEntry, cache string) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", cache)
	h.Set("Vary", "Accept-Encoding")
	body, tag := e.body, e.tag+`"`
	if httpx.AcceptsGzip(r) {
		body, tag = e.gz, e.tag+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", tag)
	if !e.mod.IsZero() {
		h.Set("Last-Modified", e.mod.UTC().Format(http.TimeFormat))
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == tag {
		h.Del("Content-Encoding")
		s.requests.WithLabelValues("media", "304").Inc()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	s.requests.WithLabelValues("media", "200").Inc()
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// reports lists the other media playlists of the stream.
func (s *Server) reports(id uint64, self string, kind cmaf.Kind) []Report {
	st, ok := s.reg.Stream(id)
	if !ok {
		return nil
	}
	var out []Report
	for _, rd := range st.Renditions() {
		for _, t := range rd.Tracks() {
			if rd.Name == self && t.Kind() == kind {
				continue
			}
			snap := t.Snapshot()
			msn, part, ok := LastPart(snap)
			if !ok {
				continue
			}
			out = append(out, Report{URI: "../" + rd.Name + "/" + t.Kind().String() + ".m3u8", LastMSN: msn, LastPart: part})
		}
	}
	return out
}

// write sends a playlist with ETag, Last-Modified, gzip when accepted
// (App. B.1) and the given Cache-Control.
func (s *Server) write(w http.ResponseWriter, r *http.Request, kind string, body []byte, cache string, mod time.Time) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", cache)
	h.Set("Vary", "Accept-Encoding")
	tag := fmt.Sprintf(`"%x-%d"`, crc32.ChecksumIEEE(body), len(body))
	gz := httpx.AcceptsGzip(r)
	if gz {
		tag = tag[:len(tag)-1] + `-gz"`
	}
	h.Set("ETag", tag)
	if !mod.IsZero() {
		h.Set("Last-Modified", mod.UTC().Format(http.TimeFormat))
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == tag {
		s.requests.WithLabelValues(kind, "304").Inc()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if gz {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	s.requests.WithLabelValues(kind, "200").Inc()
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
