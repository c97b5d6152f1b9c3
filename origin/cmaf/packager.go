package cmaf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strconv"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

// stateComponent is the State component the packager persists under.
const stateComponent = "origin"

// persisted is the numbering saved per (stream, rendition).
type persisted struct {
	// NextMSN is the first MSN a restarted packager may use.
	NextMSN uint64 `json:"next_msn"`
	// Disc is the last discontinuity sequence used.
	Disc uint64 `json:"disc"`
	// NextInit is the next init id.
	NextInit uint64 `json:"next_init"`
	// Media is the media time (ns) at wall time Wall.
	Media int64     `json:"media_ns"`
	Wall  time.Time `json:"wall"`
	// Exact: Media is where the media really ended (saved at the end of a
	// session); otherwise it is the start of the last reservation.
	Exact bool `json:"exact,omitempty"`
}

// Packager turns the access units of one rendition (hub key) into the
// CMAF tracks of a Rendition in a Registry. Its methods are called from one
// goroutine (the hub subscription reader); the tracks it writes are read
// concurrently.
type Packager struct {
	cfg   Config
	key   hub.Key
	reg   *Registry
	state State
	log   *slog.Logger

	rend   *Rendition
	video  *writer
	audio  *writer
	vIdx   int // session track index of video, -1 if none
	aIdx   int
	leader *writer

	loaded   bool
	num      persisted
	reserved uint64 // numbers below it are persisted as used
	// savedMedia/savedWall: the media-time anchor of the last record.
	savedMedia time.Duration
	savedWall  time.Time
	live       bool
	timeBase   time.Duration // output media time of the session's t=0
	// lastEnd: output media time and wall time where the last session
	// ended.
	lastEnd     time.Duration
	lastEndWall time.Time
	// clock: the stream's segment clock (clock.go); nil: own numbering.
	// clockSkips counts keyframes skipped waiting for its next boundary.
	clock      *SegmentClock
	clockSkips int
	// gapsTo: the leader published gap segments (addGaps) up to the MSN
	// before it; a follower fills the same numbers.
	gapsTo uint64
}

// NewPackager returns a packager for key that publishes into reg. state
// may be nil (no persistence). No side effects until StartSession.
func NewPackager(cfg Config, key hub.Key, reg *Registry, state State, log *slog.Logger) *Packager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Packager{
		cfg: cfg.WithDefaults(), key: key, reg: reg, state: state,
		log:  log.With("stream", key.Stream, "rendition", key.Rendition),
		vIdx: -1, aIdx: -1,
	}
}

func (p *Packager) stateKey() string {
	return strconv.FormatUint(p.key.Stream, 10) + "/" + p.key.Rendition
}

// load reads the rendition's numbering once, before its first session:
// where a previous run stopped, or 1 for a rendition never numbered. A
// failed read leaves it unread (ErrStateUnavailable) for the next
// session to try again; it never starts at 1 on a guess.
func (p *Packager) load() error {
	if p.loaded {
		return nil
	}
	var b []byte
	if p.state != nil {
		var err error
		if b, err = p.state.GetState(stateComponent, p.stateKey()); err != nil {
			return fmt.Errorf("%w: %s/%s: %v", ErrStateUnavailable, stateComponent, p.stateKey(), err)
		}
	}
	var st persisted
	if b != nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("%w: %s/%s is damaged: %v", ErrStateUnavailable, stateComponent, p.stateKey(), err)
		}
	}
	p.loaded = true
	p.num = persisted{NextMSN: 1, NextInit: 1}
	if b == nil {
		return nil
	}
	// NextMSN is the end of the last reservation: every number below it
	// may have been used (and cached by a CDN).
	st.Disc++
	p.num = st
	p.reserved = st.NextMSN
	// Continue the media timeline as if it ran in real time meanwhile.
	// Media time ran on since the record, about as fast as the wall
	// clock. A record from the middle of a session (crash) is up to
	// msnReserve segments old: add two segments of margin then.
	gap := time.Since(st.Wall)
	if !st.Exact {
		gap += 2 * p.cfg.SegmentDuration
	}
	if st.Wall.IsZero() {
		gap = time.Duration(msnReserve+2) * p.cfg.SegmentDuration
	}
	p.lastEnd = time.Duration(st.Media) + gap
	p.lastEndWall = time.Now()
	p.log.Info("origin: continuing numbering", "msn", st.NextMSN, "disc", st.Disc)
	return nil
}

func (p *Packager) save(msn uint64, media time.Duration, wall time.Time) {
	if p.state == nil {
		return
	}
	if wall.IsZero() { // keep the last media/wall anchor
		media, wall = p.savedMedia, p.savedWall
	}
	p.savedMedia, p.savedWall = media, wall
	st := persisted{NextMSN: msn, Disc: p.num.Disc, NextInit: p.num.NextInit, Media: int64(media), Wall: wall, Exact: !p.live}
	b, _ := json.Marshal(st)
	if err := p.state.PutState(stateComponent, p.stateKey(), b); err != nil {
		p.log.Warn("origin: cannot save numbering state", "err", err)
	}
}

// Rendition is what the packager publishes (nil before the first session).
func (p *Packager) Rendition() *Rendition { return p.rend }

