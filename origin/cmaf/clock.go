package cmaf

import (
	"slices"
	"sync"
	"time"
)

// SegmentClock is a stream-level segment clock shared by the packagers of
// every rendition of one stream, so that segment boundaries, tfdt and
// segment numbers (MSN, DASH $Number$) line up across ABR renditions
// (CMAF: fragment boundaries aligned across the renditions of a switching
// set), also for a rendition that starts later (the transcoder adds rungs
// while the publisher ramps up) — instead of each rendition numbering its
// own segments from 1.
//
// The clock is keyed by the output decode time (ticks of the 90 kHz video
// timescale) of the keyframe that starts a segment: the transcoder keeps
// the source's timestamps and forces its keyframes exactly where the
// source has them, so the same instant is a keyframe in every rendition.
// The first video rendition to reach a keyframe decides (by the usual
// duration rule) whether a segment starts there and with which MSN; the
// others follow: they cut exactly there and nowhere else, and a rendition
// that starts late begins at the next boundary, taking its MSN.
//
// An audio-only rendition (the transcoder's AAC, the source's audio in HLS)
// follows the clock too: it cuts at the first audio frame at or after each
// video boundary and takes that boundary's MSN, so its segment N is the
// video's segment N, as the source's own audio track's is.
type SegmentClock struct {
	mu     sync.Mutex
	bounds map[uint64]uint64    // boundary dts → MSN
	discs  map[uint64]uint64    // boundary dts → discontinuity sequence
	walls  map[uint64]time.Time // boundary dts → wall time (PROGRAM-DATE-TIME)
	order  []uint64             // boundaries, ascending
	// passed is the latest keyframe any rendition decided on.
	passed uint64
	seen   bool
	// first: the media time and wall time of the stream's first video
	// segment, which is no decided boundary (alignWall dates a rendition's
	// first segment that opens before any boundary by it).
	firstSet  bool
	firstAt   time.Duration
	firstWall time.Time
}

// NewSegmentClock returns an empty clock for one stream.
func NewSegmentClock() *SegmentClock {
	return &SegmentClock{bounds: map[uint64]uint64{}, discs: map[uint64]uint64{}, walls: map[uint64]time.Time{}}
}

// maxClockSkips is how many keyframes a starting rendition skips waiting
// for the clock's next boundary.
const maxClockSkips = 3

// clockKeep is how many boundaries the clock remembers: far more than any
// lag between renditions (a window of segments).
const clockKeep = 256

// SetClock makes p follow the stream's segment clock c (nil: p cuts and
// numbers on its own). Call before the first StartSession.
func (p *Packager) SetClock(c *SegmentClock) { p.clock = c }

// decide reports whether a video leader at keyframe dts cuts a segment
// there: always at a boundary of the clock; never at a keyframe another
// rendition already passed without one (unless forced: new init,
// discontinuity, overlong segment); otherwise as the caller wants (it is
// the first here), recording the boundary with msn, the number its next
// segment gets.
func (c *SegmentClock) decide(dts uint64, want, forced bool, msn uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.bounds[dts]; ok {
		return true
	}
	if c.seen && dts <= c.passed {
		return forced
	}
	c.seen, c.passed = true, dts
	if want || forced {
		c.addLocked(dts, msn)
	}
	return want || forced
}

// open is called when a video leader opens a segment at dts whose MSN
// would be msn. At a boundary it returns the clock's MSN; at a keyframe no
// rendition reached yet it records a boundary (a session's first segment).
func (c *SegmentClock) open(dts, msn uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.bounds[dts]; ok {
		return m
	}
	if !c.seen || dts > c.passed {
		c.seen, c.passed = true, dts
		c.addLocked(dts, msn)
		return c.bounds[dts]
	}
	return msn
}

// startAt reports whether a rendition whose first keyframe of a session is
// at dts may start there: at a boundary, or ahead of every rendition (it
// is the first to get there). false means "wait for the next keyframe".
func (c *SegmentClock) startAt(dts uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.bounds[dts]; ok {
		return true
	}
	return !c.seen || dts > c.passed
}

// addLocked records a boundary; MSNs never go below the previous
// boundary's + 1.
func (c *SegmentClock) addLocked(dts, msn uint64) {
	if n := len(c.order); n > 0 {
		if prev := c.bounds[c.order[n-1]]; msn <= prev {
			msn = prev + 1
		}
	}
	c.bounds[dts] = msn
	c.order = append(c.order, dts) // dts is past every keyframe decided
	if len(c.order) > clockKeep {
		for _, old := range c.order[:len(c.order)-clockKeep] {
			delete(c.bounds, old)
			delete(c.discs, old)
			delete(c.walls, old)
		}
		c.order = slices.Delete(c.order, 0, len(c.order)-clockKeep)
	}
}

// maxDiscSkew: how far after a boundary a segment may start and still be
// the segment of that boundary (an audio frame is 21 ms).
const maxDiscSkew = 100 * time.Millisecond

// clockTimescale is the timescale of the clock's keys (video tracks).
const clockTimescale = 90000

func clockTime(dts uint64) time.Duration {
	return time.Duration(dts) * time.Second / clockTimescale
}

// boundaryIn returns the MSN of the latest boundary in (from, to], for an
// audio-only rendition (the transcoder's AAC) that cuts its segments where
// the stream's video does, so that its segment N is the video's segment N.
func (c *SegmentClock) boundaryIn(from, to time.Duration) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.order) - 1; i >= 0; i-- {
		t := clockTime(c.order[i])
		if t <= from {
			break
		}
		if t <= to {
			return c.bounds[c.order[i]], true
		}
	}
	return 0, false
}

