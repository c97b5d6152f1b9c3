package dash

import (
	"testing"
	"time"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// TestMPDDatesAgree: every segment of the live MPD has one wall-clock
// date, its Wall (the capture time of its first sample), however a player
// reads it:
//   - dash.js, ISO/IEC 23009-1 §5.3.2 and §5.3.9.6: media time t of a
//     Period plays at availabilityStartTime + Period@start +
//     (t − @presentationTimeOffset)/@timescale (its timeAsUTC);
//   - §5.12 ProducerReferenceTime, through Period@start and PTO (DVB
//     TS 103 285 §10.20.4, as dash.js computes its latency offset):
//     wallClockTime is the date of media time @presentationTime;
//   - Shaka Player 5.2 (lib/dash/dash_parser.js parseProducerReferenceTime_
//     and lib/player.js getPlayheadTimeAsDate): wallClockTime −
//     @presentationTime/@timescale is the date of presentation time 0,
//     and a frame is dated that plus its presentation time
//     Period@start + (t − PTO)/timescale. It ignores Period@start and PTO
//     in the PRFT, so it agrees only when Period@start is PTO/timescale.
//
// With availabilityStartTime one second before the first Period's whole
// second, Period@start was 1.3 s for a stream whose first frame came at
// .3 s with media time 0, and Shaka dated every frame 1.3 s late
// (negative live latency) while dash.js and hls.js were right. Both a
// fresh stream (media time from 0) and one whose media timeline continues
// from an earlier session (cmaf.State) are checked, over three Periods.
func TestMPDDatesAgree(t *testing.T) {
	for _, tc := range []struct {
		name  string
		media time.Duration // media time of the window's first segment
		wall  time.Duration // its wall clock past the whole second
	}{
		{"fresh stream", 0, 300 * time.Millisecond},
		{"continued timeline", 7*time.Hour + 123457*time.Microsecond, 642 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			views := []view{window(cmaf.Video, 90000), window(cmaf.Audio, 48000)}
			wallOf := map[cmaf.Kind]map[uint64]time.Time{}
			for k := range views {
				v := &views[k]
				ts := uint64(v.snap.Info.Timescale)
				wallOf[v.kind] = map[uint64]time.Time{}
				for i := range v.snap.Segments {
					sg := &v.snap.Segments[i]
					sg.BaseTime += uint64(tc.media.Seconds() * float64(ts))
					sg.Wall = sg.Wall.Add(tc.wall)
					wallOf[v.kind][sg.BaseTime] = sg.Wall
				}
			}
			m := renderMPD(t, views, nil)
			ast, err := time.Parse(time.RFC3339Nano, string(m.AvailabilityStartTime))
			if err != nil {
				t.Fatal(err)
			}
			const tolerance = time.Millisecond // the MPD's times are in ms
			sec := func(ticks, ts uint64) time.Duration {
				return time.Duration(float64(ticks) / float64(ts) * float64(time.Second))
			}
			checked := 0
			for _, p := range m.Periods {
				start := time.Duration(*p.Start)
				for _, as := range p.AdaptationSets {
					if len(as.ProducerReferenceTimes) != 1 {
						t.Fatalf("period %s %s: %d ProducerReferenceTime", p.Id, as.ContentType, len(as.ProducerReferenceTimes))
					}
					prt := as.ProducerReferenceTimes[0]
					prtWall, err := time.Parse(time.RFC3339Nano, prt.WallClockTime)
					if err != nil {
						t.Fatal(err)
					}
					kind := cmaf.Video
					if as.ContentType == "audio" {
						kind = cmaf.Audio
					}
					for _, rep := range as.Representations {
						st := rep.SegmentTemplate
						ts, pto := uint64(st.GetTimescale()), *st.PresentationTimeOffset
						if d := start - sec(pto, ts); d < -tolerance || d > tolerance {
							t.Errorf("period %s %s: Period@start %v, presentationTimeOffset %v: Shaka dates its frames %v off", p.Id, rep.Id, start, sec(pto, ts), d)
						}
						// Shaka's date of presentation time 0.
						shakaZero := prtWall.Add(-sec(prt.PresentationTime, ts))
						var next uint64
						for _, e := range st.SegmentTimeline.S {
							if e.T != nil {
								next = *e.T
							}
							for range e.R + 1 {
								want, ok := wallOf[kind][next]
								if !ok {
									t.Fatalf("period %s %s: no segment at t=%d", p.Id, rep.Id, next)
								}
								pres := start + sec(next, ts) - sec(pto, ts)
								dates := map[string]time.Time{
									"dash.js (AST + Period@start + (t − PTO))":        ast.Add(pres),
									"ProducerReferenceTime via Period@start and PTO":  prtWall.Add(sec(next, ts) - sec(prt.PresentationTime, ts)),
									"Shaka (PRFT date of time 0 + presentation time)": shakaZero.Add(pres),
								}
								for who, got := range dates {
									if d := got.Sub(want); d < -tolerance || d > tolerance {
										t.Errorf("period %s %s t=%d: %s dates it %s, its wall clock is %s (%v)",
											p.Id, rep.Id, next, who, got.Format(dateTimeFormat), want.Format(dateTimeFormat), d)
									}
								}
								checked++
								next += e.D
							}
						}
					}
				}
			}
			if len(m.Periods) != 3 || checked != 60 {
				t.Errorf("%d periods, %d segments checked, want 3 and 60", len(m.Periods), checked)
			}
		})
	}
}
