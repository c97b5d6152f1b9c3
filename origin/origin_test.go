package origin

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin/cmaf"
	"github.com/edgenode/edgenode/origin/hls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type mapState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *mapState) GetState(c, k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[c+"/"+k], nil
}

func (s *mapState) PutState(c, k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[c+"/"+k] = append([]byte(nil), v...)
	return nil
}

// node is an origin on a real loopback HTTP server.
type node struct {
	hub *hub.Hub
	o   *Origin
	srv *httptest.Server
}

func startNode(t *testing.T, cfg Config, h *hub.Hub, state State) *node {
	t.Helper()
	return startNodeDeps(t, cfg, Deps{Hub: h, State: state})
}

// startNodeDeps is startNode with the origin's dependencies spelled out.
func startNodeDeps(t *testing.T, cfg Config, deps Deps) *node {
	t.Helper()
	h := deps.Hub
	o, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	o.RegisterRoutes(mux)
	srv := httptest.NewServer(mux)
	n := &node{hub: h, o: o, srv: srv}
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.srv.CloseClientConnections()
	n.srv.Close()
	_ = n.o.Close()
}

// publish plays st into the hub in real time; the returned function waits
// for the end (and closes the publisher when close is set).
func publish(t *testing.T, h *hub.Hub, id uint64, st *mediatest.Stream, loops int, closePub bool) (stop func()) {
	t.Helper()
	pub, err := h.Publish(hub.Key{Stream: id, Rendition: hub.Source}, hub.Session{ID: fmt.Sprint("s", time.Now().UnixNano()), Tracks: st.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = st.Play(ctx, pub, mediatest.PlayOptions{Realtime: true, Loops: loops})
		if closePub {
			pub.Close()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			<-done
			cancel()
			pub.Close()
		})
	}
	t.Cleanup(func() { cancel(); stop() })
	return stop
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func get(t *testing.T, u string, hdr ...string) resp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp{res.StatusCode, res.Header, b}
}

// tags parses a playlist into its lines.
func lines(b []byte) []string { return strings.Split(strings.TrimSpace(string(b)), "\n") }

func attr(line, key string) string {
	i := strings.Index(line, key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+1:]
	if strings.HasPrefix(v, `"`) {
		return v[1 : 1+strings.Index(v[1:], `"`)]
	}
	if j := strings.IndexByte(v, ','); j >= 0 {
		v = v[:j]
	}
	return v
}

func tagValue(ls []string, tag string) (string, bool) {
	for _, l := range ls {
		if strings.HasPrefix(l, tag+":") {
			return l[len(tag)+1:], true
		}
	}
	return "", false
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("number %q: %v", s, err)
	}
	return v
}

