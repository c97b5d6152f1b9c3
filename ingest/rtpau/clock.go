package rtpau

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// MaxSenderSkew bounds how far the NTP time of an RTCP sender report may be
// from the local clock for Clock to trust it. Senders with a wrong clock (or
// a clock that does not count from 1900, as some encoders do) are ignored
// and Clock keeps mapping by arrival time.
const MaxSenderSkew = 30 * time.Second

// reanchor is how far arrival-based wall times may lag arrival before the
// mapping is moved forward (a sender whose timestamps jumped backwards, or
// whose clock runs fast).
const reanchor = time.Second

// Clock turns the 32-bit RTP timestamps of one track into an int64 tick
// count and maps ticks to wall-clock time.
//
// Ticks count from the first timestamp seen (tick 0), unwrapped across the
// 2^32 wrap-around by taking the shortest signed distance to the previous
// timestamp (RFC 3550 §5.1), so they may be negative for a frame presented
// before the first one.
//
// Wall time, in order of preference:
//
//  1. RTCP sender reports (RFC 3550 §6.4.1): the latest report's NTP / RTP
//     timestamp pair maps ticks to the sender's clock. Audio and video of one
//     sender share that clock, so their times are directly comparable (lip
//     sync). Reports whose NTP time is more than MaxSenderSkew away from the
//     local clock are ignored (counted in IgnoredReports).
//  2. Arrival time when the publisher sends no reports (some WHIP encoders
//     do not): wall = base + ticks/rate, where base is the earliest
//     "arrival − ticks/rate" seen, i.e. the mapping follows the packet that
//     suffered the least network delay. Audio and video clocks of one session
//     are comparable within network jitter.
//
// Times jump once when the first sender report replaces the arrival mapping.
// Clock is safe for concurrent use (RTP and RTCP are usually read by
// different goroutines).
type Clock struct {
	rate uint32
	now  func() time.Time

	mu      sync.Mutex
	started bool
	last    uint32
	lastExt int64
	base    time.Time

	haveSR  bool
	srTime  time.Time
	srTicks int64
	// A report that came before the first RTP packet.
	pendingSR  bool
	pendingNTP time.Time
	pendingRTP uint32

	reports, ignored uint64
	// shift: how far the first sender report moved wall times from the
	// arrival mapping (0 when it came before the first packet).
	shift time.Duration
}

// NewClock returns a Clock for a track with the given RTP clock rate (90000
// for H.264, 48000 for Opus). now gives the arrival time of packets (nil:
// time.Now).
func NewClock(clockRate uint32, now func() time.Time) *Clock {
	if clockRate == 0 {
		clockRate = 90000
	}
	if now == nil {
		now = time.Now
	}
	return &Clock{rate: clockRate, now: now}
}

// Rate is the clock rate in Hz.
func (c *Clock) Rate() uint32 { return c.rate }

// Duration converts ticks to a time.Duration.
func (c *Clock) Duration(ticks int64) time.Duration {
	return ticksToDuration(ticks, c.rate)
}

func ticksToDuration(ticks int64, rate uint32) time.Duration {
	sec := ticks / int64(rate)
	rem := ticks % int64(rate)
	return time.Duration(sec)*time.Second + time.Duration(rem)*time.Second/time.Duration(rate)
}

// unwrapLocked returns the tick count of ts relative to the first timestamp
// without updating state.
func (c *Clock) unwrapLocked(ts uint32) int64 {
	return c.lastExt + int64(int32(ts-c.last))
}

// Ticks returns the tick count of an RTP timestamp that arrived now. The
// first call defines tick 0. Call it for every packet, in sequence order,
// so the unwrapping never misses a wrap.
func (c *Clock) Ticks(ts uint32) int64 {
	arrival := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		c.started = true
		c.last, c.lastExt = ts, 0
		c.base = arrival
		if c.pendingSR {
			c.pendingSR = false
			c.setSRLocked(c.pendingNTP, c.unwrapLocked(c.pendingRTP))
		}
		return 0
	}
	ext := c.unwrapLocked(ts)
	c.last, c.lastExt = ts, ext
	cand := arrival.Add(-ticksToDuration(ext, c.rate))
	if cand.Before(c.base) || cand.Sub(c.base) > reanchor {
		c.base = cand
	}
	return ext
}

// Time maps a tick count to wall-clock time (see Clock).
func (c *Clock) Time(ticks int64) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.haveSR {
		return c.srTime.Add(ticksToDuration(ticks-c.srTicks, c.rate))
	}
	return c.base.Add(ticksToDuration(ticks, c.rate))
}

// HandleSenderReport takes an RTCP sender report of this track's SSRC.
func (c *Clock) HandleSenderReport(sr *rtcp.SenderReport) {
	if sr == nil {
		return
	}
	ntp := NTPTime(sr.NTPTime)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports++
	if d := ntp.Sub(now); d > MaxSenderSkew || d < -MaxSenderSkew {
		c.ignored++
		return
	}
	if !c.started {
		c.pendingSR, c.pendingNTP, c.pendingRTP = true, ntp, sr.RTPTime
		return
	}
	ticks := c.unwrapLocked(sr.RTPTime)
	if !c.haveSR {
		c.shift = ntp.Sub(c.base.Add(ticksToDuration(ticks, c.rate)))
	}
	c.setSRLocked(ntp, ticks)
}

func (c *Clock) setSRLocked(ntp time.Time, ticks int64) {
	c.haveSR, c.srTime, c.srTicks = true, ntp, ticks
}

// ClockStats are a Clock's counters.
type ClockStats struct {
	// SenderReports counts reports handled; IgnoredReports those whose NTP
	// time was implausible.
	SenderReports, IgnoredReports uint64
	// FromSenderReport is true once wall times come from a sender report.
	FromSenderReport bool
	// ReportShift is how far the first sender report moved wall times
	// from the arrival mapping used until then (negative: earlier); 0
	// when a report came before the first packet. Times already given
	// out (a segment's date) keep the arrival mapping.
	ReportShift time.Duration
}

// Stats returns the counters.
func (c *Clock) Stats() ClockStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ClockStats{SenderReports: c.reports, IgnoredReports: c.ignored, FromSenderReport: c.haveSR, ReportShift: c.shift}
}

// ntpEpochOffset is the number of seconds from 1900-01-01 (NTP) to
// 1970-01-01 (Unix).
const ntpEpochOffset = 2208988800

// NTPTime converts a 64-bit NTP timestamp (RFC 5905 §6: seconds since 1900
// in the high 32 bits, fraction in the low 32) to time.Time.
func NTPTime(ntp uint64) time.Time {
	sec := int64(ntp>>32) - ntpEpochOffset
	nsec := int64((ntp & 0xffffffff) * 1e9 >> 32)
	return time.Unix(sec, nsec).UTC()
}

// ToNTP converts t to a 64-bit NTP timestamp (the inverse of NTPTime, for
// tests and for building sender reports).
func ToNTP(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}
