package rtpau

import (
	"bytes"
	"fmt"

	"github.com/pion/rtp"

	"github.com/edgenode/edgenode/internal/media"
)

// Opus depacketizes an Opus RTP stream (RFC 7587): one access unit per
// packet, PTS = DTS = the RTP timestamp through Clock (48 kHz, §4.1), Key
// always true. Padding-only packets are dropped; packets whose TOC is
// invalid (OpusDuration) are dropped with ErrMalformed; a packet whose timestamp
// does not advance is dropped with ErrTimestamp so that DTS never goes
// backwards. Push must be called from one goroutine; Stats may be called
// concurrently.
type Opus struct {
	clock   *Clock
	started bool
	lastSeq uint16
	have    bool
	last    int64
	stats   statsBox
}

// NewOpus returns a depacketizer whose timestamps come from clock (a 48 kHz
// Clock of this track).
func NewOpus(clock *Clock) *Opus {
	if clock == nil {
		clock = NewClock(48000, nil)
	}
	o := &Opus{clock: clock}
	o.stats.rate = int64(clock.Rate())
	return o
}

// Track describes the audio: Opus, 48 kHz, 2 channels (RFC 7587 §7: the
// rtpmap always says opus/48000/2).
func (o *Opus) Track() media.Track {
	return media.Track{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}
}

// Stats returns the track's counters; safe to call concurrently with Push.
func (o *Opus) Stats() Stats { return o.stats.get() }

// Push takes the next packet in sequence order and returns its access unit.
// Lost packets are counted; Opus needs no keyframe to recover.
func (o *Opus) Push(p *rtp.Packet) ([]*media.AccessUnit, error) {
	if p == nil {
		return nil, nil
	}
	o.stats.update(func(s *Stats) {
		s.Packets++
		if o.started && p.SequenceNumber != o.lastSeq+1 {
			s.Lost += countLost(p.SequenceNumber - o.lastSeq - 1)
		}
	})
	o.started, o.lastSeq = true, p.SequenceNumber
	if len(p.Payload) == 0 {
		o.stats.update(func(s *Stats) { s.Padding++ })
		return nil, nil
	}
	if _, err := OpusDuration(p.Payload); err != nil {
		o.stats.update(func(s *Stats) { s.Dropped++; s.Errors++ })
		return nil, err
	}
	ticks := o.clock.Ticks(p.Timestamp)
	if o.have && ticks <= o.last {
		o.stats.update(func(s *Stats) { s.Dropped++; s.Errors++ })
		return nil, fmt.Errorf("%w: %d after %d", ErrTimestamp, ticks, o.last)
	}
	o.have, o.last = true, ticks
	au := &media.AccessUnit{
		Codec:   media.CodecOpus,
		PTS:     ticks,
		DTS:     ticks,
		Time:    o.clock.Time(ticks),
		Key:     true,
		Payload: [][]byte{bytes.Clone(p.Payload)},
	}
	o.stats.frame(ticks, len(p.Payload), false)
	return []*media.AccessUnit{au}, nil
}

// opusFrameSamples is the frame size at 48 kHz of each TOC configuration
// (RFC 6716 §3.1 table 2).
var opusFrameSamples = [32]int{
	480, 960, 1920, 2880, // SILK NB 10, 20, 40, 60 ms
	480, 960, 1920, 2880, // SILK MB
	480, 960, 1920, 2880, // SILK WB
	480, 960, // Hybrid SWB 10, 20 ms
	480, 960, // Hybrid FB
	120, 240, 480, 960, // CELT NB 2.5, 5, 10, 20 ms
	120, 240, 480, 960, // CELT WB
	120, 240, 480, 960, // CELT SWB
	120, 240, 480, 960, // CELT FB
}

// OpusDuration returns the duration in 48 kHz samples of one Opus packet
// from its TOC byte and frame count (RFC 6716 §3.1, §3.2.5: at most
// 120 ms).
func OpusDuration(pkt []byte) (int, error) {
	if len(pkt) == 0 {
		return 0, fmt.Errorf("%w: empty Opus packet", ErrMalformed)
	}
	per := opusFrameSamples[pkt[0]>>3]
	var frames int
	switch pkt[0] & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	default:
		if len(pkt) < 2 {
			return 0, fmt.Errorf("%w: Opus code 3 packet without frame count", ErrMalformed)
		}
		frames = int(pkt[1] & 0x3f)
		if frames == 0 {
			return 0, fmt.Errorf("%w: Opus code 3 packet with 0 frames", ErrMalformed)
		}
	}
	if d := per * frames; d <= 5760 {
		return d, nil
	}
	return 0, fmt.Errorf("%w: Opus packet longer than 120 ms", ErrMalformed)
}
