package rtpau

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/edgenode/edgenode/internal/media"
)

// Limits on one H.264 access unit; larger ones are dropped with ErrTooLarge.
const (
	// MaxAccessUnitSize is the largest access unit in bytes (8 MiB, as
	// mediacommon: a 50 Mbit/s 2160p60 stream stays below it).
	MaxAccessUnitSize = h264.MaxAccessUnitSize
	// MaxNALUnits is the most NAL units one access unit may have. Encoders
	// that cap slices at the MTU (x264 slice-max-size=1200) put about 100
	// slices in a 720p IDR.
	MaxNALUnits = 1024
)

// maxScratch is the largest FU-A reassembly buffer kept between units.
const maxScratch = 1 << 20

// NAL unit types (RFC 6184 §5.2 table 3; H.264 table 7-1).
const (
	nalNonIDR = 1
	nalIDR    = 5
	nalSEI    = 6
	nalSPS    = 7
	nalPPS    = 8
	nalAUD    = 9
	nalFiller = 12
	nalSTAPA  = 24
	nalSTAPB  = 25
	nalMTAP16 = 26
	nalMTAP24 = 27
	nalFUA    = 28
	nalFUB    = 29
)

// H264 depacketizes one H.264 RTP stream (RFC 6184, packetization-mode=1)
// into access units. Feed it packets in sequence order (through Reorder).
//
//   - Single NAL unit packets, STAP-A and FU-A are accepted; STAP-B, MTAP
//     and FU-B are rejected with ErrUnsupportedPacketization (§6.3: not
//     allowed in non-interleaved mode).
//   - An access unit ends at the marker bit (§5.1) or, when the marker is
//     missing, at the first packet with another timestamp. All slices of a
//     frame (multi-slice) share the timestamp and form one access unit.
//   - SPS and PPS are remembered wherever they arrive (own packets, STAP-A,
//     in front of the IDR, an access unit of their own) and put first in
//     every IDR access unit. Access unit delimiters and filler data are
//     dropped; SEI is kept. Access units without slices are not emitted.
//   - A gap in sequence numbers, or a malformed or oversized packet, drops
//     the access unit in progress, makes Push return ErrNeedKeyframe once
//     (joined to the cause), and nothing is emitted until the next IDR
//     (NeedKeyframe is true meanwhile). The stream also starts in
//     that state: the first access unit emitted is an IDR.
//   - PTS is the RTP timestamp through Clock (90 kHz). DTS equals PTS for
//     streams without reordering; with B-frames it is derived from the
//     picture order count (mediacommon's DTSExtractor). DTS never goes
//     backwards.
//
// Push must be called from one goroutine; Stats and NeedKeyframe may be
// called concurrently.
type H264 struct {
	clock *Clock

	started bool
	lastSeq uint16

	// the access unit in progress
	inAU    bool
	auTS    uint32
	auTicks int64
	nalus   [][]byte
	auSize  int
	broken  bool
	// gapPending: packets were lost since the last one; the access unit
	// of the next non-padding packet is damaged.
	gapPending bool
	fu         []byte
	fuOn       bool

	sps, pps []byte
	// copies for Track, guarded by stats.mu
	tSPS, tPPS []byte
	width      int
	height     int

	waiting  atomic.Bool
	dtsx     h264.DTSExtractor
	prevDTS  int64
	havePrev bool
	maxPTS   int64
	lastIDR  int64
	haveIDR  bool

	stats statsBox
}

// NewH264 returns a depacketizer whose timestamps come from clock (a 90 kHz
// Clock of this track).
func NewH264(clock *Clock) *H264 {
	if clock == nil {
		clock = NewClock(90000, nil)
	}
	h := &H264{clock: clock}
	h.waiting.Store(true)
	h.dtsx.Initialize()
	h.stats.rate = int64(clock.Rate())
	return h
}

// NeedKeyframe reports whether the depacketizer is waiting for an IDR (at
// the start and after a loss). The session sends a PLI while it is true.
func (h *H264) NeedKeyframe() bool { return h.waiting.Load() }

// Stats returns the track's counters; safe to call concurrently with Push.
func (h *H264) Stats() Stats {
	s := h.stats.get()
	s.NeedKeyframe = h.waiting.Load()
	return s
}

