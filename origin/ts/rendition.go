package ts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

// tsOffset keeps PTS/DTS and the PCR (DTS − 100 ms) positive: sessions
// start at 0 and B-frames may give a DTS below the first PTS.
const tsOffset = 90000

// segment is one complete TS file.
type segment struct {
	seq  uint64
	dsn  uint64 // discontinuity sequence number of this segment
	disc bool   // EXT-X-DISCONTINUITY before it
	dur  time.Duration
	wall time.Time // wall clock of its first frame (zero if unknown)
	data []byte
	done time.Time // when it was completed (Last-Modified)
}

// rendition is the TS packaging of one hub key. The packaging goroutine
// owns the muxer fields; mu guards what HTTP handlers read.
type rendition struct {
	srv *Server
	key hub.Key

	// Guarded by srv.mu.
	runs int

	mu       sync.Mutex
	segs     []*segment // oldest first; the last Window of media is listed
	live     bool       // a publisher session is running
	ended    bool       // EXT-X-ENDLIST
	changed  chan struct{}
	started  bool // a session was seen: video and audio below are known
	video    bool // the session carries H.264
	codecs   string
	audio    string // RFC 6381 codec of the carried audio, "" for none
	width    int
	height   int
	fps      float64
	nextSeq  uint64
	lastDSN  uint64
	hadMedia bool // a segment exists (in the store or here): next session is a discontinuity

	// Owned by the packaging goroutine.
	loaded    bool
	w         *mpegts.Writer
	sink      *bytes.Buffer
	vt, at    *mpegts.Track
	vIdx      int
	aIdx      int
	aCodec    media.Codec
	aRate     int
	sps       []byte
	waitKey   bool
	needDisc  bool
	cur       *segment
	curStart  int64 // DTS (90 kHz) of the first frame of cur
	lastDTS   int64 // DTS of the last video (or audio) frame written
	lastDelta int64 // last frame interval, to close a segment at session end
}

func newRendition(s *Server, key hub.Key) *rendition {
	return &rendition{srv: s, key: key, changed: make(chan struct{}), vIdx: -1, aIdx: -1}
}

type persisted struct {
	NextSeq uint64 `json:"next_seq"`
	LastDSN uint64 `json:"last_dsn"`
}

func (r *rendition) stateKey() string {
	return "ts/" + strconv.FormatUint(r.key.Stream, 10) + "/" + r.key.Rendition
}

// load restores the numbering. A missing or unreadable record starts at 0.
// load reads the rendition's numbering once, before its first session:
// where a previous run stopped, or 0 for a rendition never numbered. A
// failed read (a store error, a damaged record) leaves it unread for the
// next session to try again: starting at 0 on a guess would reuse
// segment URLs a CDN may still hold with other media.
func (r *rendition) load() error {
	if r.srv.state == nil {
		r.loaded = true
		return nil
	}
	b, err := r.srv.state.GetState(ConsumerName, r.stateKey())
	if err != nil {
		return fmt.Errorf("%w: %s/%s: %v", ErrStateUnavailable, ConsumerName, r.stateKey(), err)
	}
	var p persisted
	if len(b) > 0 {
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("%w: %s/%s is damaged: %v", ErrStateUnavailable, ConsumerName, r.stateKey(), err)
		}
	}
	r.loaded = true
	if len(b) == 0 {
		return nil
	}
	r.mu.Lock()
	r.nextSeq, r.lastDSN = p.NextSeq, p.LastDSN
	r.hadMedia = p.NextSeq > 0
	r.mu.Unlock()
	return nil
}

func (r *rendition) save(p persisted) {
	if r.srv.state == nil {
		return
	}
	b, _ := json.Marshal(p)
	if err := r.srv.state.PutState(ConsumerName, r.stateKey(), b); err != nil {
		r.srv.log.Warn("ts: cannot persist numbering", "stream", r.key.Stream, "rendition", r.key.Rendition, "err", err)
	}
}