// at returns the MSN of the latest boundary at or before t.
func (c *SegmentClock) at(t time.Duration) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.order) - 1; i >= 0; i-- {
		if clockTime(c.order[i]) <= t {
			return c.bounds[c.order[i]], true
		}
	}
	return 0, false
}

// active reports whether a video rendition drives the clock.
func (c *SegmentClock) active() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen
}

// recordWall notes wall as the wall time of boundary dts unless one is
// known already (the first video rendition to cut there decides).
func (c *SegmentClock) recordWall(dts uint64, wall time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recordWallLocked(dts, wall)
}

// recordWallLocked is recordWall with c.mu held; it reports the
// boundary's wall time (false: dts is not a boundary).
func (c *SegmentClock) recordWallLocked(dts uint64, wall time.Time) (time.Time, bool) {
	if _, ok := c.bounds[dts]; !ok {
		return time.Time{}, false
	}
	if _, ok := c.walls[dts]; !ok {
		c.walls[dts] = wall
	}
	return c.walls[dts], true
}

// alignWall gives segment sg (just opened by w, a rendition's leader) the
// stream's wall time for its media time, so that PROGRAM-DATE-TIME agrees
// with tfdt across renditions: the video rendition that cuts at a
// boundary first records its wall time there (recordWall), and every other
// rendition's segment of that boundary (the AAC: within a frame after it)
// takes that time plus the media time between them. hls.js places the
// alternative audio by PROGRAM-DATE-TIME after a discontinuity, and the
// transcoder's AAC came out 15–35 ms off the source video's clock.
//
// It reports whether sg was dated by a decided boundary (the stream's
// clock). A segment of another kind than video that was not (the AAC's
// first: it opens before any boundary) is dated again from the segment
// after it once that one is (packager.go, writer.provisional).
func (w *writer) alignWall(c *SegmentClock, sg *Segment) (byBoundary bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.t.kind == Video {
		if !c.firstSet && !sg.Wall.IsZero() {
			c.firstSet, c.firstAt, c.firstWall = true, w.dur(sg.BaseTime), sg.Wall
		}
		if wall, ok := c.recordWallLocked(sg.BaseTime, sg.Wall); ok {
			sg.Wall = wall
			return true
		}
	}
	t := w.dur(sg.BaseTime)
	for i := len(c.order) - 1; i >= 0; i-- {
		b := clockTime(c.order[i])
		if b > t {
			continue
		}
		wall, ok := c.walls[c.order[i]]
		if !ok {
			// A boundary no video segment has dated: the stream's first,
			// which is no decided boundary.
			continue
		}
		if t-b <= maxDiscSkew {
			sg.Wall = wall.Add(t - b)
			return true
		}
		return false
	}
	w.firstDateLocked(c, sg, t)
	return false
}

// firstDateLocked dates a segment that opens before every boundary (the
// AAC's first, the encoder's delay after the source video's first, which
// is no boundary) from the stream's first video segment, within the
// stream's first two seconds of media (later the media clock may have
// jumped: reconnects). Provisional: that first video segment may be a
// rung's, dated by its own samples.
func (w *writer) firstDateLocked(c *SegmentClock, sg *Segment, t time.Duration) {
	if c.firstSet && (t-c.firstAt).Abs() <= 2*time.Second {
		sg.Wall = c.firstWall.Add(t - c.firstAt)
	}
}

// alignDisc gives segment sg (just opened by w, after prev) the stream's
// discontinuity sequence: HLS players (hls.js) map timestamps per
// discontinuity sequence, so segment N must have the same one in every
// rendition (RFC 8216 §6.2.4), although only the source changes its init
// (and starts a discontinuity) at each resolution step of the publisher.
// The video rendition that decided a boundary records its own.
func (w *writer) alignDisc(c *SegmentClock, sg, prev *Segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.t.kind == Video && w.p.leader == w {
		if _, ok := c.bounds[sg.BaseTime]; ok {
			if _, ok := c.discs[sg.BaseTime]; !ok {
				c.discs[sg.BaseTime] = sg.DiscontinuitySeq
			}
		}
	}
	t := w.dur(sg.BaseTime)
	for i := len(c.order) - 1; i >= 0; i-- {
		b := clockTime(c.order[i])
		if b > t {
			continue
		}
		// Only the boundary this segment starts at (audio: within a
		// frame after it), and only ever raising the sequence: a track
		// whose own session changed (a reconnect: audio may open its
		// segment before the video's first keyframe) keeps its own.
		d, ok := c.discs[c.order[i]]
		if !ok || t-b > maxDiscSkew || d <= sg.DiscontinuitySeq || (prev != nil && d < prev.DiscontinuitySeq) {
			return
		}
		if prev != nil && d != prev.DiscontinuitySeq {
			sg.Discontinuity = true
		}
		sg.DiscontinuitySeq = d
		return
	}
}

// clockBound is one boundary of the clock: a segment starts at dts with
// number msn.
type clockBound struct {
	dts, msn uint64
}

// boundsIn returns the boundaries in (from, to), ascending: the segments
// the stream cut while a rendition had no video (its encoder restarting).
func (c *SegmentClock) boundsIn(from, to uint64) []clockBound {
	c.mu.Lock()
	defer c.mu.Unlock()
	var bs []clockBound
	for _, d := range c.order {
		if d > from && d < to {
			bs = append(bs, clockBound{dts: d, msn: c.bounds[d]})
		}
	}
	return bs
}

// msnAt returns the MSN of the boundary at dts exactly.
func (c *SegmentClock) msnAt(dts uint64) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.bounds[dts]
	return m, ok
}