// Track describes the video as far as known: codec, the remembered SPS and
// PPS and the size they give (empty until they arrive). Safe to call
// concurrently with Push.
func (h *H264) Track() media.Track {
	h.stats.mu.Lock()
	defer h.stats.mu.Unlock()
	return media.Track{
		Codec: media.CodecH264,
		SPS:   bytes.Clone(h.tSPS), PPS: bytes.Clone(h.tPPS),
		Width: h.stats.s.Width, Height: h.stats.s.Height,
	}
}

// Push takes the next packet in sequence order and returns the access units
// it completed. An error describes a packet or access unit that was
// dropped; processing continues with the next packet. The access units do
// not share memory with p.
func (h *H264) Push(p *rtp.Packet) ([]*media.AccessUnit, error) {
	if p == nil {
		return nil, nil
	}
	h.stats.update(func(s *Stats) { s.Packets++ })
	out, err := h.push(p)
	if err != nil && !errors.Is(err, ErrNeedKeyframe) && !errors.Is(err, ErrNoParameterSets) {
		// A dropped access unit may have been a reference for the ones
		// that follow: decode again from the next IDR.
		if !h.waiting.Swap(true) {
			err = fmt.Errorf("%w; %w", err, ErrNeedKeyframe)
		}
	}
	if err != nil {
		h.stats.update(func(s *Stats) { s.Errors++ })
	}
	return out, err
}

func (h *H264) push(p *rtp.Packet) ([]*media.AccessUnit, error) {
	var out []*media.AccessUnit
	var lossErr error
	if h.started && p.SequenceNumber != h.lastSeq+1 {
		gap := p.SequenceNumber - h.lastSeq - 1
		h.stats.update(func(s *Stats) { s.Lost += countLost(gap) })
		// The missing packets may be the tail of the access unit in
		// progress or the head of the one this packet belongs to: both are
		// damaged.
		if h.inAU {
			h.broken = true
		}
		h.fu, h.fuOn = h.fu[:0], false
		h.gapPending = true
		if !h.waiting.Swap(true) {
			lossErr = fmt.Errorf("%w: %d packets missing before sequence number %d",
				ErrNeedKeyframe, gap, p.SequenceNumber)
		}
	}
	h.started = true
	h.lastSeq = p.SequenceNumber
	if len(p.Payload) == 0 {
		// Padding-only packet (RFC 3550 §5.1 P bit): nothing for the decoder.
		h.stats.update(func(s *Stats) { s.Padding++ })
		return nil, lossErr
	}
	ticks := h.clock.Ticks(p.Timestamp)
	if h.inAU && p.Timestamp != h.auTS {
		// The marker of the previous access unit was lost or never sent.
		// An error here is about that unit; this packet still starts the
		// next one.
		au, err := h.finishAU()
		lossErr = joinErr(lossErr, err)
		if au != nil {
			out = append(out, au)
		}
	}
	if !h.inAU {
		h.inAU, h.auTS, h.auTicks = true, p.Timestamp, ticks
	}
	if h.gapPending {
		h.gapPending, h.broken = false, true
	}
	if h.broken {
		// The access unit will be dropped: skip the rest of it quietly
		// (fragments whose start was lost are expected here).
		if p.Marker {
			h.dropAU()
		}
		return out, lossErr
	}
	if err := h.depacketize(p.Payload); err != nil {
		h.broken = true
		h.fu, h.fuOn = h.fu[:0], false
		if p.Marker {
			h.dropAU()
		}
		return out, joinErr(lossErr, err)
	}
	if p.Marker {
		au, err := h.finishAU()
		if err != nil {
			return out, joinErr(lossErr, err)
		}
		if au != nil {
			out = append(out, au)
		}
	}
	return out, lossErr
}

// countLost is how many packets a gap of n sequence numbers counts as
// lost: none for a jump that Reorder treats as a sender restart.
func countLost(n uint16) uint64 {
	if n >= ResyncGap {
		return 0
	}
	return uint64(n)
}

func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return fmt.Errorf("%w; %w", a, b)
}

