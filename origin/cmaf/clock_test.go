package cmaf

import (
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
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
	reg := NewRegistry()
	cfg := Config{SegmentDuration: time.Second}.WithDefaults()
	clock := NewSegmentClock()
	src := NewPackager(cfg, hub.Key{Stream: 3, Rendition: hub.Source}, reg, nil, nil)
	src.SetClock(clock)
	rung := NewPackager(cfg, hub.Key{Stream: 3, Rendition: "180p"}, reg, nil, nil)
	rung.SetClock(clock)

	start := time.Now()
	sess := func(p *Packager) {
		if err := p.StartSession(&hub.Session{ID: "s", Tracks: st.Tracks, Started: start}); err != nil {
			t.Fatal(err)
		}
	}
	sess(src)
	if err := rung.StartSession(&hub.Session{ID: "r", Tracks: rst.Tracks, Started: start}); err != nil {
		t.Fatal(err)
	}
	// The rung joins at 2.5 s (a keyframe between two 1 s boundaries) and
	// runs a little behind the source, as a transcoder does.
	const lag = 10
	n := len(st.Samples)
	for i := 0; i < n+lag; i++ {
		if i < n {
			s := st.Samples[i]
			au := *s.AU
			au.Time = start.Add(au.Duration(au.PTS))
			if err := src.WriteAU(s.Track, &au, 0); err != nil {
				t.Fatal(err)
			}
		}
		if i < lag {
			continue
		}
		r := rst.Samples[i-lag]
		rau := *r.AU
		if rau.Duration(rau.PTS) < 2500*time.Millisecond {
			continue
		}
		rau.Time = start.Add(rau.Duration(rau.PTS))
		if err := rung.WriteAU(r.Track, &rau, 0); err != nil {
			t.Fatal(err)
		}
	}
	src.EndSession()
	rung.EndSession()

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
	reg := NewRegistry()
	cfg := Config{SegmentDuration: time.Second}.WithDefaults()
	clock := NewSegmentClock()
	src := NewPackager(cfg, hub.Key{Stream: 4, Rendition: hub.Source}, reg, nil, nil)
	src.SetClock(clock)
	aac := NewPackager(cfg, hub.Key{Stream: 4, Rendition: "aac"}, reg, nil, nil)
	aac.SetClock(clock)
	start := time.Now()
	if err := src.StartSession(&hub.Session{ID: "s", Tracks: st.Tracks, Started: start}); err != nil {
		t.Fatal(err)
	}
	if err := aac.StartSession(&hub.Session{ID: "a", Tracks: st.Tracks[audio : audio+1], Started: start}); err != nil {
		t.Fatal(err)
	}
	const lag = 20
	n := len(st.Samples)
	for i := 0; i < n+lag; i++ {
		if i < n {
			s := st.Samples[i]
			au := *s.AU
			au.Time = start.Add(au.Duration(au.PTS))
			if err := src.WriteAU(s.Track, &au, 0); err != nil {
				t.Fatal(err)
			}
		}
		if i >= lag && st.Samples[i-lag].Track == audio {
			au := *st.Samples[i-lag].AU
			au.Time = start.Add(au.Duration(au.PTS))
			if err := aac.WriteAU(0, &au, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	src.EndSession()
	aac.EndSession()

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
	}
}
