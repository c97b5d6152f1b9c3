package cmaf

import (
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
)

// TestSegmentClockAlignsLateRendition: a rendition that joins seconds
// after the source, at a keyframe that is not a segment boundary, starts
// at the source's next boundary with the source's MSN, and from then on
// every segment has the same MSN, tfdt and duration as the source's.
// Without the clock it would start at that keyframe as MSN 1.
func TestSegmentClockAlignsLateRendition(t *testing.T) {
	// The source ramps (new SPS at 2 s: a discontinuity), the rung keeps
	// its size; same frame timing and keyframes.
	st := mediatest.Generate(t, mediatest.Options{
		GOP: 500 * time.Millisecond, NoAudio: true,
		Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 2 * time.Second}, {Width: 640, Height: 360, Duration: 6 * time.Second}},
	})
	rst := mediatest.Generate(t, mediatest.Options{
		GOP: 500 * time.Millisecond, NoAudio: true,
		Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 8 * time.Second}},
	})
	if len(rst.Samples) != len(st.Samples) {
		t.Fatalf("streams differ in length: %d, %d", len(st.Samples), len(rst.Samples))
	}
	reg, _, src, rung := clockPair(3, "180p")
	start := time.Now()
	if err := src.StartSession(&hub.Session{ID: "s", Tracks: st.Tracks, Started: start}); err != nil {
		t.Fatal(err)
	}
	if err := rung.StartSession(&hub.Session{ID: "r", Tracks: rst.Tracks, Started: start}); err != nil {
		t.Fatal(err)
	}
	// The rung joins at 2.5 s (a keyframe between two 1 s boundaries) and
	// runs a little behind the source, as a transcoder does.
	feedBehind(t, start, src, st, rung, rst, 10, func(s mediatest.Sample, au *media.AccessUnit) (int, bool) {
		return s.Track, au.Duration(au.PTS) >= 2500*time.Millisecond
	})

	s3, _ := reg.Stream(3)
	sr, _ := s3.Rendition(hub.Source)
	rr, _ := s3.Rendition("180p")
	ss, rs := sr.Video.Snapshot(), rr.Video.Snapshot()
	if len(rs.Segments) < 3 {
		t.Fatalf("rung has %d segments", len(rs.Segments))
	}
	byMSN := map[uint64]Segment{}
	for _, sg := range ss.Segments {
		byMSN[sg.MSN] = sg
	}
	first := rs.Segments[0]
	if first.MSN == 1 || first.BaseTime != 3*90000 {
		t.Errorf("rung starts with MSN %d at %d ticks, want the source's MSN at 3 s (270000)", first.MSN, first.BaseTime)
	}
	for _, sg := range rs.Segments {
		ref, ok := byMSN[sg.MSN]
		if !ok {
			t.Errorf("rung MSN %d not in the source", sg.MSN)
			continue
		}
		if ref.BaseTime != sg.BaseTime || (sg.Complete && ref.Ticks != sg.Ticks) {
			t.Errorf("MSN %d: rung tfdt %d dur %d, source tfdt %d dur %d", sg.MSN, sg.BaseTime, sg.Ticks, ref.BaseTime, ref.Ticks)
		}
		// RFC 8216 §6.2.4: the same discontinuity sequence in every
		// variant (hls.js maps timestamps by it).
		if ref.DiscontinuitySeq != sg.DiscontinuitySeq {
			t.Errorf("MSN %d: rung discontinuity sequence %d, source %d", sg.MSN, sg.DiscontinuitySeq, ref.DiscontinuitySeq)
		}
	}
}