// checkMedia applies the LL-HLS rules of SPECS.md § LL-HLS to one media
// playlist and returns its SERVER-CONTROL value.
func checkMedia(t *testing.T, name string, body []byte, others []string) string {
	t.Helper()
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		t.Fatalf("%s: third-party parser: %v\n%s", name, err, body)
	}
	ls := lines(body)
	if v, _ := tagValue(ls, "#EXT-X-VERSION"); num(t, v) < 6 {
		t.Errorf("%s: version %s < 6 with EXT-X-MAP", name, v)
	}
	pi, ok := tagValue(ls, "#EXT-X-PART-INF")
	if !ok {
		t.Fatalf("%s: no EXT-X-PART-INF (§4.4.3.7)", name)
	}
	partTarget := num(t, attr(pi, "PART-TARGET"))
	tdS, _ := tagValue(ls, "#EXT-X-TARGETDURATION")
	td := num(t, tdS)
	sc, ok := tagValue(ls, "#EXT-X-SERVER-CONTROL")
	if !ok {
		t.Fatalf("%s: no EXT-X-SERVER-CONTROL", name)
	}
	if attr(sc, "CAN-BLOCK-RELOAD") != "YES" {
		t.Errorf("%s: CAN-BLOCK-RELOAD missing", name)
	}
	if phb := num(t, attr(sc, "PART-HOLD-BACK")); phb < 3*partTarget-1e-9 {
		t.Errorf("%s: PART-HOLD-BACK %v < 3 × PART-TARGET %v (§4.4.3.8)", name, phb, partTarget)
	}
	if csu := num(t, attr(sc, "CAN-SKIP-UNTIL")); csu < 6*td {
		t.Errorf("%s: CAN-SKIP-UNTIL %v < 6 × TD", name, csu)
	}
	segStart := true
	pdt := false
	for i, l := range ls {
		switch {
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			d := num(t, attr(l, "DURATION"))
			if d > partTarget+1e-9 {
				t.Errorf("%s: part %s lasts %v > PART-TARGET %v (§4.4.4.9)", name, attr(l, "URI"), d, partTarget)
			}
			// §4.4.4.9: at least 85 % of PART-TARGET except the last part
			// of a segment (next line is the segment, or the next part
			// starts a new independent segment).
			lastOfSeg := i+1 < len(ls) && !strings.HasPrefix(ls[i+1], "#EXT-X-PART:")
			if !lastOfSeg && d < 0.85*partTarget-1e-9 {
				t.Errorf("%s: part %s lasts %v < 85 %% of PART-TARGET", name, attr(l, "URI"), d)
			}
			if segStart && !strings.Contains(l, "INDEPENDENT=YES") && strings.HasSuffix(attr(l, "URI"), ".0.m4s") {
				t.Errorf("%s: first part of a segment %s not INDEPENDENT", name, attr(l, "URI"))
			}
			segStart = false
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
			pdt = true
			if _, err := time.Parse(time.RFC3339Nano, l[len("#EXT-X-PROGRAM-DATE-TIME:"):]); err != nil {
				t.Errorf("%s: bad PDT %q", name, l)
			}
		case strings.HasPrefix(l, "#EXTINF:"):
			d := num(t, strings.TrimSuffix(l[len("#EXTINF:"):], ","))
			if math.Round(d) > td {
				t.Errorf("%s: EXTINF %v > TARGETDURATION %v", name, d, td)
			}
			if !pdt {
				t.Errorf("%s: segment %s without PROGRAM-DATE-TIME", name, ls[i+1])
			}
			pdt = false
			segStart = true
		}
	}
	if pl.PreloadHint == nil && !pl.Endlist {
		t.Errorf("%s: no EXT-X-PRELOAD-HINT (§6.2.6)", name)
	}
	reported := map[string]bool{}
	for _, r := range pl.RenditionReport {
		reported[r.URI] = true
	}
	for _, o := range others {
		if !reported[o] {
			t.Errorf("%s: no EXT-X-RENDITION-REPORT for %s (have %v)", name, o, reported)
		}
	}
	return sc
}

