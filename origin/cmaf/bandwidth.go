package cmaf

import (
	"context"
	"slices"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

// SetLadder installs the lookup of a stream's transcoding ladder (nil:
// none), whose configured bit rates are the rate caps RateCap reports.
// Call before serving.
func (r *Registry) SetLadder(f func(id uint64) []media.Rendition) {
	r.mu.Lock()
	r.ladder = f
	r.mu.Unlock()
}

// RateCap is the configured video bit rate (bit/s) of rendition name of
// stream id, its encoder's rate cap; 0 when there is none (no ladder
// installed, or a rendition not in it).
//
// For the source, whose rate is whatever the publisher sends, it is one
// above the ladder's highest rung: the source is the top of the ladder,
// so it is advertised above every rung. A browser presenter sends its
// 720p at 0.6-1 Mbit/s while the 480p rung is capped at 1.2 Mbit/s;
// advertised at its measured rate, the source ranked below the 480p rung
// and an ABR player with bandwidth to spare picked the 480p re-encode
// (Shaka Player did, on every run). Budgeting a little more than the
// source needs is what BANDWIDTH and @bandwidth allow (an upper bound);
// less is not.
func (r *Registry) RateCap(id uint64, name string) int {
	r.mu.Lock()
	f := r.ladder
	r.mu.Unlock()
	if f == nil {
		return 0
	}
	l := f(id)
	if name == hub.Source {
		top := 0
		for _, x := range l {
			if x.Name != hub.Source {
				top = max(top, x.Bitrate)
			}
		}
		if top > 0 {
			return top + 1
		}
		return 0
	}
	if i := slices.IndexFunc(l, func(x media.Rendition) bool { return x.Name == name }); i >= 0 {
		return max(l[i].Bitrate, 0)
	}
	return 0
}

// Bandwidth is the bit rate of one track that a player budgets on: the
// one figure both the HLS multivariant playlist (BANDWIDTH and
// AVERAGE-BANDWIDTH of a variant sum it over the variant's tracks) and the
// DASH MPD (Representation@bandwidth) state, so the two never disagree.
//
// peak is the measured peak segment bit rate with a quarter of headroom
// (draft-pantos-hls-rfc8216bis App. B.1: the measured peak must stay
// within 125 % of BANDWIDTH), and never below rateCap, the rung's
// configured rate (RateCap; 0 for none): x264 holds it loosely and easy
// content averages far below it, while ISO/IEC 23009-1 §5.3.5.2 defines
// @bandwidth as the rate that, delivered continuously, plays out after
// @minBufferTime, which an average of easy content is not. avg is the
// measured average (AVERAGE-BANDWIDTH), rateCap until one is measured.
// Before the first complete segment both are estimated from the parts
// so far.
func Bandwidth(snap *Snapshot, rateCap int) (peak, avg int) {
	peak, avg = snap.Info.PeakBandwidth, snap.Info.AvgBandwidth
	if peak == 0 {
		var size int
		var d time.Duration
		for _, sg := range snap.Segments {
			for _, p := range sg.Parts {
				size += len(p.Data)
				d += p.Duration
			}
		}
		if d > 0 {
			peak = int(float64(size*8) / d.Seconds())
		}
		if peak == 0 {
			peak = 128000
		}
		avg = peak
	}
	peak = peak * 5 / 4
	if rateCap > 0 {
		peak = max(peak, rateCap)
		if snap.Info.AvgBandwidth == 0 {
			avg = rateCap
		}
	}
	return peak, avg
}

// SetRungs installs the lookup of the rungs a stream's encoder makes now
// (nil, or none for a stream: no transcoding), which WaitRungs waits for.
// Call before serving.
func (r *Registry) SetRungs(f func(id uint64) []string) {
	r.mu.Lock()
	r.rungs = f
	r.mu.Unlock()
}

// WaitRungs waits until every rung stream id's encoder makes (SetRungs)
// has a rendition whose video has a segment with media, or until ctx is
// done. It reports whether they all have.
//
// For a player opened before the stream goes live (the MPD and the
// multivariant playlist wait here): its first manifest comes as soon as
// the source has a segment, and the x264 rungs' first segments come a few
// hundred milliseconds later (hls.js loads the multivariant playlist
// once: it would never see them). Stock dash.js 5.2.1
// that started on an AdaptationSet holding the source alone and then saw
// the rungs join it on its next MPD update never loaded another video
// segment (its video buffer stopped at the source's first segment; 2 of
// 3 players, node TestBenchPlayerStart, ladder): the MPD waits for them.
func (r *Registry) WaitRungs(ctx context.Context, id uint64) bool {
	for {
		r.mu.Lock()
		f, s, added := r.rungs, r.streams[id], r.added
		r.mu.Unlock()
		if f == nil {
			return true
		}
		var wait <-chan struct{}
		for _, name := range f(id) {
			var rd *Rendition
			if s != nil {
				rd, _ = s.Rendition(name)
			}
			if rd == nil || rd.Video == nil {
				wait = added
				break
			}
			if snap := rd.Video.Snapshot(); !slices.ContainsFunc(snap.Segments, func(sg Segment) bool { return !sg.Gap && len(sg.Parts) > 0 }) {
				wait = rd.Video.Changed()
				break
			}
		}
		if wait == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-wait:
		}
	}
}