// depacketize adds the NAL units of one RTP payload to the access unit in
// progress.
func (h *H264) depacketize(b []byte) error {
	typ := b[0] & 0x1f
	if b[0]&0x80 != 0 {
		// RFC 6184 §5.3: F=1 means the NAL unit may contain errors.
		return fmt.Errorf("%w: forbidden_zero_bit set", ErrMalformed)
	}
	if h.fuOn && typ != nalFUA {
		return fmt.Errorf("%w: FU-A not finished before a %d packet", ErrMalformed, typ)
	}
	switch {
	case typ >= 1 && typ <= 23:
		// §5.6 single NAL unit packet.
		return h.addNALU(b)
	case typ == nalSTAPA:
		// §5.7.1 STAP-A: [16-bit size][NAL unit]...
		rest := b[1:]
		if len(rest) == 0 {
			return fmt.Errorf("%w: empty STAP-A", ErrMalformed)
		}
		for len(rest) > 0 {
			if len(rest) < 2 {
				return fmt.Errorf("%w: STAP-A truncated in a size field", ErrMalformed)
			}
			n := int(binary.BigEndian.Uint16(rest))
			rest = rest[2:]
			if n == 0 {
				return fmt.Errorf("%w: STAP-A with a zero-size NAL unit", ErrMalformed)
			}
			if n > len(rest) {
				return fmt.Errorf("%w: STAP-A NAL unit of %d bytes with %d left", ErrMalformed, n, len(rest))
			}
			nal := rest[:n]
			rest = rest[n:]
			if t := nal[0] & 0x1f; t == 0 || t >= nalSTAPA {
				return fmt.Errorf("%w: STAP-A holds a NAL unit of type %d", ErrMalformed, t)
			}
			if err := h.addNALU(nal); err != nil {
				return err
			}
		}
		return nil
	case typ == nalFUA:
		return h.fuA(b)
	case typ == nalSTAPB || typ == nalMTAP16 || typ == nalMTAP24 || typ == nalFUB:
		return fmt.Errorf("%w: type %d", ErrUnsupportedPacketization, typ)
	default:
		return fmt.Errorf("%w: reserved NAL unit type %d", ErrMalformed, typ)
	}
}

// fuA handles one fragmentation unit (RFC 6184 §5.8).
func (h *H264) fuA(b []byte) error {
	if len(b) < 3 {
		return fmt.Errorf("%w: FU-A of %d bytes", ErrMalformed, len(b))
	}
	ind, hdr := b[0], b[1]
	start, end := hdr&0x80 != 0, hdr&0x40 != 0
	if start && end {
		// §5.8: "the Start bit and End bit MUST NOT both be set".
		return fmt.Errorf("%w: FU-A with both start and end bits", ErrMalformed)
	}
	if t := hdr & 0x1f; t == 0 || t >= nalSTAPA {
		return fmt.Errorf("%w: FU-A carries a NAL unit of type %d", ErrMalformed, t)
	}
	if start {
		if h.fuOn {
			return fmt.Errorf("%w: FU-A start before the previous one ended", ErrMalformed)
		}
		h.fuOn = true
		h.fu = append(h.fu[:0], ind&0xe0|hdr&0x1f)
	} else if !h.fuOn {
		return fmt.Errorf("%w: FU-A continuation without a start", ErrMalformed)
	} else if hdr&0x1f != h.fu[0]&0x1f {
		// §5.8: all fragments carry the type of the fragmented NAL unit.
		return fmt.Errorf("%w: FU-A fragment of type %d inside a type %d NAL unit", ErrMalformed, hdr&0x1f, h.fu[0]&0x1f)
	}
	if len(h.fu)+len(b)-2+h.auSize > MaxAccessUnitSize {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxAccessUnitSize)
	}
	h.fu = append(h.fu, b[2:]...)
	if end {
		// h.fu is scratch reused across units: hand out an exact copy.
		nal := bytes.Clone(h.fu)
		h.fu, h.fuOn = h.fu[:0], false
		if cap(h.fu) > maxScratch {
			h.fu = nil // do not pin a huge buffer for the session's life
		}
		return h.addOwned(nal)
	}
	return nil
}

func (h *H264) addNALU(nal []byte) error {
	return h.addOwned(bytes.Clone(nal))
}

// addOwned appends a NAL unit that no one else references.
func (h *H264) addOwned(nal []byte) error {
	if len(h.nalus) >= MaxNALUnits {
		return fmt.Errorf("%w: more than %d NAL units", ErrTooLarge, MaxNALUnits)
	}
	if h.auSize+len(nal) > MaxAccessUnitSize {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxAccessUnitSize)
	}
	h.nalus = append(h.nalus, nal)
	h.auSize += len(nal)
	return nil
}