// StartSession begins a publisher session. A previous session is ended
// first. The first segments of the session carry a discontinuity.
func (p *Packager) StartSession(sess *hub.Session) error {
	if err := p.load(); err != nil {
		return err // not packaged; the next session reads again
	}
	if p.live {
		p.EndSession()
	}
	p.vIdx, p.aIdx = -1, -1
	for i, tr := range sess.Tracks {
		switch {
		case tr.Codec == media.CodecH264 && p.vIdx < 0:
			p.vIdx = i
		case (tr.Codec == media.CodecOpus || tr.Codec == media.CodecAAC) && p.aIdx < 0:
			p.aIdx = i
		}
	}
	if p.vIdx < 0 && p.aIdx < 0 {
		return fmt.Errorf("%w: no H.264 or Opus/AAC track", ErrUnsupported)
	}
	// Tracks persist across sessions; a rendition gains a track when a
	// session brings one.
	changed := p.rend == nil
	if p.vIdx >= 0 && p.video == nil {
		p.video = newWriter(p, newTrack(p.key.Stream, p.key.Rendition, Video), 90000)
		changed = true
	}
	if p.aIdx >= 0 && p.audio == nil {
		p.audio = newWriter(p, newTrack(p.key.Stream, p.key.Rendition, Audio), 48000)
		changed = true
	}
	if changed {
		p.rend = &Rendition{Name: p.key.Rendition}
		if p.video != nil {
			p.rend.Video = p.video.t
		}
		if p.audio != nil {
			p.rend.Audio = p.audio.t
		}
		p.reg.add(p.key.Stream, p.rend)
	}
	// Media time continues from the previous session, advanced by the wall
	// time that passed, so that media time keeps tracking the wall clock.
	base := p.lastEnd
	if !p.lastEndWall.IsZero() {
		base += time.Since(p.lastEndWall)
	}
	p.timeBase = base.Round(time.Millisecond)
	p.num.Disc++
	if p.num.Disc == 1 && p.num.NextMSN == 1 {
		p.num.Disc = 0 // the very first session starts at 0
	}
	p.leader = nil
	if p.vIdx >= 0 {
		p.leader = p.video
		p.video.startSession(sess.Tracks[p.vIdx], p.timeBase)
	}
	if p.aIdx >= 0 {
		if p.leader == nil {
			p.leader = p.audio
		}
		p.audio.startSession(sess.Tracks[p.aIdx], p.timeBase)
	}
	for _, w := range []*writer{p.video, p.audio} {
		if w != nil {
			w.t.mu.Lock()
			w.t.ended = false
			w.t.info.PartTarget, w.t.info.SegmentTarget, w.t.info.Window = p.cfg.PartTarget, p.cfg.SegmentDuration, p.cfg.Window
			w.t.nextMSN, w.t.nextPart = p.num.NextMSN, 0
			w.t.notifyLocked()
			w.t.mu.Unlock()
		}
	}
	p.live = true
	return nil
}

// WriteAU adds an access unit of session track index track. missed is the
// hub's count of access units dropped just before it.
func (p *Packager) WriteAU(track int, au *media.AccessUnit, missed uint64) error {
	if !p.live {
		return nil
	}
	var w *writer
	switch track {
	case p.vIdx:
		w = p.video
	case p.aIdx:
		w = p.audio
	default:
		return nil
	}
	if missed > 0 && w == p.video {
		w.waitKey = true
	}
	return w.add(au)
}

// EndSession completes the segment in progress; the tracks stay live
// (a reconnecting publisher continues them) until Finish.
func (p *Packager) EndSession() {
	if !p.live {
		return
	}
	p.live = false
	end := time.Duration(0)
	for _, w := range []*writer{p.video, p.audio} {
		if w == nil {
			continue
		}
		w.flushAll()
		if e := w.endTime(); e > end {
			end = e
		}
	}
	p.lastEnd = end
	p.lastEndWall = time.Now()
	// Anchor the media timeline where it really ended, for a restart.
	p.save(max(p.reserved, p.num.NextMSN), p.lastEnd, p.lastEndWall)
}

// Finish ends the tracks for good (HLS EXT-X-ENDLIST, static MPD).
func (p *Packager) Finish() {
	p.EndSession()
	for _, w := range []*writer{p.video, p.audio} {
		if w == nil {
			continue
		}
		w.t.mu.Lock()
		w.t.ended = true
		w.t.notifyLocked()
		w.t.mu.Unlock()
	}
}

// Remove takes the rendition out of the registry (after Finish, once
// players had time to finish).
func (p *Packager) Remove() {
	if p.rend != nil {
		p.reg.remove(p.key.Stream, p.key.Rendition, p.rend)
	}
}

// leaderCut is called by the leader writer when it closes a part at output
// time at (and a segment when seg). Followers cut at the same instant.
func (p *Packager) leaderCut(at time.Duration, seg, disc bool) {
	for _, w := range []*writer{p.video, p.audio} {
		if w != nil && w != p.leader {
			w.cutAt(at, seg)
			// Keep discontinuity sequences equal across the tracks of a
			// rendition (HLS players align audio by them; DASH periods).
			w.disc = w.disc || disc
		}
	}
}

