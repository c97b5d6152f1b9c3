package hls

import (
	"testing"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// TestPlayable: a rendition is offered to starting players only when its
// latest complete segment is media; a rendition whose complete segments
// are gaps (its encoder shed the GOPs it was behind by while starting)
// is not: Shaka Player probes the middle segment, skips gaps forward and
// failed on the open segment, which has parts but no URI yet.
func TestPlayable(t *testing.T) {
	media := cmaf.Segment{Complete: true}
	gap := cmaf.Segment{Complete: true, Gap: true}
	open := cmaf.Segment{Parts: []cmaf.Part{{Index: 0}}}
	for _, tc := range []struct {
		name            string
		segs            []cmaf.Segment
		hasMedia, offer bool
	}{
		{"empty", nil, false, false},
		{"open only", []cmaf.Segment{open}, false, false},
		{"gaps then open", []cmaf.Segment{gap, gap, open}, false, false},
		{"media, gap, open", []cmaf.Segment{media, gap, open}, true, false},
		{"gap, media, open", []cmaf.Segment{gap, media, open}, true, true},
		{"media", []cmaf.Segment{media}, true, true},
	} {
		snap := cmaf.Snapshot{Segments: tc.segs}
		if got := hasMedia(snap); got != tc.hasMedia {
			t.Errorf("%s: hasMedia %v, want %v", tc.name, got, tc.hasMedia)
		}
		if got := playable(snap); got != tc.offer {
			t.Errorf("%s: playable %v, want %v", tc.name, got, tc.offer)
		}
	}
}
