package hls

import (
	"context"
	"time"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// A segment's last part is often short: the presenter's key frame (or
// the AAC following the video's segment boundary) comes a frame or two
// after a part ended. Stock hls.js 1.7.4 counts a segment as buffered once
// its buffer reaches within 0.2 s of the segment's end (fragment-tracker
// bufferPadding), as soon as the segment is complete in the playlist it
// holds. If that playlist already lists segment N complete when hls.js
// appends part N.k-1, and the last part N.k is shorter than that padding,
// N counts as buffered, N.k is never loaded (loadFragment skips a
// fragment in state OK), and the buffer runs dry at N.k until the
// playlist stops listing N's parts, seconds later (node TestStockPlayers,
// its debug log: a 1.9 s stall at the start, after which hls.js plays 2 s
// further behind for good; hls.js #7646). So a segment ending in a short
// part is listed with all its parts, the last one too, but not complete
// (no EXTINF) and with nothing after it until tailHold after part N.k-1
// was first listed: by then a player has appended N.k-1 (on this box, at
// a player's start-up, up to ~0.38 s), and with N.k listed it goes on to
// load it. hls.js learns that N is complete from the playlist that lists
// N+1.0, which comes a part target after N.k in any case: the hold
// delays N+1.0 only when N.k was shorter than tailHold less a part
// target. A last part longer than the padding is never held.

// tailHold is how long after a segment's second-to-last part was first
// listed its completion may be listed, when its last part is short.
func tailHold(partTarget time.Duration) time.Duration { return partTarget * 3 / 2 }

// shortTail is the longest last part that is held: hls.js's 0.2 s
// bufferPadding plus the few ms its buffer may reach past a part's listed
// end (AAC dates are placed up to 2 ms early: playlist.go).
const shortTail = 225 * time.Millisecond

// trackKey names one media playlist's track.
type trackKey struct {
	stream    uint64
	rendition string
	kind      cmaf.Kind
}

// newestPart is the newest part a track's playlists have listed, when it
// was first listed, and when the part before it was (the same time when
// both came in one listing).
type newestPart struct {
	msn    uint64
	part   int
	at     time.Time
	prevAt time.Time
}

func (l newestPart) covers(msn uint64, part int) bool {
	return !l.at.IsZero() && (l.msn > msn || l.msn == msn && l.part >= part)
}

// holdTails lists the newest complete segment whose last part is short as
// not complete yet, with all its parts and nothing after it, until
// tailHold after its second-to-last part was first listed (see above). It
// returns when the hold ends (zero: nothing held).
func (s *Server) holdTails(k trackKey, snap cmaf.Snapshot, now time.Time) (cmaf.Snapshot, time.Time) {
	s.tailsMu.Lock()
	rec := s.tails[k]
	s.tailsMu.Unlock()
	if rec.at.IsZero() {
		return snap, time.Time{} // a first listing: no player has seen a part yet
	}
	i := len(snap.Segments) - 1
	for i >= 0 && !(snap.Segments[i].Complete && len(snap.Segments[i].Parts) > 0) {
		i--
	}
	if i < 0 {
		return snap, time.Time{}
	}
	sg := &snap.Segments[i]
	j := len(sg.Parts) - 1
	if j < 1 || sg.Parts[j].Duration > shortTail || rec.msn > sg.MSN {
		return snap, time.Time{} // not short, or its completion already listed
	}
	prevAt := now // part j-1 is listed only now
	switch {
	case rec.msn == sg.MSN && rec.part == j-1:
		prevAt = rec.at
	case rec.msn == sg.MSN && rec.part >= j:
		prevAt = rec.prevAt
	}
	if until := prevAt.Add(tailHold(snap.Info.PartTarget)); now.Before(until) {
		return openSnapshot(snap, i), until
	}
	return snap, time.Time{}
}

// noteListed records the newest part snap lists as listed at now, if it
// is newer than the last one recorded for k.
func (s *Server) noteListed(k trackKey, snap *cmaf.Snapshot, now time.Time) {
	for i := len(snap.Segments) - 1; i >= 0; i-- {
		sg := &snap.Segments[i]
		if len(sg.Parts) == 0 {
			continue
		}
		s.tailsMu.Lock()
		defer s.tailsMu.Unlock()
		if s.tails == nil {
			s.tails = map[trackKey]newestPart{}
		}
		rec := s.tails[k]
		part := len(sg.Parts) - 1
		if rec.covers(sg.MSN, part) {
			return
		}
		next := newestPart{msn: sg.MSN, part: part, at: now, prevAt: now}
		if part > 0 && rec.msn == sg.MSN && rec.part == part-1 {
			next.prevAt = rec.at
		}
		s.tails[k] = next
		return
	}
}

// openSnapshot lists snap up to segment i, with all of segment i's parts
// but segment i not complete; the hint names the part after it (the next
// segment's first).
func openSnapshot(snap cmaf.Snapshot, i int) cmaf.Snapshot {
	sg := snap.Segments[i]
	sg.Complete = false
	snap.Segments = append(snap.Segments[:i:i], sg)
	snap.NextMSN, snap.NextPart = sg.MSN+1, 0
	return snap
}

// trimSnapshot lists snap up to part j-1 of segment i (j = 0: up to the
// segment before i); the first part left out becomes the preload hint.
func trimSnapshot(snap cmaf.Snapshot, i, j int) cmaf.Snapshot {
	sg := snap.Segments[i]
	if j == 0 {
		snap.Segments = snap.Segments[:i:i]
	} else {
		sg.Parts = sg.Parts[:j:j]
		sg.Complete = false
		sg.Ticks, sg.Duration = 0, 0
		for _, q := range sg.Parts {
			sg.Ticks += q.Ticks
			sg.Duration += q.Duration
		}
		snap.Segments = append(snap.Segments[:i:i], sg)
	}
	snap.NextMSN, snap.NextPart = sg.MSN, j
	return snap
}

// listing is what a media playlist of track t lists at now: the parts
// its audio group and rungs cover (sync.go), with a segment's completion
// held back (holdTails), and when that hold ends.
func (s *Server) listing(st *cmaf.Stream, k trackKey, t *cmaf.Track, now time.Time) (cmaf.Snapshot, time.Time) {
	snap := t.Snapshot()
	if a := s.audioGroup(st, k.rendition, k.kind); a != nil {
		snap = syncSnapshot(snap, a.Snapshot(), rungSnapshots(s.rungs(st, k.rendition, k.kind))...)
	}
	snap = alignHead(snap, st)
	return s.holdTails(k, snap, now)
}

// maxHeadTrim is how many segments alignHead drops at most: the windows
// of a stream's tracks trim on their own and differ by a segment at
// times; a track whose window is far ahead (an encoder restarted, its old
// segments gone) must not empty the others.
const maxHeadTrim = 2

// alignHead starts the playlist at the first segment every live track of
// the stream still lists (rfc8216bis §6.2.4: matching content in every
// variant; their media sequence numbers are aligned, manifest rules).
// The windows trim each on its own: after a minute of a browser
// publisher's ladder the source listed from MSN 36 while the rungs and
// the AAC listed from 35, and Shaka Player, which keeps one number →
// start-time map for all video playlists of a live stream, placed a
// rung's segments from a number the source no longer listed and dated
// its frames 2.05 s late (docs/players.md).
func alignHead(snap cmaf.Snapshot, st *cmaf.Stream) cmaf.Snapshot {
	if len(snap.Segments) < 2 || snap.Ended {
		return snap
	}
	head := snap.Segments[0].MSN
	for _, rd := range st.Renditions() {
		for _, kind := range []cmaf.Kind{cmaf.Video, cmaf.Audio} {
			tr := rd.Track(kind)
			if tr == nil {
				continue
			}
			if first, live := tr.Window(); live && first > head && first-snap.Segments[0].MSN <= maxHeadTrim {
				head = first
			}
		}
	}
	i := 0
	for i < len(snap.Segments)-1 && snap.Segments[i].MSN < head {
		i++
	}
	snap.Segments = snap.Segments[i:]
	return snap
}

// waitTail holds a blocking reload that asked for part (msn, part) while
// holdTails leaves that part out, or until ctx ends.
func (s *Server) waitTail(ctx context.Context, st *cmaf.Stream, k trackKey, t *cmaf.Track, msn uint64, part int) {
	for {
		snap, until := s.listing(st, k, t, time.Now())
		if until.IsZero() || listed(&snap, msn, part) {
			return
		}
		timer := time.NewTimer(time.Until(until))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// listed reports whether snap lists part (msn, part): §6.2.5.2, a part
// past a segment's last is part 0 of the next segment; part < 0 is the
// whole segment.
func listed(snap *cmaf.Snapshot, msn uint64, part int) bool {
	for i := range snap.Segments {
		sg := &snap.Segments[i]
		if sg.MSN < msn {
			continue
		}
		if sg.MSN > msn {
			return true
		}
		if part < 0 {
			return sg.Complete
		}
		if part < len(sg.Parts) {
			return true
		}
		return sg.Complete && i+1 < len(snap.Segments) && len(snap.Segments[i+1].Parts) > 0
	}
	return false
}