func (h *H264) resetAU() {
	h.inAU, h.broken = false, false
	h.nalus, h.auSize = nil, 0
	h.fu, h.fuOn = h.fu[:0], false
}

func (h *H264) dropAU() {
	h.stats.update(func(s *Stats) { s.Dropped++ })
	h.resetAU()
}

// finishAU closes the access unit in progress. It returns nil, nil when
// there is nothing to emit (no slices, or waiting for a keyframe).
func (h *H264) finishAU() (*media.AccessUnit, error) {
	if h.broken || h.fuOn {
		incomplete := h.fuOn && !h.broken
		h.dropAU()
		if incomplete {
			return nil, fmt.Errorf("%w: access unit ended inside an FU-A", ErrMalformed)
		}
		return nil, nil
	}
	nalus, pts := h.nalus, h.auTicks
	h.resetAU()

	idr, vcl := false, false
	kept := nalus[:0]
	for _, n := range nalus {
		switch n[0] & 0x1f {
		case nalSPS:
			h.setSPS(n)
		case nalPPS:
			if !bytes.Equal(n, h.pps) {
				h.pps = n
				h.stats.update(func(*Stats) { h.tPPS = n })
			}
		case nalAUD, nalFiller:
			continue
		case nalIDR:
			idr, vcl = true, true
		case nalNonIDR, 2, 3, 4:
			vcl = true
		}
		kept = append(kept, n)
	}
	if !vcl {
		// Parameter sets or SEI alone: remembered, not emitted.
		return nil, nil
	}
	var payload [][]byte
	if idr {
		if h.sps == nil || h.pps == nil {
			h.stats.update(func(s *Stats) { s.Dropped++ })
			h.waiting.Store(true)
			return nil, ErrNoParameterSets
		}
		payload = make([][]byte, 0, len(kept)+2)
		payload = append(payload, h.sps, h.pps)
		for _, n := range kept {
			if t := n[0] & 0x1f; t != nalSPS && t != nalPPS {
				payload = append(payload, n)
			}
		}
		h.waiting.Store(false)
	} else {
		if h.waiting.Load() {
			h.stats.update(func(s *Stats) { s.Dropped++ })
			return nil, nil
		}
		payload = kept
	}

	dts, err := h.dtsx.Extract(payload, pts)
	if err != nil || (h.havePrev && dts <= h.prevDTS) || dts > pts {
		// Fall back to PTS, kept strictly increasing.
		dts = pts
		if h.havePrev && dts <= h.prevDTS {
			dts = h.prevDTS + 1
		}
	}
	h.prevDTS, h.havePrev = dts, true

	bframe := h.stats.s.Frames > 0 && pts < h.maxPTS
	if pts > h.maxPTS || h.stats.s.Frames == 0 {
		h.maxPTS = pts
	}
	var interval time.Duration
	if idr {
		if h.haveIDR {
			interval = h.clock.Duration(pts - h.lastIDR)
		}
		h.lastIDR, h.haveIDR = pts, true
	}
	au := &media.AccessUnit{
		Codec:   media.CodecH264,
		PTS:     pts,
		DTS:     dts,
		Time:    h.clock.Time(pts),
		Key:     idr,
		Payload: payload,
	}
	h.stats.update(func(s *Stats) {
		if bframe {
			s.BFrames++
		}
		if interval > 0 {
			s.KeyframeInterval = interval
		}
	})
	h.stats.frame(pts, au.Size(), idr)
	return au, nil
}

// setSPS remembers an SPS and tracks the coded size it describes.
func (h *H264) setSPS(n []byte) {
	if bytes.Equal(n, h.sps) {
		return
	}
	h.sps = n
	h.stats.update(func(*Stats) { h.tSPS = n })
	var sps h264.SPS
	if err := sps.Unmarshal(n); err != nil {
		return
	}
	w, hh := sps.Width(), sps.Height()
	if w == h.width && hh == h.height {
		return
	}
	changed := h.width != 0
	h.width, h.height = w, hh
	h.stats.update(func(s *Stats) {
		s.Width, s.Height = w, hh
		if changed {
			s.ResolutionChanges++
		}
	})
}