// openSegment allocates the MSN for a new segment of the leader.
func (p *Packager) openSegment(media time.Duration, wall time.Time) uint64 {
	msn := p.num.NextMSN
	p.num.NextMSN++
	// Persist a reservation of msnReserve numbers rather than every
	// segment (one fsync per block, not per second and rendition); a
	// restart continues after the reservation.
	if msn >= p.reserved {
		p.reserved = msn + msnReserve
		p.save(p.reserved, media, wall)
	}
	return msn
}

// msnReserve is how many MSNs one persisted record covers.
const msnReserve = 8

func (p *Packager) newInitID() uint64 {
	id := p.num.NextInit
	p.num.NextInit++
	// Init ids are rare (session start, SPS change) and a CDN caches
	// init segments by name for good: persist every allocation.
	p.save(max(p.reserved, p.num.NextMSN), time.Duration(0), time.Time{})
	return id
}

// sample is an access unit waiting for its duration.
type sample struct {
	dts    uint64
	ptsOff int32
	key    bool
	data   []byte
	wall   time.Time
}

// writer builds one track.
type writer struct {
	p         *Packager
	t         *Track
	timescale uint32
	offset    int64 // ticks added to session timestamps

	codec   media.Codec
	sps     []byte
	pps     []byte
	initID  uint64
	newInit bool // config changed: next segment needs a new init
	// clockWall/clockAt: the wall time of media time clockAt in this
	// session, from the session's first segment (wallAt; a leader's
	// clock gives its followers their wall times).
	clockWall time.Time
	clockAt   time.Duration
	disc      bool // next segment carries a discontinuity
	// provisional: the open segment was not dated by the stream's clock
	// (clock.go alignWall); the next one that is dates it again.
	provisional bool
	waitKey     bool
	captions    bool // a sample carried CEA-608/708 captions (hasCaptions)
	lastDTS     uint64
	hasLast     bool
	// pushedEnd is where the last sample written into a part ends, within
	// the session (pushed).
	pushedEnd uint64
	pushed    bool
	lastDur   uint64

	pending *sample
	part    []*fmp4.Sample
	partTk  uint64
	partInd bool
	seq     uint32
	// The open part goes out as CMAF chunks (one moof+mdat each) while it
	// is written: partData holds the chunks so far, chunk the samples not
	// yet in one (see emitChunk).
	partData []byte
	chunk    []*fmp4.Sample
	chunkDTS uint64
	chunkTk  uint64

	seg       *Segment // open segment, nil between segments
	firstSeg  bool     // seg is the first of a publisher session
	newSess   bool     // the next segment opened is a session's first
	segClosed bool     // leader: next sample opens a new segment
	cutSeg    bool     // follower: pending segment cut

	// follower cut point (ticks), valid when cutPending.
	cutPending bool
	cutTicks   uint64
}

func newWriter(p *Packager, t *Track, timescale uint32) *writer {
	t.info.Kind = t.kind
	t.info.Timescale = timescale
	return &writer{p: p, t: t, timescale: timescale}
}

// wallOf is the wall time of sample s for a segment it opens: within a
// session, the session's first segment's wall time plus the media time
// since (so PROGRAM-DATE-TIME advances exactly with the media); the
// sample's own time for a session's first segment. Sample times follow
// the sender's RTCP reports, which Chromium's drift against its RTP
// timestamps by tens of ms within seconds: hls.js places the media after
// a discontinuity (each resolution step) by PROGRAM-DATE-TIME, and a
// segment whose PDT was 25 ms past its predecessor's end left a hole in
// the buffer there.
func (w *writer) wallOf(s *sample) time.Time {
	if w.clockWall.IsZero() {
		return s.wall
	}
	return w.wallAt(w.dur(s.dts))
}

// wallAt is the wall time of media time d on w's session clock.
func (w *writer) wallAt(d time.Duration) time.Time { return w.clockWall.Add(d - w.clockAt) }

// rebaseFollowers gives a follower's open segment with the same MSN as
// the leader's new segment sg (a session's first: the audio often starts
// before the first video keyframe) the leader's wall clock, as later
// follower segments get it when they open.
func (p *Packager) rebaseFollowers(sg *Segment) {
	l := p.leader
	for _, f := range []*writer{p.video, p.audio} {
		if f == nil || f == l || f.seg == nil || f.seg.MSN != sg.MSN {
			continue
		}
		f.t.mu.Lock()
		f.seg.Wall = l.wallAt(f.dur(f.seg.BaseTime))
		f.t.notifyLocked()
		f.t.mu.Unlock()
	}
}

func (w *writer) ticks(d time.Duration) int64 {
	return int64(d) * int64(w.timescale) / int64(time.Second)
}

func (w *writer) dur(ticks uint64) time.Duration {
	return time.Duration(ticks) * time.Second / time.Duration(w.timescale)
}

func (w *writer) startSession(tr media.Track, base time.Duration) {
	w.offset = w.ticks(base)
	if w.hasLast && w.offset <= int64(w.lastDTS) {
		w.offset = int64(w.lastDTS) + 1
	}
	w.codec = tr.Codec
	w.disc = true
	w.newInit = true
	w.waitKey = w.t.kind == Video
	w.newSess = true
	w.pushed = false
	w.pending = nil
	w.segClosed = true
	w.clockWall = time.Time{}
	if w.t.kind == Video {
		w.sps, w.pps = tr.SPS, tr.PPS
	} else {
		if err := w.makeInit(tr); err != nil {
			w.p.log.Warn("origin: audio init", "err", err)
		}
	}
}

