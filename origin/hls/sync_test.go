package hls

import (
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// audioUpTo is an audio window whose edge is at wall time end.
func audioUpTo(start, end time.Time, ended bool) cmaf.Snapshot {
	return cmaf.Snapshot{Ended: ended, Segments: []cmaf.Segment{{
		MSN: 100, Wall: start, Parts: []cmaf.Part{{Duration: end.Sub(start)}},
	}}}
}

// TestSyncSnapshot: App. B.1, renditions updated in sync — a video
// playlist lists only the parts its audio group covers, the first
// uncovered part is the preload hint, an ended audio holds nothing back
// and one that lags holds the video MaxAudioLag back at most.
func TestSyncSnapshot(t *testing.T) {
	v := snapshot(3, -1) // segments 100, 101 complete; 102 with 2 parts
	start := v.Segments[0].Wall
	vEdge := v.Segments[2].Wall.Add(400 * time.Millisecond)
	for _, tc := range []struct {
		name     string
		audio    cmaf.Snapshot
		segs     int
		lastPart int // parts of the last listed segment
		complete bool
		hintMSN  uint64
		hintPart int
	}{
		{"audio ahead", audioUpTo(start, vEdge.Add(50*time.Millisecond), false), 3, 2, false, 102, 2},
		{"audio at the edge", audioUpTo(start, vEdge, false), 3, 2, false, 102, 2},
		{"audio one part behind", audioUpTo(start, vEdge.Add(-200*time.Millisecond), false), 3, 1, false, 102, 1},
		{"audio inside a part", audioUpTo(start, vEdge.Add(-250*time.Millisecond), false), 2, 5, true, 102, 0},
		{"audio inside a later part", audioUpTo(start, vEdge.Add(-50*time.Millisecond), false), 3, 1, false, 102, 1},
		{"audio at a segment end", audioUpTo(start, v.Segments[2].Wall, false), 2, 5, true, 102, 0},
		{"audio mid-segment", audioUpTo(start, v.Segments[1].Wall.Add(500*time.Millisecond), false), 2, 2, false, 101, 2},
		{"audio ended", audioUpTo(start, vEdge.Add(-500*time.Millisecond), true), 3, 2, false, 102, 2},
		// An encoder that is gone holds the video MaxAudioLag back, no more.
		{"audio gone", audioUpTo(start, vEdge.Add(-MaxAudioLag-300*time.Millisecond), false), 2, 2, false, 101, 2},
		{"no audio yet", cmaf.Snapshot{}, 2, 2, false, 101, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := syncSnapshot(v, tc.audio)
			if len(got.Segments) != tc.segs {
				t.Fatalf("%d segments, want %d", len(got.Segments), tc.segs)
			}
			last := got.Segments[len(got.Segments)-1]
			if len(last.Parts) != tc.lastPart || last.Complete != tc.complete {
				t.Errorf("last segment %d: %d parts complete %v, want %d %v", last.MSN, len(last.Parts), last.Complete, tc.lastPart, tc.complete)
			}
			if last.Duration != time.Duration(len(last.Parts))*200*time.Millisecond {
				t.Errorf("last segment duration %v for %d parts", last.Duration, len(last.Parts))
			}
			if got.NextMSN != tc.hintMSN || got.NextPart != tc.hintPart {
				t.Errorf("preload hint %d.%d, want %d.%d", got.NextMSN, got.NextPart, tc.hintMSN, tc.hintPart)
			}
			pl := string(MediaPlaylist(got, MediaOptions{}))
			if want := cmaf.PartName(tc.hintMSN, tc.hintPart); !strings.Contains(pl, `PRELOAD-HINT:TYPE=PART,URI="`+want) {
				t.Errorf("playlist hints something else than %s:\n%s", want, pl)
			}
		})
	}
	// The input is not changed (its parts are shared with the track).
	if len(v.Segments) != 3 || len(v.Segments[2].Parts) != 2 || !v.Segments[1].Complete || len(v.Segments[1].Parts) != 5 {
		t.Errorf("syncSnapshot changed its input: %+v", v.Segments)
	}
}

// TestSyncSnapshotRungs: the source's video playlist also lists only what
// the rungs have (a player's smooth switch then finds the rung's fragment
// at its flush point), but a rung more than MaxRungLag behind (an encoder
// gone or shedding) holds nothing back.
func TestSyncSnapshotRungs(t *testing.T) {
	v := snapshot(3, -1) // segments 100, 101 complete; 102 with 2 parts
	start := v.Segments[0].Wall
	vEdge := v.Segments[2].Wall.Add(400 * time.Millisecond)
	audio := audioUpTo(start, vEdge, false)
	for _, tc := range []struct {
		name     string
		rung     cmaf.Snapshot
		segs     int
		lastPart int
	}{
		{"rung at the edge", audioUpTo(start, vEdge, false), 3, 2},
		{"rung one part behind", audioUpTo(start, vEdge.Add(-200*time.Millisecond), false), 3, 1},
		{"rung at a segment end", audioUpTo(start, v.Segments[2].Wall, false), 2, 5},
		{"rung gone", audioUpTo(start, vEdge.Add(-MaxRungLag-100*time.Millisecond), false), 3, 2},
		{"rung ended", audioUpTo(start, vEdge.Add(-200*time.Millisecond), true), 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := syncSnapshot(v, audio, tc.rung)
			last := got.Segments[len(got.Segments)-1]
			if len(got.Segments) != tc.segs || len(last.Parts) != tc.lastPart {
				t.Errorf("%d segments, the last with %d parts; want %d, %d", len(got.Segments), len(last.Parts), tc.segs, tc.lastPart)
			}
		})
	}
}
