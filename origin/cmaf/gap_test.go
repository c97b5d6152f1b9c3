package cmaf

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
)

// holeStream packages the same generated stream (video + audio) as the
// source and as a rung sharing one SegmentClock; the rung's video misses
// [holeFrom, holeTo) and resumes at the first keyframe after it that is a
// boundary of the clock (an encoder plugin restarted: the transcoder
// forces its keyframes where the source has them), while its audio goes
// on (the host's silence). It returns the registry with stream 7.
func holeStream(t *testing.T, holeFrom, holeTo time.Duration) (*Registry, *SegmentClock) {
	t.Helper()
	st := mediatest.Generate(t, mediatest.Options{
		GOP:    500 * time.Millisecond,
		Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 9 * time.Second}},
	})
	reg, clock, src, rung := clockPair(7, "180p")
	start := time.Now()
	for _, p := range []*Packager{src, rung} {
		if err := p.StartSession(&hub.Session{ID: "s", Tracks: st.Tracks, Started: start}); err != nil {
			t.Fatal(err)
		}
	}
	inHole, resumed := false, false
	feedBehind(t, start, src, st, rung, st, 10, func(s mediatest.Sample, au *media.AccessUnit) (int, bool) {
		if s.Track != 0 {
			return s.Track, true
		}
		at := au.Duration(au.PTS)
		if at >= holeFrom && !resumed {
			inHole = true
		}
		if inHole {
			if _, ok := clock.msnAt(uint64(au.DTS)); at < holeTo || !au.Key || !ok {
				return 0, false
			}
			inHole, resumed = false, true
		}
		return 0, true
	})
	if !resumed {
		t.Fatal("the rung's video never resumed at a boundary of the clock")
	}
	return reg, clock
}