func TestLLHLSPlaylistRules(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{})
	cfg := Config{HLS: hlsConfigFast()}
	n := startNode(t, cfg, hub.New(0), &mapState{})
	base := n.srv.URL + "/cmaf/5"
	stop := publish(t, n.hub, 5, st, 9, false) // 18 s

	// Unknown stream and rendition → 404.
	if r := get(t, n.srv.URL+"/cmaf/6/master.m3u8"); r.code != http.StatusNotFound {
		t.Errorf("unknown stream: %d", r.code)
	}
	m := get(t, base+"/master.m3u8")
	if m.code != 200 {
		t.Fatalf("master: %d %s", m.code, m.body)
	}
	if get(t, base+"/nope/video.m3u8").code != http.StatusNotFound {
		t.Error("unknown rendition is not 404")
	}
	var mv playlist.Multivariant
	if err := mv.Unmarshal(m.body); err != nil {
		t.Fatalf("master: %v\n%s", err, m.body)
	}
	if len(mv.Variants) != 1 || len(mv.Renditions) != 1 {
		t.Fatalf("master: %d variants %d renditions\n%s", len(mv.Variants), len(mv.Renditions), m.body)
	}
	for _, v := range mv.Variants {
		if v.Bandwidth == 0 || v.AverageBandwidth == nil || len(v.Codecs) != 2 || v.Resolution == "" || v.FrameRate == nil {
			t.Errorf("variant lacks attributes: %+v", v)
		}
	}
	if m.hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("no CORS on master")
	}
	video, audio := "source/video.m3u8", "source/audio.m3u8"

	// Let the window grow past the skip boundary (6 × TD).
	time.Sleep(7500 * time.Millisecond)

	var controls []string
	for _, p := range []string{video, audio} {
		other := "../" + audio
		if p == audio {
			other = "../" + video
		}
		r := get(t, base+"/"+p)
		if r.code != 200 {
			t.Fatalf("%s: %d", p, r.code)
		}
		controls = append(controls, checkMedia(t, p, r.body, []string{other}))
		// Non-blocking playlists are not kept by a CDN (hls/server.go:
		// players take their start position from them).
		if cc := r.hdr.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q", p, cc)
		}
		// Delta update (§6.2.5.1).
		d := get(t, base+"/"+p+"?_HLS_skip=YES")
		if !strings.Contains(string(d.body), "#EXT-X-SKIP:SKIPPED-SEGMENTS=") || len(d.body) >= len(r.body) {
			t.Errorf("%s: delta update does not skip:\n%s", p, d.body)
		}
		checkMedia(t, p+" (delta)", d.body, []string{other})
		// gzip and ETag.
		g := get(t, base+"/"+p, "Accept-Encoding", "gzip")
		if g.hdr.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: not gzipped", p)
		} else if zr, err := gzip.NewReader(strings.NewReader(string(g.body))); err != nil {
			t.Errorf("%s: gzip: %v", p, err)
		} else if _, err := io.ReadAll(zr); err != nil {
			t.Errorf("%s: gzip: %v", p, err)
		}
	}
	if controls[0] != controls[1] {
		t.Errorf("SERVER-CONTROL differs: %q vs %q (App. B.1)", controls[0], controls[1])
	}

	// Blocking reload (§6.2.5.2).
	r := get(t, base+"/"+video)
	var pl playlist.Media
	if err := pl.Unmarshal(r.body); err != nil {
		t.Fatal(err)
	}
	hint := pl.PreloadHint.URI // video/partM.P.m4s
	var hm, hp int
	if _, err := fmt.Sscanf(hint, "video/part%d.%d.m4s", &hm, &hp); err != nil {
		t.Fatalf("hint %q: %v", hint, err)
	}
	// The hinted part is requestable at once and answered when written.
	hintDone := make(chan resp, 1)
	go func() { hintDone <- getNoFatal(base + "/source/" + hint) }()
	b := get(t, fmt.Sprintf("%s/%s?_HLS_msn=%d&_HLS_part=%d", base, video, hm, hp))
	if b.code != 200 || !strings.Contains(string(b.body), fmt.Sprintf("part%d.%d.m4s", hm, hp)) {
		t.Errorf("blocking reload for %d.%d: %d\n%s", hm, hp, b.code, b.body)
	}
	if cc := b.hdr.Get("Cache-Control"); cc != "public, max-age=6" {
		t.Errorf("blocking response Cache-Control %q, want 6 × TD", cc)
	}
	h := <-hintDone
	if h.code != 200 || len(h.body) < 100 || string(h.body[4:8]) != "moof" {
		t.Errorf("hinted part: %d %d bytes", h.code, len(h.body))
	}
	// It streams as it is written (no length, no ETag: both come with the
	// complete part; cmaf TestHintedPartStreams), or, when the request
	// came late, is the complete part; the Cache-Control is the same.
	if h.hdr.Get("Cache-Control") != "public, max-age=31536000, immutable" || (h.hdr.Get("Content-Length") != "") != (h.hdr.Get("ETag") != "") {
		t.Errorf("hinted part headers: %v", h.hdr)
	}
	c := get(t, base+"/source/"+hint)
	if c.code != 200 || !bytes.Equal(c.body, h.body) || c.hdr.Get("ETag") == "" || c.hdr.Get("Content-Length") != strconv.Itoa(len(h.body)) {
		t.Errorf("complete part: %d, %d bytes (streamed %d), headers %v", c.code, len(c.body), len(h.body), c.hdr)
	}
	// Range and conditional requests on a complete part.
	rg := get(t, base+"/source/"+hint, "Range", "bytes=0-7")
	if rg.code != http.StatusPartialContent || len(rg.body) != 8 {
		t.Errorf("range: %d %d bytes", rg.code, len(rg.body))
	}
	if c := get(t, base+"/source/"+hint, "If-None-Match", c.hdr.Get("ETag")).code; c != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", c)
	}
	// Far future parts are not hinted: 404.
	if c := get(t, fmt.Sprintf("%s/source/video/part%d.0.m4s", base, hm+5)).code; c != http.StatusNotFound {
		t.Errorf("unhinted part: %d, want 404", c)
	}
	// _HLS_part without _HLS_msn → 400; msn > last + 2 → 400 at once.
	if c := get(t, base+"/"+video+"?_HLS_part=1").code; c != http.StatusBadRequest {
		t.Errorf("_HLS_part alone: %d", c)
	}
	var pl2 playlist.Media
	_ = pl2.Unmarshal(get(t, base+"/"+video).body)
	last := pl2.MediaSequence + len(pl2.Segments) - 1 // last complete segment
	if c := get(t, fmt.Sprintf("%s/%s?_HLS_msn=%d", base, video, last+3)).code; c != http.StatusBadRequest {
		t.Errorf("_HLS_msn too far: %d", c)
	}
	// A part past the end of a segment is part 0 of the next one.
	if c := get(t, fmt.Sprintf("%s/%s?_HLS_msn=%d&_HLS_part=%d", base, video, hm-1, 99)).code; c != 200 {
		t.Errorf("part past the end of a complete segment: %d", c)
	}

	// The publisher stalls (session still open): blocking → 503. The
	// playlist is read once a segment's last part listed just now can no
	// longer be held back (hls/tail.go: half a part target), so that its
	// preload hint is the part that will not come.
	stop()
	time.Sleep(300 * time.Millisecond)
	r = get(t, base+"/"+video)
	_ = pl.Unmarshal(r.body)
	_, _ = fmt.Sscanf(pl.PreloadHint.URI, "video/part%d.%d.m4s", &hm, &hp)
	if c := get(t, fmt.Sprintf("%s/%s?_HLS_msn=%d&_HLS_part=%d", base, video, hm+1, 0)); c.code != http.StatusServiceUnavailable {
		t.Errorf("stalled blocking reload of %d.0: %d, want 503; playlist:\n%s", hm+1, c.code, r.body)
	}
}

