package cmaf

import (
	"fmt"
	"math"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// A gap segment (Segment.Gap) is a segment a rendition does not have: its
// encoder was down or, behind real time, left the GOP out (hwenc
// "shedding"). LL-HLS lists it with EXT-X-GAP and players do not load it
// (RFC 8216bis §4.4.4.7). DASH has no such mark: a SegmentTimeline with
// $Number$ must list it to keep the numbers (dash.js numbers a timeline's
// entries from @startNumber and does not read S@n), and a player that
// loads it and gets a 404 takes the Representation for broken: Shaka
// Player 5.2 banned both x264 rungs for 30 s at once on a ladder that
// shed a GOP (node TestStockPlayers, ABR). So the gap segment's file is
// a still picture instead: the last picture the rendition had before the
// hole starts (the key frame that opens the nearest earlier segment of
// the same init segment), as one sample that lasts the whole gap. The
// viewer sees the picture stop for the gap and the sound go on, as on a
// stalled camera; the player keeps the rung. A listed segment is a
// segment served (issue 12; ISO/IEC 23009-1 §5.3.9.6: every S entry
// names a Segment).

// GapFill returns the file (styp + one chunk) that stands in for gap
// segment msn of a video track; false when msn is no gap segment, has no
// duration, or no earlier segment of its init segment is left in the
// window to take a picture from (then it stays 404). The same bytes for
// as long as msn is in the window.
func (t *Track) GapFill(msn uint64) ([]byte, bool) {
	if t.kind != Video {
		return nil, false // silence would need an encoder: audio gaps stay 404
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	sg := t.segLocked(msn)
	if sg == nil || !sg.Gap || sg.Ticks == 0 || sg.Ticks > math.MaxUint32 {
		return nil, false
	}
	if b, ok := t.fills[msn]; ok {
		return b, true
	}
	var src *Segment
	for i := int(msn - t.segs[0].MSN); i >= 0; i-- {
		if s := t.segs[i]; !s.Gap && len(s.Parts) > 0 && s.InitID == sg.InitID {
			src = s
			break
		}
	}
	if src == nil {
		return nil, false
	}
	b, err := stillChunk(src.Parts[0].Data, sg.BaseTime, uint32(sg.Ticks))
	if err != nil {
		return nil, false
	}
	b = append(append([]byte(nil), stypBox...), b...)
	if t.fills == nil {
		t.fills = map[uint64][]byte{}
	}
	for m := range t.fills {
		if m < t.segs[0].MSN {
			delete(t.fills, m) // left the window
		}
	}
	t.fills[msn] = b
	return b, true
}

// stillChunk is a chunk (moof+mdat) of the first sample of chunk part, a
// sync sample, lasting ticks from baseTime.
func stillChunk(part []byte, baseTime uint64, ticks uint32) ([]byte, error) {
	var ps fmp4.Parts
	if err := ps.Unmarshal(part); err != nil {
		return nil, err
	}
	if len(ps) == 0 || len(ps[0].Tracks) == 0 || len(ps[0].Tracks[0].Samples) == 0 {
		return nil, fmt.Errorf("still: no sample")
	}
	s := ps[0].Tracks[0].Samples[0]
	if s.IsNonSyncSample {
		return nil, fmt.Errorf("still: the segment does not open with a sync sample")
	}
	return marshalPart(ps[0].SequenceNumber, baseTime, []*fmp4.Sample{{
		Duration: ticks, PTSOffset: s.PTSOffset, Payload: s.Payload,
	}})
}