// notifyLocked wakes readers waiting for a change of r, and those
// waiting for a change of any rendition (master playlists).
func (r *rendition) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
	r.srv.notify()
}

// snapshot describes r as a multivariant entry, with what playable needs
// to decide whether it may be listed.
func (r *rendition) snapshot() variant {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := variant{name: r.key.Rendition, codecs: joinCodecs(r.codecs, r.audio), carried: r.audio,
		width: r.width, height: r.height, fps: r.fps, hasSegment: len(r.segs) > 0,
		started: r.started, video: r.video, live: r.live || !r.started}
	v.peak, v.avg = bandwidth(r.listedLocked())
	return v
}

// run reads the subscription until the rendition has lingered after its
// publisher left, or the server closes.
func (s *Server) run(r *rendition, sub *hub.Subscription) {
	defer func() {
		sub.Close()
		s.mu.Lock()
		r.runs--
		s.mu.Unlock()
	}()
	log := s.log.With("stream", r.key.Stream, "rendition", r.key.Rendition)
	for {
		ctx := s.ctx
		var cancel context.CancelFunc = func() {}
		r.mu.Lock()
		live, ended := r.live, r.ended
		r.mu.Unlock()
		switch {
		case !live && !ended:
			ctx, cancel = context.WithTimeout(s.ctx, s.cfg.Grace)
		case ended:
			ctx, cancel = context.WithTimeout(s.ctx, s.cfg.Linger)
		}
		ev, err := sub.Next(ctx)
		cancel()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, hub.ErrClosed) {
				return
			}
			if !ended {
				log.Info("ts: publisher gone for good; ending playlists")
				r.end()
				continue
			}
			if s.tryRemove(r) {
				return
			}
			continue
		}
		switch ev.Kind {
		case hub.SessionStart:
			if !r.loaded {
				if err := r.load(); err != nil {
					log.Warn("ts: session not packaged", "err", err)
					continue
				}
			}
			if err := r.startSession(ev.Session); err != nil {
				log.Warn("ts: session not packaged", "err", err)
			}
		case hub.SessionEnd:
			r.endSession()
		case hub.AccessUnit:
			if err := r.writeAU(ev.Track, ev.AU, ev.Missed); err != nil {
				log.Warn("ts: access unit dropped", "err", err)
				r.waitKey = true
			}
		}
	}
}

// tryRemove takes r out of the index unless another subscription already
// reuses it. It reports whether r is gone.
func (s *Server) tryRemove(r *rendition) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.runs > 1 {
		return true
	}
	st, ok := s.streams[r.key.Stream]
	if ok && st.renditions[r.key.Rendition] == r {
		delete(st.renditions, r.key.Rendition)
		if len(st.renditions) == 0 {
			delete(s.streams, r.key.Stream)
		}
	}
	return true
}