func getNoFatal(u string) resp {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return resp{code: -1}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func hlsConfigFast() (c hls.Config) {
	c.BlockTimeout = 1500 * time.Millisecond
	return c
}

// TestGohlslibClientFollows: a third-party LL-HLS client reads the stream.
func TestGohlslibClientFollows(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{})
	n := startNode(t, Config{}, hub.New(0), nil)
	publish(t, n.hub, 3, st, 3, false)

	var mu sync.Mutex
	var frames, audio int
	log.SetOutput(io.Discard) // gohlslib logs every download
	defer log.SetOutput(os.Stderr)
	var lastPTS int64 = -1
	backwards := false
	parts := 0
	c := &gohlslib.Client{
		URI: n.srv.URL + "/cmaf/3/master.m3u8",
		OnDownloadPart: func(string) {
			mu.Lock()
			parts++
			mu.Unlock()
		},
	}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, tr := range tracks {
			switch tr.Codec.(type) {
			case *codecs.H264:
				c.OnDataH26x(tr, func(pts, _ int64, au [][]byte) {
					mu.Lock()
					defer mu.Unlock()
					frames++
					if pts < lastPTS {
						backwards = true
					}
					lastPTS = pts
				})
			case *codecs.Opus:
				c.OnDataOpus(tr, func(int64, [][]byte) {
					mu.Lock()
					audio++
					mu.Unlock()
				})
			}
		}
		return nil
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	waitCh := c.Wait()
	defer func() { <-waitCh }()
	for {
		mu.Lock()
		f, a, p := frames, audio, parts
		mu.Unlock()
		if f >= 60 && a >= 50 && p >= 5 {
			break
		}
		select {
		case err := <-waitCh:
			waitCh = make(chan error, 1)
			waitCh <- err
			t.Fatalf("client stopped: %v (frames %d audio %d parts %d)", err, f, a, p)
		case <-deadline:
			c.Close()
			t.Fatalf("client got %d frames, %d audio packets, %d parts", f, a, p)
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if backwards {
		t.Error("video PTS went backwards")
	}
}

var _ = url.Parse

// TestEndGraceAndLinger: after the publisher leaves the playlists end
// (EXT-X-ENDLIST, blocking parameters ignored) after end_grace, then the
// stream is gone (404) after linger; the numbering continues when it
// comes back.
func TestEndGraceAndLinger(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{})
	state := &mapState{}
	cfg := Config{EndGrace: 500 * time.Millisecond, Linger: 1500 * time.Millisecond, HLS: hls.Config{StartTimeout: 2 * time.Second}}
	n := startNode(t, cfg, hub.New(0), state)
	u := n.srv.URL + "/cmaf/8/source/video.m3u8"
	publish(t, n.hub, 8, st, 1, true)()
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(body, "#EXT-X-ENDLIST") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		body = string(get(t, u).body)
	}
	if !strings.Contains(body, "#EXT-X-ENDLIST") || strings.Contains(body, "PRELOAD-HINT") {
		t.Fatalf("no ENDLIST after end_grace:\n%s", body)
	}
	// §6.2.5.2: blocking parameters are ignored once ended.
	if r := get(t, u+"?_HLS_msn=999&_HLS_part=0"); r.code != 200 {
		t.Errorf("blocking request on an ended playlist: %d", r.code)
	}
	var pl playlist.Media
	if err := pl.Unmarshal([]byte(body)); err != nil {
		t.Fatal(err)
	}
	lastMSN := pl.MediaSequence + len(pl.Segments) - 1
	for code := 200; code == 200 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		code = get(t, u).code
		if code != 200 && code != http.StatusNotFound {
			t.Fatalf("status %d while lingering", code)
		}
	}
	if c := get(t, u).code; c != http.StatusNotFound {
		t.Fatalf("stream still served after linger: %d", c)
	}
	// The publisher comes back: numbering continues from the state.
	publish(t, n.hub, 8, st, 1, false)
	r := get(t, u)
	if err := pl.Unmarshal(r.body); err != nil {
		t.Fatalf("%v\n%s", err, r.body)
	}
	if pl.MediaSequence <= lastMSN || pl.DiscontinuitySequence == nil || *pl.DiscontinuitySequence == 0 {
		t.Errorf("after coming back: media sequence %d (last was %d), discontinuity sequence %v", pl.MediaSequence, lastMSN, pl.DiscontinuitySequence)
	}
}

