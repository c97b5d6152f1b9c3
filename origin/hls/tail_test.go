package hls

import (
	"testing"
	"time"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// tailSnap: segment 13 complete with five 0.2 s parts and a last part of
// last (its Done a frame after the fifth's), segment 14 with one part.
func tailSnap(t0 time.Time, last time.Duration) cmaf.Snapshot {
	var parts []cmaf.Part
	done := t0
	for i, d := range []time.Duration{200, 200, 200, 200, 200} {
		done = done.Add(d * time.Millisecond)
		parts = append(parts, cmaf.Part{Index: i, Duration: d * time.Millisecond, Ticks: uint64(d) * 90, Done: done})
	}
	parts = append(parts, cmaf.Part{Index: 5, Duration: last, Ticks: uint64(last / time.Millisecond * 90), Done: done.Add(last)})
	seg13 := cmaf.Segment{MSN: 13, Parts: parts, Complete: true}
	for _, p := range parts {
		seg13.Ticks += p.Ticks
		seg13.Duration += p.Duration
	}
	seg14 := cmaf.Segment{MSN: 14, Parts: []cmaf.Part{{Index: 0, Independent: true, Duration: 200 * time.Millisecond, Done: done.Add(last + 200*time.Millisecond)}}}
	return cmaf.Snapshot{
		Info:     cmaf.TrackInfo{PartTarget: 200 * time.Millisecond},
		Segments: []cmaf.Segment{seg13, seg14},
		NextMSN:  14, NextPart: 1,
	}
}

// TestHoldTails: a segment's last part is listed no sooner than half a
// part target after the part before it was first listed, and nothing
// after it until then (tail.go: stock hls.js stopped loading video for 2 s
// when the two came together); parts listed a part target apart are
// never held.
func TestHoldTails(t *testing.T) {
	t0 := time.Unix(1000, 0)
	later := tailSnap(t0, 33*time.Millisecond) // 14.0 written too
	snap := later
	snap.Segments = snap.Segments[:1:1] // 13.5 is the newest part
	snap.NextMSN, snap.NextPart = 14, 0
	k := trackKey{1, "source", cmaf.Video}
	s := &Server{}
	// Playlists so far listed up to 13.3: 13.4 and 13.5 are new now.
	s.tails = map[trackKey]newestPart{k: {msn: 13, part: 3, at: t0}}
	now := t0.Add(1100 * time.Millisecond)

	got, until := s.holdTails(k, snap, now)
	if want := now.Add(100 * time.Millisecond); !until.Equal(want) {
		t.Errorf("held until %v, want %v", until, want)
	}
	if len(got.Segments) != 1 || got.Segments[0].Complete || len(got.Segments[0].Parts) != 5 ||
		got.Segments[0].Duration != time.Second || got.NextMSN != 13 || got.NextPart != 5 {
		t.Errorf("held snapshot: %d segments, first complete %v with %d parts (%v), next %d.%d; want segment 13 open with 5 parts (1s), hint 13.5",
			len(got.Segments), got.Segments[0].Complete, len(got.Segments[0].Parts), got.Segments[0].Duration, got.NextMSN, got.NextPart)
	}
	if listed(&got, 13, 5) || !listed(&got, 13, 4) || listed(&got, 14, 0) {
		t.Errorf("held: listed 13.5 %v, 13.4 %v, 14.0 %v; want false, true, false", listed(&got, 13, 5), listed(&got, 13, 4), listed(&got, 14, 0))
	}
	if len(snap.Segments[0].Parts) != 6 || !snap.Segments[0].Complete {
		t.Error("holdTails changed the snapshot it was given")
	}
	s.noteListed(k, &got, now)
	if rec := s.tails[k]; rec.msn != 13 || rec.part != 4 || !rec.at.Equal(now) {
		t.Errorf("recorded %+v, want 13.4 at %v", rec, now)
	}

	if _, until := s.holdTails(k, snap, now.Add(50*time.Millisecond)); !until.Equal(now.Add(100 * time.Millisecond)) {
		t.Errorf("50 ms later: held until %v, want %v", until, now.Add(100*time.Millisecond))
	}
	got, until = s.holdTails(k, snap, now.Add(100*time.Millisecond))
	if !until.IsZero() || len(got.Segments) != 1 || !got.Segments[0].Complete {
		t.Errorf("half a part target after 13.4 was listed, still held (until %v)", until)
	}
	if !listed(&got, 13, 5) || !listed(&got, 13, -1) {
		t.Error("released snapshot does not list 13.5 and segment 13")
	}
	// Only at the live edge: once 14.0 is written, 13.5 is not the newest
	// part, and nothing is held.
	if got, until := s.holdTails(k, later, now.Add(10*time.Millisecond)); !until.IsZero() || !listed(&got, 14, 0) {
		t.Errorf("a last part followed by the next segment's first: held until %v", until)
	}

	// Nothing listed yet (a first load): the whole window at once.
	if _, until := (&Server{}).holdTails(k, snap, now); !until.IsZero() {
		t.Errorf("first listing held until %v", until)
	}
	// 13.4 listed a part target before: its last part follows at once.
	s.tails[k] = newestPart{msn: 13, part: 4, at: now.Add(-200 * time.Millisecond)}
	if _, until := s.holdTails(k, snap, now); !until.IsZero() {
		t.Errorf("a last part a part target after the one before: held until %v", until)
	}
}
