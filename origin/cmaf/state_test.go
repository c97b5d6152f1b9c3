package cmaf

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
)

// flakyState is the node's store as it fails: reads time out (a disk or
// lock error) or return a damaged record, and recover.
type flakyState struct {
	mapState
	fail, damaged bool
}

func (s *flakyState) GetState(c, k string) ([]byte, error) {
	switch {
	case s.fail:
		return nil, errors.New("bbolt: timeout")
	case s.damaged:
		return []byte(`{"next_msn":`), nil
	}
	return s.mapState.GetState(c, k)
}

// TestStateErrorsNeverRenumber: a segment number, once served, never
// names other media, across reconnects, restarts and store errors: a
// packager that cannot read its numbering does not package (the
// session's StartSession says why) and tries again on the next session;
// it never starts at 1 on a guess, which would serve new media under
// URLs a CDN may still hold.
func TestStateErrorsNeverRenumber(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{
		Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 3 * time.Second}},
	})
	state := &flakyState{}
	served := map[uint64][]byte{} // MSN → the video segment served under it
	key := hub.Key{Stream: 9, Rendition: hub.Source}
	record := func(reg *Registry) {
		t.Helper()
		rd, ok := reg.Stream(9)
		if !ok {
			return
		}
		r, _ := rd.Rendition(hub.Source)
		if r == nil || r.Video == nil {
			return
		}
		for _, sg := range r.Video.Snapshot().Segments {
			b, ok := r.Video.SegmentBytes(sg.MSN)
			if !ok {
				continue
			}
			if old, seen := served[sg.MSN]; seen && !bytes.Equal(old, b) {
				t.Errorf("segment %d served with other media", sg.MSN)
			}
			served[sg.MSN] = b
		}
	}
	start := time.Now()
	// A session, a reconnect: numbered and saved.
	reg := NewRegistry()
	p := NewPackager(Config{}, key, reg, state, nil)
	feed(t, p, st, start)
	feed(t, p, st, start.Add(4*time.Second))
	record(reg)
	before := len(served)
	if before < 6 {
		t.Fatalf("%d segments from two sessions", before)
	}

	// A restart while the store does not answer, then with the record
	// damaged: no session is packaged, and StartSession says why.
	for _, c := range []struct {
		name string
		set  func()
	}{
		{"store error", func() { state.fail = true }},
		{"damaged record", func() { state.fail, state.damaged = false, true }},
	} {
		c.set()
		reg = NewRegistry()
		p = NewPackager(Config{}, key, reg, state, nil)
		err := p.StartSession(&hub.Session{ID: "s", Tracks: st.Tracks, Started: start})
		if !errors.Is(err, ErrStateUnavailable) {
			t.Fatalf("%s: StartSession: %v, want ErrStateUnavailable", c.name, err)
		}
		writeAll(t, p, st, start)
		p.EndSession()
		if _, ok := reg.Stream(9); ok {
			if rd, _ := reg.Stream(9); rd != nil {
				if r, _ := rd.Rendition(hub.Source); r != nil && r.Video != nil && len(r.Video.Snapshot().Segments) > 0 {
					t.Errorf("%s: segments packaged without the numbering", c.name)
				}
			}
		}
	}

	// The store answers again: the same packager's next session
	// continues the numbering past every segment served.
	state.damaged = false
	maxBefore := uint64(0)
	for msn := range served {
		maxBefore = max(maxBefore, msn)
	}
	feed(t, p, st, start.Add(8*time.Second))
	rd, ok := reg.Stream(9)
	if !ok {
		t.Fatal("not packaged once the store answered")
	}
	r, _ := rd.Rendition(hub.Source)
	segs := r.Video.Snapshot().Segments
	if len(segs) == 0 || segs[0].MSN <= maxBefore {
		t.Fatalf("after the errors the numbering starts at %v, want above %d", segs, maxBefore)
	}
	record(reg)
	if len(served) <= before {
		t.Errorf("no new segments recorded")
	}
}
