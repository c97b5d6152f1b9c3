package dash

import (
	"bytes"
	"encoding/xml"
	"testing"
	"time"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// window makes a 30 s window of 1 s segments of five 200 ms parts for one
// track, with a discontinuity (new init) every 10 segments.
func window(kind cmaf.Kind, ts uint32) view {
	info := cmaf.TrackInfo{Kind: kind, Codec: "avc1.42c01e", Timescale: ts, Width: 1280, Height: 720, FrameRate: 30,
		PartTarget: 200 * time.Millisecond, SegmentTarget: time.Second, MaxSegment: time.Second, PeakBandwidth: 2_500_000}
	if kind == cmaf.Audio {
		info.Codec, info.SampleRate, info.Channels = "opus", 48000, 2
	}
	var segs []cmaf.Segment
	wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		sg := cmaf.Segment{MSN: uint64(100 + i), InitID: uint64(1 + i/10), DiscontinuitySeq: uint64(i / 10),
			Discontinuity: i%10 == 0 && i > 0, BaseTime: uint64(i) * uint64(ts), Ticks: uint64(ts), Duration: time.Second,
			Wall: wall.Add(time.Duration(i) * time.Second), Complete: i < 29}
		for p := range 5 {
			sg.Parts = append(sg.Parts, cmaf.Part{Index: p, Ticks: uint64(ts) / 5, Duration: 200 * time.Millisecond})
		}
		segs = append(segs, sg)
	}
	return view{rendition: "source", kind: kind, snap: cmaf.Snapshot{Segments: segs, Info: info}}
}

// BenchmarkMPD: rendering and encoding the live MPD of a 30 s window
// (video + audio, three Periods), against encoding the same MPD structure
// with encoding/xml alone (baseline): the ratio is what building it costs.
func BenchmarkMPD(b *testing.B) {
	s := &Server{cfg: Config{}.WithDefaults(), streams: map[uint64]*anchors{}, inits: map[initKey]videoInfo{}}
	views := []view{window(cmaf.Video, 90000), window(cmaf.Audio, 48000)}
	now := time.Date(2026, 1, 1, 0, 0, 31, 0, time.UTC)
	pers, ast := s.periods(1, &views[0].snap, now)
	in := &mpdInput{tracks: views, periods: pers, ast: ast, now: now, timeURL: "http://node/time", cfg: s.cfg}
	built := buildMPD(in, false)
	var buf bytes.Buffer
	b.Run("baseline-xml-encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := xml.NewEncoder(&buf).Encode(built); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
	b.Run("build-and-write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			pers, ast := s.periods(1, &views[0].snap, now)
			in := &mpdInput{tracks: views, periods: pers, ast: ast, now: now, timeURL: "http://node/time", cfg: s.cfg}
			if _, err := buildMPD(in, false).Write(&buf, "  ", true); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
	if len(built.Periods) != 3 {
		b.Fatalf("%d periods, want 3", len(built.Periods))
	}
}