// makeInit builds and stores a new init segment.
func (w *writer) makeInit(tr media.Track) error {
	var c codecs.Codec
	info := w.t.Info()
	switch w.codec {
	case media.CodecH264:
		c = &codecs.H264{SPS: w.sps, PPS: w.pps}
		var sps h264.SPS
		if err := sps.Unmarshal(w.sps); err == nil {
			info.Width, info.Height = sps.Width(), sps.Height()
		}
		if len(w.sps) >= 4 {
			info.Codec = fmt.Sprintf("avc1.%02x%02x%02x", w.sps[1], w.sps[2], w.sps[3])
		}
	case media.CodecOpus:
		ch := tr.Channels
		if ch == 0 {
			ch = 2
		}
		c = &codecs.Opus{ChannelCount: ch}
		info.Codec, info.SampleRate, info.Channels = "opus", 48000, ch
	case media.CodecAAC:
		ch, sr := tr.Channels, tr.SampleRate
		if ch == 0 {
			ch = 2
		}
		if sr == 0 {
			sr = 48000
		}
		c = &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
			Type: mpeg4audio.ObjectTypeAACLC, SampleRate: sr, ChannelCount: ch, ChannelConfig: uint8(ch)}}
		info.Codec, info.SampleRate, info.Channels = "mp4a.40.2", sr, ch
	default:
		return ErrUnsupported
	}
	b, err := marshalInit(w.timescale, c)
	if err != nil {
		return err
	}
	id := w.p.newInitID()
	w.t.mu.Lock()
	w.t.inits[id] = b
	w.t.info.Codec = info.Codec
	w.t.info.Width, w.t.info.Height = info.Width, info.Height
	w.t.info.SampleRate, w.t.info.Channels = info.SampleRate, info.Channels
	w.t.mu.Unlock()
	w.initID = id
	w.newInit = false
	return nil
}

// paramSets returns the SPS and PPS carried by an IDR access unit.
func paramSets(nalus [][]byte) (sps, pps []byte) {
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	return sps, pps
}

func (w *writer) add(au *media.AccessUnit) error {
	var data []byte
	key := au.Key
	if w.t.kind == Video {
		if w.waitKey && !au.Key {
			return nil
		}
		w.waitKey = false
		if au.Key {
			sps, pps := paramSets(au.Payload)
			if sps != nil && (!bytes.Equal(sps, w.sps) || (pps != nil && !bytes.Equal(pps, w.pps))) {
				w.sps = append([]byte(nil), sps...)
				if pps != nil {
					w.pps = append([]byte(nil), pps...)
				}
				w.newInit = true
			}
			if w.newInit && (w.sps == nil || w.pps == nil) {
				return nil // cannot start without parameter sets
			}
		}
		// ISO/IEC 14496-15 avc1: parameter sets live in the sample entry
		// (a new init when they change); drop them and AUDs from samples.
		nalus := make([][]byte, 0, len(au.Payload))
		for _, n := range au.Payload {
			if len(n) == 0 {
				continue
			}
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeAccessUnitDelimiter:
				continue
			}
			nalus = append(nalus, n)
		}
		if len(nalus) == 0 {
			return nil
		}
		if !w.captions && hasCaptions(nalus) {
			w.captions = true
		}
		b, err := h264.AVCC(nalus).Marshal()
		if err != nil {
			return err
		}
		data = b
	} else {
		if len(au.Payload) == 0 {
			return nil
		}
		data = au.Payload[0]
		key = true
	}
	d := au.DTS + w.offset
	if d < 0 {
		d = 0
	}
	dts := uint64(d)
	if w.hasLast && dts <= w.lastDTS {
		dts = w.lastDTS + 1
	}
	if c := w.p.clock; c != nil && w.t.kind == Video && w.p.leader == w && w.pending == nil && w.seg == nil {
		// clock.go: a late rendition starts at the stream's next boundary
		// (a few keyframes at most: timelines that do not match start
		// anyway).
		if !c.startAt(dts) && w.p.clockSkips < maxClockSkips {
			w.p.clockSkips++
			w.waitKey = true
			return nil
		}
		w.p.clockSkips = 0
	}
	pts := au.PTS + w.offset
	s := &sample{dts: dts, ptsOff: int32(pts - int64(dts)), key: key, data: data, wall: au.Time}
	if s.ptsOff < 0 {
		s.ptsOff = 0
	}
	w.hasLast, w.lastDTS = true, dts

	if w.p.leader == w {
		return w.leaderAdd(s)
	}
	return w.followerAdd(s)
}

