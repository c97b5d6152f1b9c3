package dash

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"

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
		if want := time.Duration(10*i) * time.Second; time.Duration(*p.Start) != want {
			t.Errorf("period %d starts %v, want %v after availabilityStartTime (its presentationTimeOffset)", i, time.Duration(*p.Start), want)
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

// parseFrameRate reads a @frameRate as ISO/IEC 23009-1 §5.3.12.2
// (FrameRateType) allows it: an integer or "N/D" frames per second, and
// fails outside 1..240 fps (a timescale written as a frame rate is 90000).
func parseFrameRate(s mpd.FrameRateType) (float64, error) {
	n, d, slash := strings.Cut(string(s), "/")
	num, err := strconv.ParseUint(n, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("frameRate %q: not an integer or N/D", s)
	}
	den := uint64(1)
	if slash {
		if den, err = strconv.ParseUint(d, 10, 32); err != nil || den == 0 {
			return 0, fmt.Errorf("frameRate %q: not an integer or N/D", s)
		}
	}
	f := float64(num) / float64(den)
	if f < 1 || f > 240 {
		return 0, fmt.Errorf("frameRate %q: %.3f fps, not in 1..240", s, f)
	}
	return f, nil
}

// samples gives every part of v n frames (n/5 per 200 ms part: 5n fps).
func samples(v *view, n int) {
	for i := range v.snap.Segments {
		for j := range v.snap.Segments[i].Parts {
			v.snap.Segments[i].Parts[j].Samples = n
		}
	}
}

// renderMPD builds, writes and parses back the MPD of views, as a player
// reads it.
func renderMPD(t *testing.T, views []view, video func(*view, uint64) (videoInfo, bool)) *mpd.MPD {
	t.Helper()
	s := &Server{cfg: Config{}.WithDefaults(), streams: map[uint64]*anchors{}, inits: map[initKey]videoInfo{}}
	now := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	pers, ast := s.periods(1, &views[0].snap, now)
	m := buildMPD(&mpdInput{tracks: views, periods: pers, ast: ast, now: now, timeURL: "http://n/time", cfg: s.cfg, video: video}, false)
	var buf bytes.Buffer
	if _, err := m.Write(&buf, "  ", true); err != nil {
		t.Fatal(err)
	}
	back, err := mpd.ReadFromString(buf.String())
	if err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, buf.String())
	}
	return back
}

// TestMPDFrameRate: @frameRate is the rate the samples play at, an
// integer or N/D frames per second (ISO/IEC 23009-1 §5.3.12.2,
// FrameRateType; SPECS.md § LL-DASH), for the source and for a rung whose
// init segment's SPS declares "90000 fps" (a 90 kHz encoder's VUI
// time_scale without fixed_frame_rate_flag, as the transcoder writes it).
func TestMPDFrameRate(t *testing.T) {
	src, rung, ntsc := window(cmaf.Video, 90000), window(cmaf.Video, 90000), window(cmaf.Video, 90000)
	rung.rendition, ntsc.rendition = "480p", "360p"
	samples(&src, 6)                          // 30 fps
	samples(&rung, 6)                         // 30 fps
	ntsc.snap.Info.FrameRate = 30000.0 / 1001 // no sample counted: the track's measure
	views := []view{src, rung, ntsc}
	spsSays := func(*view, uint64) (videoInfo, bool) {
		return videoInfo{codec: "avc1.4d401f", width: 854, height: 480, fps: 90000}, true
	}
	m := renderMPD(t, views, spsSays)
	want := map[string]float64{"source-video": 30, "480p-video": 30, "360p-video": 30000.0 / 1001}
	for _, p := range m.Periods {
		for _, rep := range p.AdaptationSets[0].Representations {
			f, err := parseFrameRate(rep.FrameRate)
			if err != nil {
				t.Errorf("period %s %s: %v", p.Id, rep.Id, err)
			} else if math.Abs(f-want[rep.Id]) > 0.001 {
				t.Errorf("period %s %s: frameRate %s, want %.3f", p.Id, rep.Id, rep.FrameRate, want[rep.Id])
			}
		}
	}
	for _, tc := range []struct {
		fps  float64
		want mpd.FrameRateType
	}{{30, "30"}, {29.97, "30000/1001"}, {59.94, "60000/1001"}, {25, "25"}, {29.6, "30"}, {14.9, "15"}, {90000, ""}, {0, ""}, {math.NaN(), ""}} {
		if got := frameRate(tc.fps); got != tc.want {
			t.Errorf("frameRate(%v) = %q, want %q", tc.fps, got, tc.want)
		}
	}
}