// TestMultivariantRenditions: N renditions of one stream (as the
// transcoder publishes them) appear in the multivariant playlist; every
// media playlist reports all the others and SERVER-CONTROL is identical.
func TestMultivariantRenditions(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{})
	small := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 2 * time.Second}}})
	n := startNode(t, Config{}, hub.New(0), nil)
	publish(t, n.hub, 4, st, 4, false)
	pub, err := n.hub.Publish(hub.Key{Stream: 4, Rendition: "180p"}, hub.Session{ID: "t", Tracks: small.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = small.Play(ctx, pub, mediatest.PlayOptions{Realtime: true, Loops: 4})
	}()
	defer func() { cancel(); <-done; pub.Close() }()

	base := n.srv.URL + "/cmaf/4/"
	var mv playlist.Multivariant
	deadline := time.Now().Add(10 * time.Second)
	for len(mv.Variants) < 2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		mv = playlist.Multivariant{}
		if err := mv.Unmarshal(get(t, base+"master.m3u8").body); err != nil {
			t.Fatal(err)
		}
	}
	if len(mv.Variants) != 2 || len(mv.Renditions) != 2 {
		t.Fatalf("%d variants, %d audio renditions\n%s", len(mv.Variants), len(mv.Renditions), get(t, base+"master.m3u8").body)
	}
	if mv.Variants[0].URI != "source/video.m3u8" || mv.Variants[1].Resolution != "320x180" {
		t.Errorf("variants: %s (%s), %s (%s)", mv.Variants[0].URI, mv.Variants[0].Resolution, mv.Variants[1].URI, mv.Variants[1].Resolution)
	}
	all := []string{"source/video.m3u8", "source/audio.m3u8", "180p/video.m3u8", "180p/audio.m3u8"}
	var control string
	for _, p := range all {
		var others []string
		for _, o := range all {
			if o != p {
				others = append(others, "../"+o)
			}
		}
		r := get(t, base+p)
		if r.code != 200 {
			t.Fatalf("%s: %d", p, r.code)
		}
		sc := checkMedia(t, p, r.body, others)
		if control != "" && sc != control {
			t.Errorf("%s: SERVER-CONTROL %q differs from %q", p, sc, control)
		}
		control = sc
	}
}

