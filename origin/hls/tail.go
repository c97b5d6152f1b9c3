package hls

import (
	"context"
	"time"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// A segment's last part is often listed right after the part before it:
// the source's parts wait for the AAC and the rungs to cover them
// (sync.go), and a key frame that comes a frame after a part ended makes
// a one-frame last part. Listed together, stock hls.js 1.7.4 stopped
// loading video for two seconds (node TestStockPlayers, ladder, its debug
// log): by the time it had loaded and appended part N.4, its next
// blocking reload already listed N.5 and segment N complete; its fragment
// tracker counts a segment as buffered once the buffer reaches within
// 0.2 s of its end (bufferPadding), so it never loaded N.5, while
// getFragmentAtPosition kept pointing at segment N for that unloaded
// part, until N.5 left the playlist's parts three segments later. So a
// segment's last part is listed no sooner than tailGap after the part
// before it was first listed: the player has appended that one by then.
// It is written and served at once (a player that asks for it by the
// preload hint gets it); only its listing, and what follows it, waits.
// Parts a part target apart, the usual case, are not held at all.

// tailGap is how long after a part was first listed a segment's last
// part may follow it: a player's load and append of a part.
func tailGap(partTarget time.Duration) time.Duration { return partTarget / 2 }

// trackKey names one media playlist's track.
type trackKey struct {
	stream    uint64
	rendition string
	kind      cmaf.Kind
}

// newestPart is the newest part a track's playlists have listed, and when
// it was first listed.
type newestPart struct {
	msn  uint64
	part int
	at   time.Time
}

func (l newestPart) covers(msn uint64, part int) bool {
	return !l.at.IsZero() && (l.msn > msn || l.msn == msn && l.part >= part)
}

// holdTails trims snap at the first segment's last part that comes too
// soon after the part before it (see above): that segment is listed as
// not complete yet, with the parts before it, and nothing after it. It
// returns when the hold ends (zero: nothing held).
func (s *Server) holdTails(k trackKey, snap cmaf.Snapshot, now time.Time) (cmaf.Snapshot, time.Time) {
	s.tailsMu.Lock()
	rec := s.tails[k]
	s.tailsMu.Unlock()
	if rec.at.IsZero() {
		return snap, time.Time{} // a first listing: no player has seen a part yet
	}
	// Only at the live edge: the newest part listed being a segment's
	// last (a later part there means the race is long over).
	i := len(snap.Segments) - 1
	for i >= 0 && len(snap.Segments[i].Parts) == 0 {
		i--
	}
	if i < 0 {
		return snap, time.Time{}
	}
	sg := &snap.Segments[i]
	j := len(sg.Parts) - 1
	if !sg.Complete || j < 1 || rec.covers(sg.MSN, j) {
		return snap, time.Time{}
	}
	prevAt := now // the part before is listed only now
	if rec.covers(sg.MSN, j-1) {
		prevAt = rec.at
	}
	if until := prevAt.Add(tailGap(snap.Info.PartTarget)); now.Before(until) {
		return trimSnapshot(snap, i, j), until
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
		if rec := s.tails[k]; !rec.covers(sg.MSN, len(sg.Parts)-1) {
			s.tails[k] = newestPart{msn: sg.MSN, part: len(sg.Parts) - 1, at: now}
		}
		return
	}
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
// its audio group and rungs cover (sync.go), less a last part held back
// (holdTails), and when that hold ends.
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
