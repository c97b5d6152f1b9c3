package cmaf

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
)

// TestHintedPartStreams is LL-HLS §6.2.6 "a hinted part's response streams
// as the part is written", over real HTTP: the client asks for the part
// being written (and for the one after it, not started yet) and reads its
// first frame while the part is still open; what it gets in the end is the
// complete part, byte for byte. HEAD waits for the complete part.
func TestHintedPartStreams(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{NoAudio: true})
	cfg := Config{}.WithDefaults()
	reg := NewRegistry()
	p := NewPackager(cfg, hub.Key{Stream: 3, Rendition: hub.Source}, reg, nil, nil)
	if err := p.StartSession(&hub.Session{Tracks: st.Tracks}); err != nil {
		t.Fatal(err)
	}
	defer p.Finish()
	mux := http.NewServeMux()
	reg.RegisterRoutes(mux, 10*time.Second)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tr := p.Rendition().Video
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	samples := st.Samples
	write := func(n int) {
		t.Helper()
		for ; n > 0 && len(samples) > 0; n-- {
			au := *samples[0].AU
			au.Time = time.Now()
			if err := p.WriteAU(samples[0].Track, &au, 0); err != nil {
				t.Fatal(err)
			}
			samples = samples[1:]
		}
	}
	get := func(name, method string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+"/cmaf/3/source/video/"+name, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	write(2) // frame 0 goes out as the first chunk of part 1.0 when frame 1 comes
	msn := tr.Snapshot().Segments[0].MSN
	// Part 1.0 is open with one frame: a GET gets it at once, a HEAD waits.
	res := get(PartName(msn, 0), http.MethodGet)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Length") != "" {
		t.Fatalf("open part: %d, Content-Length %q; want 200 streamed", res.StatusCode, res.Header.Get("Content-Length"))
	}
	head := make(chan *http.Response, 1)
	go func() { head <- get(PartName(msn, 0), http.MethodHead) }()
	first := make([]byte, 8)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatal(err)
	}
	if string(first[4:8]) != "moof" {
		t.Errorf("streamed part starts with %q, want a moof", first[4:8])
	}
	if _, done := tr.Part(msn, 0); done {
		t.Fatal("part completed before the first frame was read: nothing proves streaming")
	}
	select {
	case h := <-head:
		t.Fatalf("HEAD of an open part answered before it was complete: %d", h.StatusCode)
	case <-time.After(100 * time.Millisecond):
	}
	// Part 1.0 completes; 1.1, the preload hint now, has no chunk yet
	// (its first frame waits for the next one): its request is held.
	for _, done := tr.Part(msn, 0); !done; _, done = tr.Part(msn, 0) {
		write(1)
	}
	if _, _, started, _ := tr.partProgress(msn, 1); started {
		t.Fatal("part 1.1 started with part 1.0's last frame")
	}
	next := make(chan *http.Response, 1)
	go func() { next <- get(PartName(msn, 1), http.MethodGet) }()
	time.Sleep(100 * time.Millisecond)
	write(len(samples))
	rest, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	part, ok := tr.Part(msn, 0)
	if got := append(first, rest...); !ok || !bytes.Equal(got, part.Data) {
		t.Errorf("streamed part (%d bytes) differs from the complete one (%d bytes)", len(got), len(part.Data))
	}
	h := <-head
	h.Body.Close()
	if h.StatusCode != http.StatusOK || h.Header.Get("Content-Length") != strconv.Itoa(len(part.Data)) || h.Header.Get("ETag") == "" {
		t.Errorf("HEAD: %d, Content-Length %q, ETag %q", h.StatusCode, h.Header.Get("Content-Length"), h.Header.Get("ETag"))
	}
	n := <-next
	body, _ := io.ReadAll(n.Body)
	n.Body.Close()
	part1, ok := tr.Part(msn, 1)
	if n.StatusCode != http.StatusOK || !ok || !bytes.Equal(body, part1.Data) {
		t.Errorf("part hinted before it started: %d, %d bytes (complete: %d)", n.StatusCode, len(body), len(part1.Data))
	}
	// Past the last part of a complete segment: 404.
	sg, _ := tr.Segment(msn)
	if r := get(PartName(msn, len(sg.Parts)), http.MethodGet); r.StatusCode != http.StatusNotFound {
		t.Errorf("part past the segment's end: %d, want 404", r.StatusCode)
	}
}

// TestSegmentStreamsFrames: a segment being written (LL-DASH chunked
// transfer) streams the open part's frames too, not part by part.
func TestSegmentStreamsFrames(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{NoAudio: true})
	p := NewPackager(Config{}.WithDefaults(), hub.Key{Stream: 4, Rendition: hub.Source}, NewRegistry(), nil, nil)
	if err := p.StartSession(&hub.Session{Tracks: st.Tracks}); err != nil {
		t.Fatal(err)
	}
	tr := p.Rendition().Video
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range st.Samples[:2] {
		au := *s.AU
		if err := p.WriteAU(s.Track, &au, 0); err != nil {
			t.Fatal(err)
		}
	}
	msn := tr.Snapshot().Segments[0].MSN
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- tr.WriteSegment(ctx, pw, msn); pw.Close() }()
	head := make([]byte, len(stypBox)+8)
	if _, err := io.ReadFull(pr, head); err != nil {
		t.Fatal(err)
	}
	if string(head[len(stypBox)+4:]) != "moof" {
		t.Errorf("after styp: %q, want the first frame's moof", head[len(stypBox)+4:])
	}
	if _, ok := tr.Part(msn, 0); ok {
		t.Fatal("part complete already: nothing proves streaming")
	}
	for _, s := range st.Samples[2:] {
		au := *s.AU
		if err := p.WriteAU(s.Track, &au, 0); err != nil {
			t.Fatal(err)
		}
	}
	p.Finish()
	rest, _ := io.ReadAll(pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want, _ := tr.SegmentBytes(msn)
	if got := append(head, rest...); !bytes.Equal(got, want) {
		t.Errorf("streamed segment (%d bytes) differs from the complete one (%d bytes)", len(got), len(want))
	}
}