// leaderAdd: the pending sample gets its duration from s; then decide
// whether s starts a new part or segment.
func (w *writer) leaderAdd(s *sample) error {
	cfg := w.p.cfg
	var hole *clockHole
	if pd := w.pending; pd != nil {
		dur := s.dts - pd.dts
		if hole = w.holeBefore(pd, s); hole != nil {
			// The last frame before the hole ends the segment on the
			// stream's next boundary instead of lasting the whole hole.
			dur = hole.end - pd.dts
		}
		w.lastDur = dur
		// LL-HLS §4.4.4.9: a part never exceeds PART-TARGET: when pd does
		// not fit (its duration came out longer than predicted), cut first.
		if len(w.part) > 0 && w.dur(w.partTk+dur) > cfg.PartTarget {
			if err := w.closePart(); err != nil {
				return err
			}
			w.p.leaderCut(w.dur(pd.dts), false, false)
		}
		if err := w.push(pd, dur); err != nil {
			return err
		}
	}
	// CMAF §7.3.2.2 / DASH: a segment starts at a random-access sample; an
	// SPS change or a new session forces one. The duration check allows
	// 10 % of jitter so that a 1 s keyframe interval gives 1 s segments.
	// The first segment of a session may end at any keyframe a part
	// target or more into it: the ingest asks for one early
	// (ingest.Config.StartKeyframe) so that players, which start from a
	// complete segment (hls.js), start sooner.
	var segDur time.Duration
	if w.seg != nil {
		segDur = w.dur(w.seg.Ticks + w.partTk)
	}
	long := cfg.SegmentDuration * 9 / 10
	if w.t.kind == Audio {
		// An audio leader (an audio-only stream) can cut at any frame:
		// the jitter allowance is for key frames, and with it every
		// segment ended a part early (0.9 s of 20 ms Opus frames, its
		// last part 0.1 s). Cut when the segment is within half a frame
		// of its target.
		long = cfg.SegmentDuration - w.dur(w.lastDur)/2
	}
	cut := s.key && w.seg != nil && (w.newInit || w.disc ||
		segDur >= long || (w.firstSeg && segDur >= cfg.PartTarget))
	if c := w.p.clock; c != nil && w.t.kind == Audio && w.seg != nil && c.active() {
		// clock.go: an audio-only rendition cuts at the video's boundaries
		// (its own rule only for an overlong segment).
		_, at := c.boundaryIn(w.dur(w.seg.BaseTime), w.dur(s.dts))
		cut = at || w.newInit || w.disc || w.dur(w.seg.Ticks+w.partTk) >= 2*cfg.SegmentDuration
	}
	if c := w.p.clock; c != nil && w.t.kind == Video && s.key && w.seg != nil {
		// clock.go: cut where the stream's renditions cut.
		// Forced: a new init or discontinuity, or a segment grown past
		// twice the target (timelines that do not match).
		cut = c.decide(s.dts, cut, w.newInit || w.disc || w.dur(w.seg.Ticks+w.partTk) >= 2*cfg.SegmentDuration, w.p.num.NextMSN)
		if wall := w.wallOf(s); cut && !wall.IsZero() {
			// Now, not when the segment opens with the next frame: the
			// AAC rendition may open its segment of this boundary first.
			c.recordWall(s.dts, wall)
		}
	}
	if cut {
		at := w.dur(s.dts)
		disc := w.newInit || w.disc
		if err := w.closePart(); err != nil {
			return err
		}
		w.closeSegment()
		if hole != nil {
			w.addGaps(hole, s.dts)
		}
		w.p.leaderCut(at, true, disc)
	} else if len(w.part) > 0 && cfg.endPart(w.dur(w.partTk), w.dur(w.lastDur)) {
		// §4.4.4.9: the part ends inside its window (config.go
		// partWindow), s predicted to last as long as the frame before.
		at := w.dur(s.dts)
		if err := w.closePart(); err != nil {
			return err
		}
		w.p.leaderCut(at, false, false)
	}
	w.pending = s
	return nil
}

// clockHole is where a video leader following the clock lost video (its
// encoder restarting) while the stream cut segments: the segment before
// it ends at end (the first boundary after its last frame), the
// boundaries in bounds become gap segments, and the segment after it
// opens with msn.
type clockHole struct {
	end    uint64
	bounds []clockBound
	msn    uint64
}

// holeBefore reports whether keyframe s, following pd, resumes a video
// leader at a boundary of the clock more than one MSN past the segment pd
// is in (nil: no hole).
func (w *writer) holeBefore(pd, s *sample) *clockHole {
	c := w.p.clock
	if c == nil || w.t.kind != Video || !s.key {
		return nil
	}
	m, ok := c.msnAt(s.dts)
	if !ok {
		return nil
	}
	var cur uint64
	switch {
	case w.seg != nil:
		cur = w.seg.MSN
	case len(w.t.segs) > 0:
		cur = w.p.num.NextMSN // pd opens a segment: it gets the next number
	default:
		return nil
	}
	if m <= cur+1 {
		return nil
	}
	h := &clockHole{end: s.dts, msn: m}
	for _, b := range c.boundsIn(pd.dts, s.dts) {
		if b.msn > cur && b.msn < m {
			h.bounds = append(h.bounds, b)
		}
	}
	if len(h.bounds) > 0 {
		h.end = h.bounds[0].dts
	}
	return h
}