// TestSegmentClockAudioRendition: an audio-only rendition (the
// transcoder's AAC) cuts at the video's boundaries and takes their MSNs.
func TestSegmentClockAudioRendition(t *testing.T) {
	st := mediatest.Generate(t, mediatest.Options{
		GOP:    500 * time.Millisecond,
		Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 6 * time.Second}},
	})
	audio := -1
	for i, tr := range st.Tracks {
		if tr.Codec != st.Tracks[0].Codec || i > 0 {
			audio = i
		}
	}
	if audio < 0 {
		t.Fatal("no audio track generated")
	}
	reg, _, src, aac := clockPair(4, "aac")
	start := time.Now()
	if err := src.StartSession(&hub.Session{ID: "s", Tracks: st.Tracks, Started: start}); err != nil {
		t.Fatal(err)
	}
	if err := aac.StartSession(&hub.Session{ID: "a", Tracks: st.Tracks[audio : audio+1], Started: start}); err != nil {
		t.Fatal(err)
	}
	feedBehind(t, start, src, st, aac, st, 20, func(s mediatest.Sample, au *media.AccessUnit) (int, bool) {
		// The transcoder's AAC times run off the source's clock.
		au.Time = au.Time.Add(30 * time.Millisecond)
		return 0, s.Track == audio
	})

	s4, _ := reg.Stream(4)
	sr, _ := s4.Rendition(hub.Source)
	ar, _ := s4.Rendition("aac")
	video := map[uint64]Segment{}
	for _, sg := range sr.Video.Snapshot().Segments {
		video[sg.MSN] = sg
	}
	as := ar.Audio.Snapshot()
	if len(as.Segments) < 4 {
		t.Fatalf("aac has %d segments", len(as.Segments))
	}
	for i, sg := range as.Segments {
		v, ok := video[sg.MSN]
		if !ok {
			t.Errorf("aac MSN %d not a video MSN", sg.MSN)
			continue
		}
		at := time.Duration(sg.BaseTime) * time.Second / time.Duration(as.Info.Timescale)
		vt := time.Duration(v.BaseTime) * time.Second / 90000
		if d := at - vt; i > 0 && (d < 0 || d > 25*time.Millisecond) {
			t.Errorf("MSN %d: aac starts %v after the video (%v)", sg.MSN, d, vt)
		}
		// PROGRAM-DATE-TIME agrees with tfdt across renditions (hls.js
		// places the AAC by it after a discontinuity).
		if d := sg.Wall.Sub(v.Wall) - (at - vt); i > 0 && (d > time.Millisecond || d < -time.Millisecond) {
			t.Errorf("MSN %d: aac wall − video wall = %v, media time between them %v", sg.MSN, sg.Wall.Sub(v.Wall), at-vt)
		}
	}
}

// clockPair returns two packagers of stream id (the source and rendition
// name) that share one SegmentClock, as the origin sets them up.
func clockPair(id uint64, name string) (*Registry, *SegmentClock, *Packager, *Packager) {
	reg := NewRegistry()
	cfg := Config{SegmentDuration: time.Second}.WithDefaults()
	clock := NewSegmentClock()
	src := NewPackager(cfg, hub.Key{Stream: id, Rendition: hub.Source}, reg, nil, nil)
	src.SetClock(clock)
	other := NewPackager(cfg, hub.Key{Stream: id, Rendition: name}, reg, nil, nil)
	other.SetClock(clock)
	return reg, clock, src, other
}

// feedBehind writes st into lead and, lag samples behind, each sample of
// behind that keep accepts into follow, under the track index keep gives
// (a transcoder's output runs behind the source); timestamps are a
// realtime feed from start. Both sessions end after.
func feedBehind(t *testing.T, start time.Time, lead *Packager, st *mediatest.Stream, follow *Packager, behind *mediatest.Stream, lag int,
	keep func(s mediatest.Sample, au *media.AccessUnit) (track int, ok bool)) {
	t.Helper()
	n := len(st.Samples)
	for i := 0; i < n+lag; i++ {
		if i < n {
			au := *st.Samples[i].AU
			au.Time = start.Add(au.Duration(au.PTS))
			if err := lead.WriteAU(st.Samples[i].Track, &au, 0); err != nil {
				t.Fatal(err)
			}
		}
		if i < lag || i-lag >= len(behind.Samples) {
			continue
		}
		s := behind.Samples[i-lag]
		au := *s.AU
		au.Time = start.Add(au.Duration(au.PTS))
		track, ok := keep(s, &au)
		if !ok {
			continue
		}
		if err := follow.WriteAU(track, &au, 0); err != nil {
			t.Fatal(err)
		}
	}
	lead.EndSession()
	follow.EndSession()
}
