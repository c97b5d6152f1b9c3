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

// TestHoldTails: a segment whose last part is short is listed with all
// its parts but not complete, and nothing after it, until 1.5 part
// targets after its second-to-last part was first listed (tail.go: stock
// hls.js counted the segment buffered without its last part and stalled);
// a last part longer than hls.js's 0.2 s padding is never held.
func TestHoldTails(t *testing.T) {
	t0 := time.Unix(1000, 0)
	later := tailSnap(t0, 33*time.Millisecond) // 14.0 written too
	snap := later
	snap.Segments = snap.Segments[:1:1] // 13.5 is the newest part
	snap.NextMSN, snap.NextPart = 14, 0
	k := trackKey{1, "source", cmaf.Video}
	s := &Server{}
	// Playlists so far listed up to 13.3: 13.4 and 13.5 are new now.
	s.tails = map[trackKey]newestPart{k: {msn: 13, part: 3, at: t0, prevAt: t0}}
	now := t0.Add(1100 * time.Millisecond)

	got, until := s.holdTails(k, snap, now)
	if want := now.Add(300 * time.Millisecond); !until.Equal(want) {
		t.Errorf("held until %v, want %v", until, want)
	}
	if len(got.Segments) != 1 || got.Segments[0].Complete || len(got.Segments[0].Parts) != 6 ||
		got.Segments[0].Duration != 1033*time.Millisecond || got.NextMSN != 14 || got.NextPart != 0 {
		t.Errorf("held snapshot: %d segments, first complete %v with %d parts (%v), next %d.%d; want segment 13 open with its 6 parts (1.033s), hint 14.0",
			len(got.Segments), got.Segments[0].Complete, len(got.Segments[0].Parts), got.Segments[0].Duration, got.NextMSN, got.NextPart)
	}
	if !listed(&got, 13, 5) || listed(&got, 13, -1) || listed(&got, 14, 0) || listed(&got, 13, 6) {
		t.Errorf("held: listed 13.5 %v, segment 13 %v, 14.0 %v, 13.6 %v; want true, false, false, false",
			listed(&got, 13, 5), listed(&got, 13, -1), listed(&got, 14, 0), listed(&got, 13, 6))
	}
	if len(snap.Segments[0].Parts) != 6 || !snap.Segments[0].Complete {
		t.Error("holdTails changed the snapshot it was given")
	}
	s.noteListed(k, &got, now)
	if rec := s.tails[k]; rec.msn != 13 || rec.part != 5 || !rec.at.Equal(now) || !rec.prevAt.Equal(now) {
		t.Errorf("recorded %+v, want 13.5 at %v, the part before it listed then too", rec, now)
	}
	// 14.0 written: still held, completion and all (the hold is by time,
	// not at the live edge only).
	if got, until := s.holdTails(k, later, now.Add(50*time.Millisecond)); !until.Equal(now.Add(300*time.Millisecond)) || listed(&got, 14, 0) {
		t.Errorf("50 ms later, 14.0 written: held until %v, 14.0 listed %v; want %v, false", until, listed(&got, 14, 0), now.Add(300*time.Millisecond))
	}
	got, until = s.holdTails(k, later, now.Add(300*time.Millisecond))
	if !until.IsZero() || !listed(&got, 13, -1) || !listed(&got, 14, 0) {
		t.Errorf("1.5 part targets after 13.4 was listed, still held (until %v)", until)
	}
	s.noteListed(k, &got, now.Add(300*time.Millisecond))
	if _, until := s.holdTails(k, later, now.Add(301*time.Millisecond)); !until.IsZero() {
		t.Errorf("held again after 14.0 was listed: until %v", until)
	}

	// Nothing listed yet (a first load): the whole window at once.
	if _, until := (&Server{}).holdTails(k, snap, now); !until.IsZero() {
		t.Errorf("first listing held until %v", until)
	}
	// 13.4 listed 0.4 s before: 13.5 and the completion follow at once.
	s.tails[k] = newestPart{msn: 13, part: 4, at: now.Add(-400 * time.Millisecond)}
	if _, until := s.holdTails(k, snap, now); !until.IsZero() {
		t.Errorf("13.4 listed 0.4 s before: held until %v", until)
	}
	// 13.4 listed 0.1 s before: held 0.2 s more.
	s.tails[k] = newestPart{msn: 13, part: 4, at: now.Add(-100 * time.Millisecond)}
	if _, until := s.holdTails(k, snap, now); !until.Equal(now.Add(200 * time.Millisecond)) {
		t.Errorf("13.4 listed 0.1 s before: held until %v, want %v", until, now.Add(200*time.Millisecond))
	}
	// and once 13.5 is listed, the hold still counts from 13.4's listing.
	s.noteListed(k, &got, now)
	if rec := s.tails[k]; rec.part != 0 || rec.msn != 14 {
		t.Errorf("recorded %+v, want 14.0", rec)
	}
	s.tails[k] = newestPart{msn: 13, part: 4, at: now.Add(-100 * time.Millisecond)}
	open, _ := s.holdTails(k, snap, now)
	s.noteListed(k, &open, now)
	if rec := s.tails[k]; rec.part != 5 || !rec.prevAt.Equal(now.Add(-100*time.Millisecond)) {
		t.Errorf("recorded %+v, want 13.5 with the part before listed 0.1 s earlier", rec)
	}
	if _, until := s.holdTails(k, snap, now.Add(150*time.Millisecond)); !until.Equal(now.Add(200 * time.Millisecond)) {
		t.Errorf("13.5 listed, 13.4 0.25 s before: held until %v, want %v", until, now.Add(200*time.Millisecond))
	}
	// A last part as long as hls.js's padding or more: never held.
	long := tailSnap(t0, 240*time.Millisecond)
	long.Segments = long.Segments[:1:1]
	s.tails[k] = newestPart{msn: 13, part: 4, at: now}
	if _, until := s.holdTails(k, long, now); !until.IsZero() {
		t.Errorf("a 240 ms last part: held until %v", until)
	}
}