// addGaps publishes the gap segments of hole h (the segment before it was
// just closed), ending at to, where the segment with MSN h.msn opens next:
// MSNs stay consecutive and MSN N starts at the same tfdt as in the
// stream's other renditions (clock.go).
func (w *writer) addGaps(h *clockHole, to uint64) {
	w.t.mu.Lock()
	n := len(w.t.segs)
	if n == 0 {
		w.t.mu.Unlock()
		return
	}
	prev := w.t.segs[n-1]
	next := prev.MSN + 1
	wall := prev.Wall.Add(prev.Duration)
	gap := func(msn, base, ticks uint64) {
		sg := &Segment{
			MSN: msn, InitID: prev.InitID, DiscontinuitySeq: prev.DiscontinuitySeq,
			BaseTime: base, Ticks: ticks, Duration: w.dur(ticks), Wall: wall,
			Complete: true, Gap: true,
		}
		wall = wall.Add(sg.Duration)
		w.t.segs = append(w.t.segs, sg)
	}
	for i, b := range h.bounds {
		end := to
		if i+1 < len(h.bounds) {
			end = h.bounds[i+1].dts
		}
		for ; next < b.msn; next++ {
			gap(next, b.dts, 0) // the clock skipped a number: keep them consecutive
		}
		gap(b.msn, b.dts, end-b.dts)
		next = b.msn + 1
	}
	for ; next < h.msn; next++ {
		gap(next, to, 0)
	}
	w.p.log.Info("origin: video hole, gap segments", "from_msn", prev.MSN+1, "to_msn", h.msn-1)
	w.t.nextMSN, w.t.nextPart = h.msn, 0
	w.trimLocked()
	w.statsLocked()
	w.t.notifyLocked()
	w.t.mu.Unlock()
	if h.msn > w.p.num.NextMSN {
		w.p.num.NextMSN = h.msn
	}
	w.p.gapsTo = h.msn
}

// followerAdd: queue s; cuts requested by the leader are applied by cutAt.
func (w *writer) followerAdd(s *sample) error {
	if pd := w.pending; pd != nil {
		dur := s.dts - pd.dts
		w.lastDur = dur
		// Parts stay within PART-TARGET also when the leader is late.
		if len(w.part) > 0 && w.dur(w.partTk+dur) > w.p.cfg.PartTarget {
			if err := w.closePart(); err != nil {
				return err
			}
		}
		if err := w.push(pd, dur); err != nil {
			return err
		}
	}
	w.pending = s
	return nil
}

// cutAt closes the follower's part (and segment) at output time at: the
// samples before it go into the part.
func (w *writer) cutAt(at time.Duration, seg bool) {
	limit := uint64(max(w.ticks(at), 0))
	if pd := w.pending; pd != nil && pd.dts < limit {
		dur := w.lastDur
		if dur == 0 {
			dur = limit - pd.dts
		}
		// A sample that would push the part past PART-TARGET stays pending
		// and starts the next part.
		if len(w.part) == 0 || w.dur(w.partTk+dur) <= w.p.cfg.PartTarget {
			w.pending = nil
			if err := w.push(pd, dur); err != nil {
				w.p.log.Warn("origin: audio part", "err", err)
			}
		}
	}
	if err := w.closePart(); err != nil {
		w.p.log.Warn("origin: audio part", "err", err)
	}
	if seg {
		w.closeSegment()
	}
}

// maxAudioStretch is the longest hole in a session's audio timestamps
// that push closes by starting the sample after it early.
const maxAudioStretch = 100 * time.Millisecond

