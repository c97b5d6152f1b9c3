package rtpau

import (
	"sync"
	"time"
)

// StatsWindow is the span of media time over which Stats.FPS and
// Stats.Bitrate are averaged.
const StatsWindow = 2 * time.Second

// Stats describes one track as depacketized so far. FPS and Bitrate are
// averaged over the last StatsWindow of media time (PTS), so they do not
// depend on when they are read.
type Stats struct {
	// Packets counts RTP packets pushed, Padding those without payload.
	Packets, Padding uint64
	// Lost counts sequence numbers missing in what was pushed (after
	// reordering).
	Lost uint64
	// Frames counts access units emitted, Keyframes the IDRs among them,
	// Bytes their payload bytes.
	Frames, Keyframes, Bytes uint64
	// Dropped counts access units not emitted: damaged by loss, waiting for
	// a keyframe, malformed or too large.
	Dropped uint64
	// Errors counts Push calls that returned an error.
	Errors uint64
	// FPS and Bitrate (bit/s) over StatsWindow.
	FPS, Bitrate float64
	// Video: the coded size from the active SPS (0 until known), how often
	// it changed, the media time between the last two IDRs.
	Width, Height     int
	ResolutionChanges uint64
	KeyframeInterval  time.Duration
	// BFrames counts access units whose PTS is below that of an earlier
	// access unit in decoding order (B-frames). Nonzero means the
	// publisher sends B-frames.
	BFrames uint64
	// NeedKeyframe is true while video waits for an IDR.
	NeedKeyframe bool
}

type sample struct {
	pts  int64
	size int
}

// statsBox holds Stats behind a mutex plus the sliding window.
type statsBox struct {
	mu     sync.Mutex
	s      Stats
	rate   int64
	window []sample
	head   int
}

func (b *statsBox) update(fn func(s *Stats)) {
	b.mu.Lock()
	fn(&b.s)
	b.mu.Unlock()
}

// frame records an emitted access unit in the counters and the window.
func (b *statsBox) frame(pts int64, size int, key bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s.Frames++
	b.s.Bytes += uint64(size)
	if key {
		b.s.Keyframes++
	}
	// Drop samples that left the window, or everything if time went back.
	span := int64(StatsWindow) * b.rate / int64(time.Second)
	for b.head < len(b.window) {
		first := b.window[b.head].pts
		if pts-first <= span && pts >= first-span {
			break
		}
		b.head++
	}
	if b.head > len(b.window)/2 && b.head > 32 {
		b.window = append(b.window[:0], b.window[b.head:]...)
		b.head = 0
	}
	b.window = append(b.window, sample{pts, size})
	w := b.window[b.head:]
	if len(w) < 2 {
		b.s.FPS, b.s.Bitrate = 0, 0
		return
	}
	lo, hi := w[0].pts, w[0].pts
	bytes := 0
	for _, x := range w {
		lo, hi = min(lo, x.pts), max(hi, x.pts)
		bytes += x.size
	}
	if hi <= lo {
		return
	}
	sec := float64(hi-lo) / float64(b.rate)
	b.s.FPS = float64(len(w)-1) / sec
	// The last sample's bytes belong to the interval after hi.
	b.s.Bitrate = float64(bytes-w[len(w)-1].size) * 8 / sec
}

func (b *statsBox) get() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s
}