// TestSegmentClockHoleGapSegments: after a hole of 2.5 s in a rung's
// video (its encoder restarting), the rung's segments have the source's
// MSN for the same tfdt, the skipped numbers are gap segments with the
// source's tfdt and durations, the segment before the hole ends exactly
// on the source's next boundary, and the rung's audio track numbers its
// segments consecutively too. Before gap segments the rung went on with
// its own next MSN: segment N of the rung was not segment N of the source.
func TestSegmentClockHoleGapSegments(t *testing.T) {
	reg, _ := holeStream(t, 3200*time.Millisecond, 5700*time.Millisecond)
	s7, _ := reg.Stream(7)
	sr, _ := s7.Rendition(hub.Source)
	rr, _ := s7.Rendition("180p")
	ss, rs := sr.Video.Snapshot(), rr.Video.Snapshot()
	src := map[uint64]Segment{}
	for _, sg := range ss.Segments {
		src[sg.MSN] = sg
	}
	var gaps []Segment
	before := -1
	for i, sg := range rs.Segments {
		if i > 0 && sg.MSN != rs.Segments[i-1].MSN+1 {
			t.Errorf("rung MSN %d follows %d", sg.MSN, rs.Segments[i-1].MSN)
		}
		ref, ok := src[sg.MSN]
		if !ok {
			t.Errorf("rung MSN %d is not a source MSN", sg.MSN)
			continue
		}
		if sg.BaseTime != ref.BaseTime || (sg.Complete && sg.Ticks != ref.Ticks) {
			t.Errorf("MSN %d (gap %v): rung tfdt %d dur %d, source tfdt %d dur %d", sg.MSN, sg.Gap, sg.BaseTime, sg.Ticks, ref.BaseTime, ref.Ticks)
		}
		if sg.Gap {
			if before < 0 {
				before = i - 1
			}
			gaps = append(gaps, sg)
			if !sg.Complete || len(sg.Parts) != 0 || sg.Size != 0 {
				t.Errorf("gap MSN %d: complete %v, %d parts, %d bytes", sg.MSN, sg.Complete, len(sg.Parts), sg.Size)
			}
		}
	}
	// 2.5 s of hole with 1 s segments: two or three boundaries skipped.
	if len(gaps) < 2 {
		t.Fatalf("rung has %d gap segments, want ≥ 2: %s", len(gaps), segList(rs.Segments))
	}
	if before < 0 || rs.Segments[before].Gap {
		t.Fatalf("no segment before the gaps: %s", segList(rs.Segments))
	}
	pre := rs.Segments[before]
	if end := pre.BaseTime + pre.Ticks; end != gaps[0].BaseTime {
		t.Errorf("segment %d before the hole ends at %d, the first gap (MSN %d) starts at %d", pre.MSN, end, gaps[0].MSN, gaps[0].BaseTime)
	}
	if last := gaps[len(gaps)-1]; before+len(gaps)+1 >= len(rs.Segments) || rs.Segments[before+len(gaps)+1].Gap {
		t.Fatalf("no real segment after gap %d: %s", last.MSN, segList(rs.Segments))
	}
	// Gap files and parts are not served; the track's other segments are.
	if _, ok := rr.Video.SegmentBytes(gaps[0].MSN); ok {
		t.Errorf("SegmentBytes of gap %d succeeded", gaps[0].MSN)
	}
	if _, ok := rr.Video.Part(gaps[0].MSN, 0); ok {
		t.Errorf("Part 0 of gap %d exists", gaps[0].MSN)
	}
	// Blocking reload: a gap is a complete segment without parts.
	if !rr.Video.Available(gaps[0].MSN, -1) {
		t.Errorf("gap %d not available as a segment", gaps[0].MSN)
	}

	// The rung's own audio: consecutive MSNs (its segment before the hole
	// goes on through it: the host's silence), every number a video one.
	as := rr.Audio.Snapshot()
	for i, sg := range as.Segments {
		if i > 0 && sg.MSN != as.Segments[i-1].MSN+1 {
			t.Errorf("rung audio MSN %d follows %d: %s", sg.MSN, as.Segments[i-1].MSN, segList(as.Segments))
		}
	}
	if n := len(as.Segments); n == 0 || as.Segments[n-1].MSN != rs.Segments[len(rs.Segments)-1].MSN {
		t.Errorf("rung audio ends elsewhere than its video: audio %s, video %s", segList(as.Segments), segList(rs.Segments))
	}
}

// TestGapSegmentHTTP: the files of a gap segment are 404 over HTTP (RFC
// 8216bis §4.4.4.7: a client must not load a gap segment), the segments
// around them are served.
func TestGapSegmentHTTP(t *testing.T) {
	reg, _ := holeStream(t, 3200*time.Millisecond, 5700*time.Millisecond)
	s7, _ := reg.Stream(7)
	rr, _ := s7.Rendition("180p")
	var gap, real uint64
	for _, sg := range rr.Video.Snapshot().Segments {
		switch {
		case sg.Gap && gap == 0:
			gap = sg.MSN
		case !sg.Gap && gap != 0 && real == 0:
			real = sg.MSN
		}
	}
	if gap == 0 || real == 0 {
		t.Fatal("no gap segment followed by a real one")
	}
	mux := http.NewServeMux()
	reg.RegisterRoutes(mux, time.Second)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get := func(file string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/cmaf/7/180p/video/%s", srv.URL, file), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, f := range []string{SegmentName(gap), PartName(gap, 0)} {
		if code := get(f); code != http.StatusNotFound {
			t.Errorf("GET %s (gap): %d, want 404", f, code)
		}
	}
	if code := get(SegmentName(real)); code != http.StatusOK {
		t.Errorf("GET %s (after the gap): %d, want 200", SegmentName(real), code)
	}
}

func segList(segs []Segment) string {
	s := ""
	for _, sg := range segs {
		g := ""
		if sg.Gap {
			g = "gap"
		}
		s += fmt.Sprintf(" %d@%d+%d%s", sg.MSN, sg.BaseTime, sg.Ticks, g)
	}
	return s
}