// push appends a sample with its duration to the open part, opening a
// segment first if needed.
func (w *writer) push(s *sample, dur uint64) error {
	if dur == 0 {
		dur = 1
	}
	// A short hole in the audio's timestamps (a lost Opus packet, a
	// dropped AAC frame) where a part ended: the sample before it was
	// written with its predicted duration, so the next part began after
	// a hole, and players stall at a hole in their audio buffer (hls.js
	// sat at one until its gap controller jumped it). Within a session
	// and up to maxAudioStretch, the sample after the hole starts where
	// the last one ended and lasts the hole longer: one audio frame plays
	// at most that much early, and the timeline has no hole
	// (manifestrules: PROGRAM-DATE-TIME and EXTINF agree).
	if w.t.kind == Audio && w.pushed && !w.disc && !w.newInit && s.dts > w.pushedEnd &&
		s.dts-w.pushedEnd <= uint64(w.ticks(maxAudioStretch)) {
		dur += s.dts - w.pushedEnd
		s.dts = w.pushedEnd
	}
	w.pushed, w.pushedEnd = true, s.dts+dur
	if w.seg == nil {
		if w.newInit {
			if err := w.makeInit(media.Track{}); err != nil {
				return err
			}
			w.disc = true
		}
		var msn uint64
		if w.p.leader == w {
			if c := w.p.clock; c != nil {
				// clock.go: the stream's MSN for this instant; jump to it
				// only before the track's first segment (no gaps).
				var m uint64
				if w.t.kind == Video {
					m = c.open(s.dts, w.p.num.NextMSN)
				} else {
					m, _ = c.at(w.dur(s.dts))
				}
				if m > w.p.num.NextMSN && len(w.t.segs) == 0 {
					w.p.num.NextMSN = m
				}
			}
			msn = w.p.openSegment(w.dur(s.dts), w.wallOf(s))
		} else {
			msn = w.p.num.NextMSN - 1
			if w.p.leader == nil || w.p.leader.seg == nil {
				msn = w.p.num.NextMSN
			}
		}
		w.t.mu.Lock()
		// A follower can be late: never reuse an MSN.
		if n := len(w.t.segs); n > 0 && msn <= w.t.segs[n-1].MSN {
			msn = w.t.segs[n-1].MSN + 1
		}
		if n := len(w.t.segs); n > 0 && w.p.leader != w && msn <= w.p.gapsTo {
			// The leader skipped numbers (addGaps: its video had a hole
			// while this track's media went on): keep this track's MSNs
			// consecutive with empty gap segments where it resumes (its
			// previous segment covers the hole).
			prev := w.t.segs[n-1]
			for m := prev.MSN + 1; m < msn; m++ {
				w.t.segs = append(w.t.segs, &Segment{
					MSN: m, InitID: prev.InitID, DiscontinuitySeq: prev.DiscontinuitySeq,
					BaseTime: s.dts, Wall: prev.Wall.Add(prev.Duration), Complete: true, Gap: true,
				})
			}
		}
		wall := w.wallOf(s)
		if l := w.p.leader; l != nil && l != w && !l.clockWall.IsZero() {
			// One wall clock per rendition: a follower's segment (the
			// audio) takes its wall time from the leader's segment and the
			// media time between them, not from its own samples. Each
			// track's sample times follow its own RTCP sender reports or
			// arrival; the tracks' media times do not. hls.js places the
			// media after a discontinuity by PROGRAM-DATE-TIME, so audio
			// 20–40 ms off the video's clock left a hole in the buffer at
			// every resolution step of Chromium's ramp, and a stall until
			// its gap controller jumped it (node/e2e_test.go, player log).
			wall = l.wallAt(w.dur(s.dts))
		}
		sg := &Segment{
			MSN: msn, InitID: w.initID, BaseTime: s.dts, Wall: wall,
			Discontinuity: w.disc && len(w.t.segs) > 0,
		}
		if n := len(w.t.segs); n > 0 {
			sg.DiscontinuitySeq = w.t.segs[n-1].DiscontinuitySeq
			if w.disc {
				sg.DiscontinuitySeq++
			}
		} else {
			sg.DiscontinuitySeq = w.p.num.Disc
		}
		if c := w.p.clock; c != nil {
			var prev *Segment
			if n := len(w.t.segs); n > 0 {
				prev = w.t.segs[n-1]
			}
			w.alignDisc(c, sg, prev) // clock.go
			if w.p.leader == w && !sg.Wall.IsZero() {
				byBoundary := w.alignWall(c, sg) // clock.go
				// Only the track's first segment of the stream: one after a
				// restart (a discontinuity) may have been placed by players
				// already, and moving its date by the restart's length
				// left holes in hls.js's audio buffer
				// (TestFallbackPlayersKeepPlaying on a fresh clone).
				if byBoundary && w.provisional && len(w.t.segs) == 1 && prev != nil && !prev.Gap && prev.Complete &&
					!prev.Discontinuity && !sg.Discontinuity {
					// The segment before was dated before the stream's
					// clock reached it (the AAC's first, opened before any
					// boundary, took the first video segment's date or its
					// own samples: 27-56 ms off this one's date less its
					// duration, manifest rules on
					// TestTranscodedLadderEndToEnd, one run in two). Its
					// end is this boundary.
					prev.Wall = sg.Wall.Add(-prev.Duration)
				}
				w.provisional = !byBoundary && w.t.kind != Video
			}
		}
		w.disc = false
		w.firstSeg, w.newSess = w.newSess, false
		if sg.Wall.IsZero() {
			sg.Wall = time.Now()
		}
		if w.clockWall.IsZero() {
			w.clockWall, w.clockAt = sg.Wall, w.dur(sg.BaseTime)
		}
		w.seg = sg
		w.t.segs = append(w.t.segs, sg)
		w.t.nextMSN, w.t.nextPart = msn, 0
		w.t.notifyLocked()
		w.t.mu.Unlock()
		if w.p.leader == w {
			w.p.rebaseFollowers(sg)
		}
	}
	if len(w.part) == 0 {
		w.partInd = s.key
	}
	smp := &fmp4.Sample{
		Duration: uint32(dur), PTSOffset: s.ptsOff, IsNonSyncSample: !s.key, Payload: s.data,
	}
	w.part = append(w.part, smp)
	w.partTk += dur
	if len(w.chunk) == 0 {
		w.chunkDTS = s.dts
	}
	w.chunk = append(w.chunk, smp)
	w.chunkTk += dur
	if w.t.kind == Video || w.dur(w.chunkTk) >= audioChunk {
		return w.emitChunk()
	}
	return nil
}

// audioChunk is the shortest CMAF chunk of audio: a moof per 20 ms Opus
// frame would add about half of a 64 kbit/s stream again.
const audioChunk = 60 * time.Millisecond

