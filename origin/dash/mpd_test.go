package dash

import (
	"testing"
	"time"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// TestBuildMPDPeriods: a window with two discontinuities gives three
// Periods whose $Number$, PTO, init and start follow the segments, the
// in-progress segment is announced with its nominal duration, and the
// static MPD lasts as long as the media.
func TestBuildMPDPeriods(t *testing.T) {
	s := &Server{cfg: Config{}.WithDefaults(), streams: map[uint64]*anchors{}, inits: map[initKey]videoInfo{}}
	views := []view{window(cmaf.Video, 90000), window(cmaf.Audio, 48000)}
	views[0].snap.Segments[29].Ticks = 36000 // in progress: 0.4 s so far
	now := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	pers, ast := s.periods(1, &views[0].snap, now)
	m := buildMPD(&mpdInput{tracks: views, periods: pers, ast: ast, now: now, timeURL: "http://n/time", cfg: s.cfg}, false)
	if len(m.Periods) != 3 {
		t.Fatalf("%d periods", len(m.Periods))
	}
	for i, p := range m.Periods {
		st := p.AdaptationSets[0].Representations[0].SegmentTemplate
		if *st.StartNumber != uint32(100+10*i) || *st.PresentationTimeOffset != uint64(10*i*90000) ||
			st.Initialization != "source/video/"+cmaf.InitName(uint64(1+i)) {
			t.Errorf("period %d: start %d pto %d init %s", i, *st.StartNumber, *st.PresentationTimeOffset, st.Initialization)
		}
		if want := time.Second + time.Duration(10*i)*time.Second; time.Duration(*p.Start) != want {
			t.Errorf("period %d starts %v, want %v after availabilityStartTime", i, time.Duration(*p.Start), want)
		}
		a := p.AdaptationSets[1].Representations[0].SegmentTemplate
		if *a.StartNumber != *st.StartNumber || *a.PresentationTimeOffset != uint64(10*i*48000) {
			t.Errorf("period %d audio: start %d pto %d", i, *a.StartNumber, *a.PresentationTimeOffset)
		}
	}
	last := m.Periods[2].AdaptationSets[0].Representations[0].SegmentTemplate.SegmentTimeline.S
	if n := len(last); n != 1 || last[0].D != 90000 || last[0].R != 9 {
		t.Errorf("last period timeline %+v: the in-progress segment should be announced with its nominal 1 s", last[0])
	}

	views[0].snap.Segments[29].Ticks, views[0].snap.Segments[29].Complete = 90000, true
	views[0].snap.Ended = true
	st := buildMPD(&mpdInput{tracks: views, periods: pers, ast: ast, now: now, timeURL: "http://n/time", cfg: s.cfg}, true)
	if st.GetType() != "static" || time.Duration(*st.MediaPresentationDuration) != 30*time.Second || time.Duration(*st.Periods[0].Start) != 0 {
		t.Errorf("static: %s %v %v", st.GetType(), st.MediaPresentationDuration, st.Periods[0].Start)
	}
}

// TestBuildMPDGapSegments: gap segments (a rung whose encoder restarted,
// cmaf.Segment.Gap) stay in the SegmentTimeline like any other segment,
// so that $Number$ of every segment after them is still its MSN, the
// number the source and the other rungs give the same instant. dash.js
// 5.2.1 numbers timeline entries by position (startNumber + index), it
// does not read S@n, so leaving them out would shift every later number.
func TestBuildMPDGapSegments(t *testing.T) {
	s := &Server{cfg: Config{}.WithDefaults(), streams: map[uint64]*anchors{}, inits: map[initKey]videoInfo{}}
	v := window(cmaf.Video, 90000)
	for _, i := range []int{4, 5, 6} {
		sg := &v.snap.Segments[i]
		sg.Gap, sg.Parts, sg.Size = true, nil, 0
	}
	now := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	pers, ast := s.periods(1, &v.snap, now)
	m := buildMPD(&mpdInput{tracks: []view{v}, periods: pers, ast: ast, now: now, timeURL: "http://n/time", cfg: s.cfg}, false)
	st := m.Periods[0].AdaptationSets[0].Representations[0].SegmentTemplate
	num := uint64(*st.StartNumber)
	type entry struct{ t, n uint64 }
	var got []entry
	var next uint64
	for _, e := range st.SegmentTimeline.S {
		if e.T != nil {
			next = *e.T
		}
		for range e.R + 1 {
			got = append(got, entry{next, num})
			next += e.D
			num++
		}
	}
	for i, sg := range v.snap.Segments[:10] {
		if i >= len(got) {
			t.Fatalf("timeline has %d entries, want ≥ 10", len(got))
		}
		if got[i].n != sg.MSN || got[i].t != sg.BaseTime {
			t.Errorf("timeline entry %d: $Number$ %d t %d, segment MSN %d tfdt %d (gap %v)", i, got[i].n, got[i].t, sg.MSN, sg.BaseTime, sg.Gap)
		}
	}
}