func (r *rendition) startSession(sess *hub.Session) error {
	if r.cur != nil {
		r.endSession()
	}
	r.vIdx, r.aIdx, r.vt, r.at, r.w, r.sps = -1, -1, nil, nil, nil, nil
	var tracks []*mpegts.Track
	for i, t := range sess.Tracks {
		switch t.Codec {
		case media.CodecH264:
			if r.vIdx < 0 {
				r.vIdx = i
				r.vt = &mpegts.Track{Codec: &mpegts.CodecH264{}}
			}
		case media.CodecAAC:
			if r.aIdx < 0 || r.aCodec != media.CodecAAC {
				r.aIdx, r.aCodec, r.aRate = i, media.CodecAAC, t.SampleRate
				ch := max(t.Channels, 1)
				rate := t.SampleRate
				if rate == 0 {
					rate = 48000
				}
				cc := uint8(min(ch, 6))
				if ch == 8 {
					cc = 7 // ISO 14496-3 Table 1.19
				}
				r.at = &mpegts.Track{Codec: &mpegts.CodecMPEG4Audio{Config: mpeg4audio.Config{
					Type: mpeg4audio.ObjectTypeAACLC, SampleRate: rate, ChannelConfig: cc, ChannelCount: ch,
				}}}
			}
		case media.CodecOpus:
			if r.srv.cfg.Opus && r.aIdx < 0 {
				r.aIdx, r.aCodec, r.aRate = i, media.CodecOpus, 48000
				r.at = &mpegts.Track{Codec: &mpegts.CodecOpus{ChannelCount: max(t.Channels, 1)}}
			}
		}
	}
	if r.vt != nil {
		tracks = append(tracks, r.vt)
	}
	if r.at != nil {
		tracks = append(tracks, r.at)
	}
	r.mu.Lock()
	r.live, r.ended = true, false
	r.started, r.video = true, r.vt != nil
	r.needDisc = r.hadMedia
	switch {
	case r.at == nil:
		r.audio = ""
	case r.aCodec == media.CodecAAC:
		r.audio = "mp4a.40.2"
	default:
		r.audio = "opus"
	}
	r.notifyLocked() // what it carries is known now (master playlists wait for that)
	r.mu.Unlock()
	if len(tracks) == 0 {
		return ErrNoVideo
	}
	r.sink = &bytes.Buffer{}
	r.w = &mpegts.Writer{W: writerFunc(func(p []byte) (int, error) { return r.sink.Write(p) }), Tracks: tracks}
	if err := r.w.Initialize(); err != nil {
		r.w = nil
		return fmt.Errorf("ts: muxer: %w", err)
	}
	r.waitKey = true
	if r.vt != nil {
		if v := sess.Tracks[r.vIdx]; len(v.SPS) > 0 {
			r.setVideoInfo(v.SPS)
		}
	}
	return nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (r *rendition) endSession() {
	if r.cur != nil {
		r.finish(r.lastDTS + max(r.lastDelta, 1))
	}
	r.w = nil
	r.mu.Lock()
	r.live = false
	r.notifyLocked()
	r.mu.Unlock()
}

func (r *rendition) end() {
	r.mu.Lock()
	r.ended = true
	r.notifyLocked()
	r.mu.Unlock()
}

// to90k converts a timestamp of codec c to the 90 kHz MPEG-TS clock.
func to90k(ts int64, c media.Codec) int64 {
	rate := int64(c.ClockRate())
	if rate == 90000 {
		return ts
	}
	return ts * 90000 / rate
}

func (r *rendition) writeAU(track int, au *media.AccessUnit, missed uint64) error {
	if r.w == nil {
		return nil
	}
	switch track {
	case r.vIdx:
		if missed > 0 {
			r.waitKey = true
		}
		if r.waitKey && !au.Key {
			return nil
		}
		dts := to90k(au.DTS, au.Codec)
		if au.Key {
			sps := findNALU(au.Payload, h264.NALUTypeSPS)
			spsChanged := sps != nil && r.sps != nil && !bytes.Equal(sps, r.sps)
			if sps != nil && !bytes.Equal(sps, r.sps) {
				r.setVideoInfo(sps)
			}
			switch {
			case r.cur == nil:
				r.begin(dts, au.Time, r.needDisc)
				r.needDisc = false
			case spsChanged:
				// A new SPS (Chromium's resolution ramp): new segment,
				// flagged so that players reset their decoder.
				r.finish(dts)
				r.begin(dts, au.Time, true)
			case time.Duration(dts-r.curStart)*time.Second/90000 >= r.srv.cfg.SegmentDuration:
				r.finish(dts)
				r.begin(dts, au.Time, false)
			}
			r.waitKey = false
		}
		if r.cur == nil {
			return nil
		}
		if dts > r.lastDTS && r.lastDTS != 0 {
			r.lastDelta = dts - r.lastDTS
		}
		r.lastDTS = dts
		return r.w.WriteH264(r.vt, to90k(au.PTS, au.Codec)+tsOffset, dts+tsOffset, au.Payload)
	case r.aIdx:
		if len(au.Payload) == 0 {
			return nil
		}
		pts := to90k(au.PTS, au.Codec)
		if r.vt == nil {
			// Audio-only rendition: audio drives the segments.
			switch {
			case r.cur == nil:
				r.begin(pts, au.Time, r.needDisc)
				r.needDisc = false
			case time.Duration(pts-r.curStart)*time.Second/90000 >= r.srv.cfg.SegmentDuration:
				r.finish(pts)
				r.begin(pts, au.Time, false)
			}
			if pts > r.lastDTS && r.lastDTS != 0 {
				r.lastDelta = pts - r.lastDTS
			}
			r.lastDTS = pts
		} else if r.cur == nil {
			return nil // no segment before the first IDR
		}
		if r.aCodec == media.CodecAAC {
			return r.w.WriteMPEG4Audio(r.at, pts+tsOffset, au.Payload)
		}
		return r.w.WriteOpus(r.at, pts+tsOffset, au.Payload)
	}
	return nil
}

// begin starts a segment whose first frame has DTS dts (90 kHz).
func (r *rendition) begin(dts int64, wall time.Time, disc bool) {
	r.mu.Lock()
	seq := r.nextSeq
	dsn := r.lastDSN
	if disc && r.hadMedia {
		dsn++
	}
	r.mu.Unlock()
	r.cur = &segment{seq: seq, dsn: dsn, disc: disc && r.hadMedia, wall: wall}
	r.curStart = dts
	r.sink.Reset()
	if r.sink.Cap() > 4<<20 {
		r.sink = &bytes.Buffer{}
	}
}

// finish completes cur; end is the DTS (90 kHz) where the next segment starts.
func (r *rendition) finish(end int64) {
	c := r.cur
	r.cur = nil
	c.dur = time.Duration(end-r.curStart) * time.Second / 90000
	c.data = bytes.Clone(r.sink.Bytes())
	c.done = time.Now()
	if c.dur <= 0 || len(c.data) == 0 {
		return
	}
	r.mu.Lock()
	r.segs = append(r.segs, c)
	r.nextSeq = c.seq + 1
	r.lastDSN = c.dsn
	r.hadMedia = true
	r.trimLocked()
	p := persisted{NextSeq: r.nextSeq, LastDSN: r.lastDSN}
	r.notifyLocked()
	r.mu.Unlock()
	r.srv.m.segments.Inc()
	r.srv.m.segmentBytes.Add(float64(len(c.data)))
	r.save(p)
}

// trimLocked keeps Window of media listed plus two segments that have just
// left the playlist (clients that loaded the previous playlist may still
// fetch them).
func (r *rendition) trimLocked() {
	var total time.Duration
	keep := 0
	for i := len(r.segs) - 1; i >= 0; i-- {
		total += r.segs[i].dur
		keep++
		if total >= r.srv.cfg.Window {
			break
		}
	}
	keep += 2
	if len(r.segs) > keep {
		n := len(r.segs) - keep
		clear(r.segs[:n])
		r.segs = append(r.segs[:0:0], r.segs[n:]...)
	}
}

// listedLocked returns the segments the playlist lists (the newest Window).
func (r *rendition) listedLocked() []*segment {
	var total time.Duration
	for i := len(r.segs) - 1; i >= 0; i-- {
		total += r.segs[i].dur
		if total >= r.srv.cfg.Window {
			return r.segs[i:]
		}
	}
	return r.segs
}

func (r *rendition) setVideoInfo(sps []byte) {
	r.sps = bytes.Clone(sps)
	var s h264.SPS
	codecs := "avc1.42e01f"
	if len(sps) >= 4 {
		codecs = fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3])
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codecs = codecs
	if err := s.Unmarshal(sps); err == nil {
		r.width, r.height = s.Width(), s.Height()
		if f := s.FPS(); f > 0 {
			r.fps = f
		}
	}
}

func findNALU(payload [][]byte, t h264.NALUType) []byte {
	for _, n := range payload {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == t {
			return n
		}
	}
	return nil
}