// emitChunk writes the samples not yet sent as one CMAF chunk (moof+mdat)
// of the open part, which readers of the part and of its segment stream
// at once (LL-HLS §6.2.6: a hinted part's response streams as the part is
// written; LL-DASH chunked transfer): video frame by frame, one frame
// after it arrives (its duration is the next one's DTS). The complete
// part is these chunks, byte for byte.
func (w *writer) emitChunk() error {
	if len(w.chunk) == 0 || w.seg == nil {
		return nil
	}
	w.seq++
	data, err := marshalPart(w.seq, w.chunkDTS, w.chunk)
	if err != nil {
		return err
	}
	w.partData = append(w.partData, data...)
	w.chunk, w.chunkTk = nil, 0
	w.t.mu.Lock()
	w.t.open = openPart{msn: w.seg.MSN, idx: len(w.seg.Parts), data: w.partData[:len(w.partData):len(w.partData)], live: true}
	w.t.growLocked()
	w.t.mu.Unlock()
	return nil
}

// closePart publishes the open part.
func (w *writer) closePart() error {
	if len(w.part) == 0 || w.seg == nil {
		return nil
	}
	if err := w.emitChunk(); err != nil {
		return err
	}
	data := w.partData
	w.partData = nil
	w.t.mu.Lock()
	w.t.open = openPart{}
	pt := Part{
		Index: len(w.seg.Parts), Ticks: w.partTk, Duration: w.dur(w.partTk),
		Independent: w.partInd, Data: data, Samples: len(w.part),
		CRC: crc32.ChecksumIEEE(data), Done: time.Now(),
	}
	w.seg.Parts = append(w.seg.Parts, pt)
	w.seg.Ticks += w.partTk
	w.seg.Duration = w.dur(w.seg.Ticks)
	w.seg.Size += len(data)
	w.t.nextMSN, w.t.nextPart = w.seg.MSN, len(w.seg.Parts)
	w.t.notifyLocked()
	w.t.mu.Unlock()
	w.part = nil
	w.partTk = 0
	return nil
}

// closeSegment marks the open segment complete and trims the window.
func (w *writer) closeSegment() {
	if w.seg == nil {
		return
	}
	w.t.mu.Lock()
	w.seg.Complete = true
	w.seg.Size += len(stypBox)
	w.t.nextMSN, w.t.nextPart = w.seg.MSN+1, 0
	w.seg = nil
	w.trimLocked()
	w.statsLocked()
	w.t.notifyLocked()
	w.t.mu.Unlock()
}

// trimLocked drops the oldest segments beyond the window and the init
// segments nothing refers to any more.
func (w *writer) trimLocked() {
	t := w.t
	var total time.Duration
	for _, sg := range t.segs {
		total += sg.Duration
	}
	drop := 0
	for drop < len(t.segs)-1 && total-t.segs[drop].Duration >= w.p.cfg.Window {
		total -= t.segs[drop].Duration
		drop++
	}
	if drop > 0 {
		for i := range drop {
			t.segs[i] = nil
		}
		t.segs = append(t.segs[:0:0], t.segs[drop:]...)
	}
	used := map[uint64]bool{w.initID: true}
	for _, sg := range t.segs {
		used[sg.InitID] = true
	}
	for id := range t.inits {
		if !used[id] {
			delete(t.inits, id)
		}
	}
}

// statsLocked updates bandwidth, frame rate and the longest segment.
func (w *writer) statsLocked() {
	t := w.t
	var bytes, ticks uint64
	peak := 0
	var longest time.Duration
	for _, sg := range t.segs {
		if !sg.Complete || sg.Ticks == 0 || sg.Gap {
			continue
		}
		bytes += uint64(sg.Size)
		ticks += sg.Ticks
		if bw := int(float64(sg.Size*8) / sg.Duration.Seconds()); bw > peak {
			peak = bw
		}
		if sg.Duration > longest {
			longest = sg.Duration
		}
		if t.kind == Video {
			n := 0
			for _, p := range sg.Parts {
				n += p.Samples
			}
			t.info.FrameRate = float64(n) / sg.Duration.Seconds()
		}
	}
	if ticks > 0 {
		t.info.AvgBandwidth = int(float64(bytes*8) / w.dur(ticks).Seconds())
	}
	t.info.PeakBandwidth = peak
	t.info.MaxSegment = longest
	t.info.Captions = t.info.Captions || w.captions
}

// flushAll writes out everything pending (end of session).
func (w *writer) flushAll() {
	if pd := w.pending; pd != nil {
		w.pending = nil
		dur := w.lastDur
		if dur == 0 {
			dur = uint64(w.ticks(20 * time.Millisecond))
		}
		// LL-HLS §4.4.4.9: the last sample of a session does not push
		// its part past PART-TARGET either (a session's audio outlasts
		// its last video cut by a frame or more).
		if len(w.part) > 0 && w.dur(w.partTk+dur) > w.p.cfg.PartTarget {
			if err := w.closePart(); err != nil {
				w.p.log.Warn("origin: flush", "err", err)
			}
		}
		if err := w.push(pd, dur); err != nil {
			w.p.log.Warn("origin: flush", "err", err)
		}
	}
	if err := w.closePart(); err != nil {
		w.p.log.Warn("origin: flush", "err", err)
	}
	w.closeSegment()
}

// endTime is the output media time just after the last written sample.
func (w *writer) endTime() time.Duration {
	if !w.hasLast {
		return 0
	}
	return w.dur(w.lastDTS + w.lastDur)
}