type storeStreams map[uint64]bool

func (s storeStreams) LookupStream(id uint64) (string, bool, bool, error) {
	return "key", s[id], s[id], nil
}

// TestUnknownStreamFailsFast: with the node's stream store, an id that does
// not exist is 404 at once; a known one is held for its publisher.
func TestUnknownStreamFailsFast(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{})
	h := hub.New(0)
	// A long hold makes "at once" unmistakable without timing the 404.
	o, err := New(Config{HLS: hls.Config{StartTimeout: time.Minute}}, Deps{Hub: h, Streams: storeStreams{21: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	o.RegisterRoutes(mux)
	srv := httptest.NewServer(mux)
	defer func() { srv.Close(); _ = o.Close() }()

	done := make(chan int, 1)
	go func() { done <- getNoFatal(srv.URL + "/cmaf/22/master.m3u8").code }()
	select {
	case c := <-done:
		if c != http.StatusNotFound {
			t.Errorf("unknown stream: %d", c)
		}
	case <-time.After(30 * time.Second):
		t.Error("unknown stream was held like a known one")
		<-done
	}
	// Known stream: the request made before the publisher arrives is held
	// and answered once it has a segment.
	go func() { done <- getNoFatal(srv.URL + "/cmaf/21/master.m3u8").code }()
	time.Sleep(100 * time.Millisecond)
	publish(t, h, 21, st, 2, false)
	if c := <-done; c != 200 {
		t.Errorf("known stream: %d", c)
	}
}

// TestSourcePlaylistStartsWithASegment: the source video's playlist lists
// only what its audio group (the transcoder's AAC rendition, here an Opus
// one 700 ms behind in wall time) covers (hls/sync.go), so right when the
// source's first segment is complete its listing has none; a media
// playlist request waits until it has one rather than answer a playlist of
// parts only, which hls.js takes as levelEmptyError and retries a second
// later.
func TestSourcePlaylistStartsWithASegment(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{})
	h := hub.New(0)
	srv := startNodeDeps(t, Config{}, Deps{Hub: h, AudioRendition: "aac"}).srv

	src, err := h.Publish(hub.Key{Stream: 7, Rendition: hub.Source}, hub.Session{ID: "src", Tracks: st.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	opus := -1
	for i, tr := range st.Tracks {
		if tr.Codec == media.CodecOpus {
			opus = i
		}
	}
	aac, err := h.Publish(hub.Key{Stream: 7, Rendition: "aac"}, hub.Session{ID: "aac", Tracks: []media.Track{st.Tracks[opus]}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait(); src.Close(); aac.Close() }()
	start := time.Now()
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = st.Play(ctx, src, mediatest.PlayOptions{Realtime: true, Start: start, Loops: 3})
	}()
	go func() {
		// The audio of the same timeline, each frame written 700 ms
		// after its capture time: an encoder's delay.
		defer wg.Done()
		for _, smp := range st.Samples {
			if smp.Track != opus {
				continue
			}
			au := *smp.AU
			au.Time = start.Add(au.Duration(au.PTS))
			tm := time.NewTimer(time.Until(au.Time.Add(700 * time.Millisecond)))
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
			aac.WriteAU(0, &au)
		}
	}()
	// Asked before the source has a segment: held until it has one, and
	// until that segment is listed (404 only until the packager has
	// registered the stream, a few milliseconds).
	r := get(t, srv.URL+"/cmaf/7/source/video.m3u8")
	for deadline := time.Now().Add(2 * time.Second); r.code == http.StatusNotFound && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		r = get(t, srv.URL+"/cmaf/7/source/video.m3u8")
	}
	if r.code != http.StatusOK {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if !bytes.Contains(r.body, []byte("#EXTINF:")) {
		t.Errorf("the first source playlist lists no complete segment:\n%s", r.body)
	}
	if !bytes.Contains(r.body, []byte("#EXT-X-PART:")) {
		t.Errorf("the first source playlist lists no parts:\n%s", r.body)
	}
}

// TestNonBlockingLoadAfterTailHold: a non-blocking load that is the first
// to list a segment's short tail (hls/tail.go holds it) waits out the
// hold and then gets the listing with the segment complete: not one held
// again from the time of its rendering (then a player's start position,
// taken from that load, was the wait and the hold behind the live edge:
// a CDN or a player between its loads asks less often than parts come).
func TestNonBlockingLoadAfterTailHold(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{}) // 1 s GOPs at 30 fps: the last of each segment's parts is 2 frames
	n := startNode(t, Config{HLS: hlsConfigFast()}, hub.New(0), &mapState{})
	publish(t, n.hub, 5, st, 4, false)
	u := n.srv.URL + "/cmaf/5/source/video.m3u8"
	get(t, u) // waits for the stream's start
	tr, ok := n.o.Registry().Lookup(5, hub.Source, cmaf.Video)
	if !ok {
		t.Fatal("no source video track")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var waited int
	for seen := uint64(0); waited < 4; {
		// The next segment completed (its short last part written with
		// it): load at once, nothing having listed its last two parts.
		ch := tr.Changed()
		snap := tr.Snapshot()
		var newest uint64
		for _, sg := range snap.Segments {
			if sg.Complete {
				newest = sg.MSN
			}
		}
		if newest <= seen || seen == 0 {
			if seen == 0 {
				seen = max(newest, 1)
			}
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				t.Fatalf("%d loads waited out a hold in 20 s, want 4", waited)
			}
		}
		seen = newest
		start := time.Now()
		r := get(t, u)
		took := time.Since(start)
		if r.code != http.StatusOK {
			t.Fatalf("%s: %d %s", u, r.code, r.body)
		}
		if took < 200*time.Millisecond {
			continue // the tail was not short or not held: no wait
		}
		waited++
		if heldTail(lines(r.body)) {
			t.Errorf("a non-blocking load waited %v for segment %d's hold and got it held still:\n%s", took.Round(time.Millisecond), newest, r.body)
		}
	}
}

// heldTail reports whether a media playlist ends with a segment whose
// completion is held back: its parts listed, no EXTINF, and the preload
// hint naming the next segment's part 0.
func heldTail(ls []string) bool {
	var last string // URI of the last part
	sawInf := false
	for _, l := range ls {
		switch {
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			last, sawInf = attr(l, "URI"), false
		case strings.HasPrefix(l, "#EXTINF:"):
			sawInf = true
		case strings.HasPrefix(l, "#EXT-X-PRELOAD-HINT:"):
			var msn, part, hmsn, hpart int
			if _, err := fmt.Sscanf(path.Base(last), "part%d.%d.m4s", &msn, &part); err != nil {
				return false
			}
			if _, err := fmt.Sscanf(path.Base(attr(l, "URI")), "part%d.%d.m4s", &hmsn, &hpart); err != nil {
				return false
			}
			return !sawInf && hmsn == msn+1 && hpart == 0
		}
	}
	return false
}
