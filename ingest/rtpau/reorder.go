package rtpau

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// DefaultReorderSize is the reorder window NewReorder uses for size <= 0:
// 128 packets, about 1 s of 1 Mbit/s video.
const DefaultReorderSize = 128

// ResyncGap is the forward jump in sequence numbers (in packets) above which
// Reorder treats a packet as the start of a new sequence (a publisher that
// restarted) instead of counting the skipped numbers as lost.
const ResyncGap = 3000

// Reorder puts the RTP packets of one SSRC back into sequence-number order
// through a bounded window (RFC 3550 §A.1 for the 16-bit wrap-around).
//
//   - A packet that arrives in order is released at once together with any
//     buffered packets that follow it.
//   - A packet ahead of the next expected one waits in the window. When a
//     packet arrives that does not fit (size or more ahead), Reorder gives
//     up on the oldest gaps until it fits; when the oldest gap has been open
//     longer than the maximum delay (SetMaxDelay), it gives that gap up.
//     Given-up numbers are counted in Lost.
//   - Duplicates and packets older than the window are dropped and counted.
//   - A jump of more than ResyncGap forward, or more than size consecutive
//     packets from far behind, resynchronizes on the new numbering
//     (counted in Resyncs, not as loss).
//   - Padding-only packets (no payload) are counted in Padding and released
//     in order like any other packet, so that the depacketizers see an
//     unbroken sequence and do not mistake them for loss; the depacketizers
//     drop them.
//
// Push must be called from one goroutine; the counters may be read
// concurrently.
type Reorder struct {
	size     int
	buf      []*rtp.Packet
	mask     int
	held     int
	next     uint16
	started  bool
	behind   int
	maxDelay time.Duration
	now      func() time.Time
	gapSince time.Time

	lost, dups, late, padding, resyncs, packets atomic.Uint64
}

// NewReorder returns a Reorder whose window holds size packets
// (DefaultReorderSize when size <= 0; at most 32768).
func NewReorder(size int) *Reorder {
	if size <= 0 {
		size = DefaultReorderSize
	}
	if size > 1<<15 {
		size = 1 << 15
	}
	// The ring is a power of two so that slot = seq & mask stays distinct
	// for consecutive numbers across the 2^16 wrap.
	ring := 1
	for ring < size {
		ring <<= 1
	}
	return &Reorder{size: size, buf: make([]*rtp.Packet, ring), mask: ring - 1}
}

// SetMaxDelay bounds how long a gap may hold back later packets: when the
// first packet behind a gap has waited d (by now), the gap is given up as
// lost. d <= 0 disables the bound (the default: only a full window gives
// up). now defaults to time.Now. Choose d above the round-trip time so that
// NACKed retransmissions can still fill the gap.
func (r *Reorder) SetMaxDelay(d time.Duration, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	r.maxDelay, r.now = d, now
}

// Push takes one received packet and returns the packets that are now in
// order (possibly none). The returned slice is newly allocated.
func (r *Reorder) Push(p *rtp.Packet) []*rtp.Packet {
	if p == nil {
		return nil
	}
	r.packets.Add(1)
	if len(p.Payload) == 0 {
		r.padding.Add(1)
	}
	var out []*rtp.Packet
	if !r.started {
		r.started = true
		r.next = p.SequenceNumber
	}
	d := p.SequenceNumber - r.next // RFC 3550 §A.1: modulo 2^16 distance
	if d >= 0x8000 {
		// Behind the next expected number: a duplicate of something already
		// released, or too late.
		r.behind++
		if r.behind <= r.size {
			r.late.Add(1)
			return nil
		}
		// Many packets in a row from far behind: the sender restarted its
		// numbering below ours.
		out = r.flush(out)
		r.resyncs.Add(1)
		r.next = p.SequenceNumber
		d = 0
	}
	r.behind = 0
	if int(d) >= r.size {
		// The packet does not fit: give up the oldest gaps, one at a time,
		// until it does (later gaps may still be filled by NACK/RTX).
		for r.held > 0 && int(p.SequenceNumber-r.next) >= r.size {
			out = r.skipGap(out)
		}
		r.gapSince = time.Time{} // a new oldest gap: its wait starts now
		if r.held == 0 {
			// Nothing left to wait for: continue at the packet.
			if gap := p.SequenceNumber - r.next; gap < ResyncGap {
				r.lost.Add(uint64(gap))
			} else {
				r.resyncs.Add(1)
			}
			r.next = p.SequenceNumber
		}
	}
	slot := int(p.SequenceNumber) & r.mask
	if q := r.buf[slot]; q != nil {
		// The window is smaller than 2^16, so an occupied slot within the
		// window holds the same sequence number.
		r.dups.Add(1)
		return out
	}
	r.buf[slot] = p
	r.held++
	out = r.drain(out)
	if r.held > 0 && r.maxDelay > 0 {
		now := r.now()
		if r.gapSince.IsZero() {
			r.gapSince = now
		} else if now.Sub(r.gapSince) >= r.maxDelay {
			out = r.skipGap(out)
			if r.held > 0 {
				r.gapSince = now
			}
		}
	}
	if r.held == 0 {
		r.gapSince = time.Time{}
	}
	return out
}

// drain releases the packets that follow r.next without a gap.
func (r *Reorder) drain(out []*rtp.Packet) []*rtp.Packet {
	for r.held > 0 {
		slot := int(r.next) & r.mask
		q := r.buf[slot]
		if q == nil {
			break
		}
		r.buf[slot] = nil
		r.held--
		out = append(out, q)
		r.next++
	}
	return out
}

// skipGap gives up on the gap at r.next: it advances to the first held
// packet, counting the skipped numbers as lost, and releases what follows.
func (r *Reorder) skipGap(out []*rtp.Packet) []*rtp.Packet {
	for i := 0; i < r.size && r.held > 0; i++ {
		if r.buf[int(r.next)&r.mask] != nil {
			break
		}
		r.lost.Add(1)
		r.next++
	}
	return r.drain(out)
}

// flush releases everything held, in order, counting gaps as lost.
func (r *Reorder) flush(out []*rtp.Packet) []*rtp.Packet {
	for r.held > 0 {
		out = r.skipGap(out)
	}
	r.gapSince = time.Time{}
	return out
}

// Flush gives up on every gap and returns all held packets in order (for
// the end of a session, or a timer when packets stop arriving).
func (r *Reorder) Flush() []*rtp.Packet { return r.flush(nil) }

// Lost is the number of sequence numbers given up as lost.
func (r *Reorder) Lost() uint64 { return r.lost.Load() }

// ReorderStats are Reorder's counters.
type ReorderStats struct {
	// Packets is every packet pushed.
	Packets uint64
	// Lost counts sequence numbers never received (given up).
	Lost uint64
	// Duplicates counts packets dropped because the same number was held.
	Duplicates uint64
	// Late counts packets dropped because they came after their number was
	// released or given up (this includes duplicates of released packets).
	Late uint64
	// Padding counts packets without payload.
	Padding uint64
	// Resyncs counts jumps in numbering treated as a sender restart.
	Resyncs uint64
}

// Stats returns the counters; safe to call concurrently with Push.
func (r *Reorder) Stats() ReorderStats {
	return ReorderStats{
		Packets:    r.packets.Load(),
		Lost:       r.lost.Load(),
		Duplicates: r.dups.Load(),
		Late:       r.late.Load(),
		Padding:    r.padding.Load(),
		Resyncs:    r.resyncs.Load(),
	}
}
