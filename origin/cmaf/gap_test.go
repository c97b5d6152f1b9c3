package cmaf

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

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

// TestGapSegmentHTTP: a gap segment's parts are 404 over HTTP (RFC
// 8216bis §4.4.4.7: an LL-HLS client does not load them), while its file
// is a still picture a DASH player can load (GapFill): one sync sample,
// the key frame that opens the segment before the hole, from the gap's
// tfdt for the gap's whole duration. The segments around it are served.
// Before GapFill the file was 404 and Shaka Player banned the rung.
func TestGapSegmentHTTP(t *testing.T) {
	reg, _ := holeStream(t, 3200*time.Millisecond, 5700*time.Millisecond)
	s7, _ := reg.Stream(7)
	rr, _ := s7.Rendition("180p")
	var gap, real Segment
	var pre Segment // the real segment before the first gap
	for _, sg := range rr.Video.Snapshot().Segments {
		switch {
		case sg.Gap && gap.MSN == 0:
			gap = sg
		case !sg.Gap && gap.MSN == 0:
			pre = sg
		case !sg.Gap && gap.MSN != 0 && real.MSN == 0:
			real = sg
		}
	}
	if gap.MSN == 0 || real.MSN == 0 || pre.MSN == 0 {
		t.Fatal("no gap segment between real ones")
	}
	mux := http.NewServeMux()
	reg.RegisterRoutes(mux, time.Second)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get := func(file string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/cmaf/7/180p/video/%s", srv.URL, file), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	if code, _ := get(PartName(gap.MSN, 0)); code != http.StatusNotFound {
		t.Errorf("GET %s (gap part): %d, want 404", PartName(gap.MSN, 0), code)
	}
	if code, _ := get(SegmentName(real.MSN)); code != http.StatusOK {
		t.Errorf("GET %s (after the gap): %d, want 200", SegmentName(real.MSN), code)
	}
	code, b := get(SegmentName(gap.MSN))
	if code != http.StatusOK {
		t.Fatalf("GET %s (gap): %d, want 200 (a still picture)", SegmentName(gap.MSN), code)
	}
	if !bytes.HasPrefix(b, stypBox) {
		t.Fatalf("gap file does not open with styp: % x", b[:min(len(b), 16)])
	}
	var got fmp4.Parts
	if err := got.Unmarshal(b[len(stypBox):]); err != nil {
		t.Fatalf("gap file: %v", err)
	}
	if len(got) != 1 || len(got[0].Tracks) != 1 || len(got[0].Tracks[0].Samples) != 1 {
		t.Fatalf("gap file: want one chunk of one sample, got %d chunks", len(got))
	}
	gt, s := got[0].Tracks[0], got[0].Tracks[0].Samples[0]
	if gt.BaseTime != gap.BaseTime || uint64(s.Duration) != gap.Ticks || s.IsNonSyncSample {
		t.Errorf("gap file: tfdt %d, sample of %d ticks (non-sync %v); want tfdt %d, %d ticks, a sync sample",
			gt.BaseTime, s.Duration, s.IsNonSyncSample, gap.BaseTime, gap.Ticks)
	}
	var first fmp4.Parts
	if err := first.Unmarshal(pre.Parts[0].Data); err != nil {
		t.Fatal(err)
	}
	if want := first[0].Tracks[0].Samples[0].Payload; !bytes.Equal(s.Payload, want) {
		t.Errorf("gap file's picture (%d bytes) is not segment %d's key frame (%d bytes)", len(s.Payload), pre.MSN, len(want))
	}
	// The same bytes on every request: CDNs keep it (immutable).
	if _, again := get(SegmentName(gap.MSN)); !bytes.Equal(again, b) {
		t.Error("gap file changed between two requests")
	}
	// A decoder plays through it: the segment before, the still, the
	// segment after, behind one init segment.
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		init, _ := rr.Video.Init(gap.InitID)
		_, preB := get(SegmentName(pre.MSN))
		_, realB := get(SegmentName(real.MSN))
		if real.InitID != gap.InitID {
			realB = nil
		}
		name := filepath.Join(t.TempDir(), "through-gap.mp4")
		if err := os.WriteFile(name, slices.Concat(init, preB, b, realB), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-xerror", "-i", name, "-f", "null", "-").CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("ffmpeg decoding through the gap: %v\n%s", err, out)
		}
	}
	// Audio has no still picture: its gap segments stay 404.
	if _, ok := rr.Audio.GapFill(gap.MSN); ok {
		t.Error("GapFill of an audio track succeeded")
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
