package ts_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/internal/store/storetest"
	"github.com/edgenode/edgenode/origin/ts"
)

func waitPlaylist(t *testing.T, ctx context.Context, url string, ok func(string) bool) string {
	t.Helper()
	for {
		res, b := get(t, url)
		if res.StatusCode == 200 && ok(string(b)) {
			return string(b)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s never as wanted; last %d:\n%s", url, res.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// publishSession plays stream once into h as session id.
func publishSession(ctx context.Context, t *testing.T, h *hub.Hub, key hub.Key, stream *mediatest.Stream, id string) {
	t.Helper()
	pub, err := h.Publish(key, hub.Session{ID: id, Tracks: stream.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Play(ctx, pub, mediatest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	pub.Close()
}

func segNumbers(pl string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^seg(\d+)\.ts$`).FindAllStringSubmatch(pl, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestNumberingContinues: a reconnecting publisher and a restarted node
// continue media and discontinuity sequence numbers (issue 4: "never go
// backwards"), with EXT-X-DISCONTINUITY at each new session.
func TestNumberingContinues(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 3 * time.Second}}})
	key := hub.Key{Stream: 3, Rendition: hub.Source}
	st := storetest.Open(t) // the node's store: a restart keeps it
	url := "/hls/3/source/index.m3u8"

	publish := func(h *hub.Hub, id string) { publishSession(ctx, t, h, key, stream, id) }

	// Node 1: a session, then a reconnect within the grace period.
	h1 := hub.New(4096)
	e1 := start(t, tsConfigShortGrace(), h1, st)
	publish(h1, "a")
	pl := waitPlaylist(t, ctx, e1.url+url, func(s string) bool { return len(segNumbers(s)) == 2 })
	if strings.Contains(pl, "#EXT-X-DISCONTINUITY\n") {
		t.Fatalf("first session has a discontinuity:\n%s", pl)
	}
	publish(h1, "b")
	pl = waitPlaylist(t, ctx, e1.url+url, func(s string) bool { return strings.Contains(s, "#EXT-X-ENDLIST") })
	if got := strings.Join(segNumbers(pl), ","); got != "0,1,2,3" {
		t.Fatalf("after reconnect segments %s:\n%s", got, pl)
	}
	if !strings.Contains(pl, "#EXT-X-DISCONTINUITY-SEQUENCE:0\n") || !strings.Contains(pl, "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:") ||
		strings.Count(pl, "#EXT-X-DISCONTINUITY\n") != 1 {
		t.Fatalf("reconnect not marked:\n%s", pl)
	}
	if err := e1.srv.Close(); err != nil {
		t.Fatal(err)
	}

	// Node 2 (a restart): same store, fresh memory.
	h2 := hub.New(4096)
	e2 := start(t, tsConfigShortGrace(), h2, st)
	publish(h2, "c")
	pl = waitPlaylist(t, ctx, e2.url+url, func(s string) bool { return strings.Contains(s, "#EXT-X-ENDLIST") })
	if got := strings.Join(segNumbers(pl), ","); got != "4,5" {
		t.Fatalf("after restart segments %s:\n%s", got, pl)
	}
	// The first listed segment carries its own tag; the sequence counts the
	// one before it (RFC 8216 §4.3.3.3).
	if !strings.Contains(pl, "#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n") ||
		!strings.Contains(pl, "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-DISCONTINUITY\n") {
		t.Fatalf("restart numbering:\n%s", pl)
	}
}

// failingState is the node's store failing its reads (a disk or lock
// error) while fail is set.
type failingState struct {
	ts.State
	mu     sync.Mutex
	fail   bool
	failed int // reads failed so far
}

func (s *failingState) GetState(c, k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		s.failed++
		return nil, errors.New("bbolt: timeout")
	}
	return s.State.GetState(c, k)
}

func (s *failingState) failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *failingState) set(fail bool) {
	s.mu.Lock()
	s.fail = fail
	s.mu.Unlock()
}

// TestStateErrorsNeverRenumber: a node restarted while its store fails
// reads does not package (it never numbers from 0 again, which would
// serve new media under segment URLs a CDN may hold); once the store
// answers, the next session continues the numbering.
func TestStateErrorsNeverRenumber(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 3 * time.Second}}})
	key := hub.Key{Stream: 5, Rendition: hub.Source}
	st := &failingState{State: storetest.Open(t)}
	url := "/hls/5/source/index.m3u8"
	publish := func(h *hub.Hub, id string) { publishSession(ctx, t, h, key, stream, id) }

	h1 := hub.New(4096)
	e1 := start(t, tsConfigShortGrace(), h1, st)
	publish(h1, "a")
	pl := waitPlaylist(t, ctx, e1.url+url, func(s string) bool { return strings.Contains(s, "#EXT-X-ENDLIST") })
	if got := strings.Join(segNumbers(pl), ","); got != "0,1" {
		t.Fatalf("first node: segments %s:\n%s", got, pl)
	}
	if err := e1.srv.Close(); err != nil {
		t.Fatal(err)
	}

	// Restarted with the store failing: the session is not packaged.
	st.set(true)
	h2 := hub.New(4096)
	e2 := start(t, tsConfigShortGrace(), h2, st)
	publish(h2, "b")
	for st.failures() == 0 { // the server has read (and failed) for b
		if ctx.Err() != nil {
			t.Fatal("the restarted server never read its numbering")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res, b := get(t, e2.url+url); res.StatusCode == 200 {
		t.Fatalf("packaged without its numbering:\n%s", b)
	}
	// The store answers again: the next session continues at 2.
	st.set(false)
	publish(h2, "c")
	pl = waitPlaylist(t, ctx, e2.url+url, func(s string) bool { return strings.Contains(s, "#EXT-X-ENDLIST") })
	if got := strings.Join(segNumbers(pl), ","); got != "2,3" {
		t.Fatalf("after the store recovered: segments %s, want 2,3:\n%s", got, pl)
	}
}