// TestMPDBandwidth: a rung's @bandwidth is the figure a player can budget
// on (ISO/IEC 23009-1 §5.3.5.2: delivered continuously at it, the
// Representation plays out after @minBufferTime), never below its rate
// cap however easy the content; it is cmaf.Bandwidth, which is what the
// HLS BANDWIDTH of the variant sums (origin/hls variants; the end-to-end
// comparison is TestMPDBandwidthMatchesHLS).
func TestMPDBandwidth(t *testing.T) {
	src, rung, audio := window(cmaf.Video, 90000), window(cmaf.Video, 90000), window(cmaf.Audio, 48000)
	// The test content: a rung capped at 1.2 Mbit/s averages 37 kbit/s.
	rung.rendition, rung.rateCap = "480p", 1_200_000
	rung.snap.Info.PeakBandwidth, rung.snap.Info.AvgBandwidth = 39_000, 37_000
	src.snap.Info.AvgBandwidth = 2_000_000
	audio.snap.Info.PeakBandwidth, audio.snap.Info.AvgBandwidth = 70_000, 64_000
	views := []view{src, rung, audio}
	m := renderMPD(t, views, nil)
	byID := map[string]view{"source-video": src, "480p-video": rung, "source-audio": audio}
	for _, p := range m.Periods {
		for _, as := range p.AdaptationSets {
			for _, rep := range as.Representations {
				v, ok := byID[rep.Id]
				if !ok {
					t.Fatalf("unexpected representation %s", rep.Id)
				}
				want, _ := cmaf.Bandwidth(&v.snap, v.rateCap)
				if int(rep.Bandwidth) != want {
					t.Errorf("period %s %s: bandwidth %d, want the HLS figure %d", p.Id, rep.Id, rep.Bandwidth, want)
				}
				if int(rep.Bandwidth) < v.rateCap || int(rep.Bandwidth) < v.snap.Info.PeakBandwidth {
					t.Errorf("period %s %s: bandwidth %d below the rate cap %d or the measured peak %d",
						p.Id, rep.Id, rep.Bandwidth, v.rateCap, v.snap.Info.PeakBandwidth)
				}
			}
		}
	}
}

// TestBuildMPDTimeShiftShortestTrack: timeShiftBufferDepth promises every
// listed segment for that long after it ends, so it is the window of the
// track that keeps the least (here the audio, a segment shorter than the
// video's), not the source video's: a client at the window's start got a
// 404 for the audio's oldest segment.
func TestBuildMPDTimeShiftShortestTrack(t *testing.T) {
	s := &Server{cfg: Config{}.WithDefaults(), streams: map[uint64]*anchors{}, inits: map[initKey]videoInfo{}}
	views := []view{window(cmaf.Video, 90000), window(cmaf.Audio, 48000)}
	views[1].snap.Segments = views[1].snap.Segments[1:] // the audio keeps one segment less
	now := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	pers, ast := s.periods(1, &views[0].snap, now)
	m := buildMPD(&mpdInput{tracks: views, periods: pers, ast: ast, now: now, timeURL: "http://n/time", cfg: s.cfg}, false)
	if got, want := time.Duration(*m.TimeShiftBufferDepth), 29*time.Second; got != want {
		t.Errorf("timeShiftBufferDepth %v, want %v (the audio's window, its shortest)", got, want)
	}
}

// TestBuildMPDTimeShiftKeptWindow: what a track lists runs over what it
// keeps (cmaf drops a segment once the complete ones after it last
// Info.Window, and the open segment's parts are listed too), so the
// time-shift buffer is capped at that window: listed 30 s of a 28 s
// window, the oldest segments were promised a second or two after they
// were gone.
func TestBuildMPDTimeShiftKeptWindow(t *testing.T) {
	s := &Server{cfg: Config{}.WithDefaults(), streams: map[uint64]*anchors{}, inits: map[initKey]videoInfo{}}
	views := []view{window(cmaf.Video, 90000), window(cmaf.Audio, 48000)}
	for i := range views {
		views[i].snap.Info.Window = 28 * time.Second
	}
	now := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	pers, ast := s.periods(1, &views[0].snap, now)
	m := buildMPD(&mpdInput{tracks: views, periods: pers, ast: ast, now: now, timeURL: "http://n/time", cfg: s.cfg}, false)
	if got, want := time.Duration(*m.TimeShiftBufferDepth), 28*time.Second; got != want {
		t.Errorf("timeShiftBufferDepth %v, want %v (the window the tracks keep, not the 30 s they list)", got, want)
	}
}
