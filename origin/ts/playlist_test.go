package ts

import (
	"strings"
	"testing"
	"time"
)

func TestSegmentNameRoundTrip(t *testing.T) {
	for _, seq := range []uint64{0, 1, 9, 10, 123456789, 1<<64 - 1} {
		got, ok := parseSegmentName(SegmentName(seq))
		if !ok || got != seq {
			t.Errorf("%d: parsed back %d %v", seq, got, ok)
		}
	}
	for _, bad := range []string{"", "seg.ts", "seg01.ts", "seg1.m4s", "seg-1.ts", "seg18446744073709551616.ts", "xseg1.ts", "seg1.ts.ts"} {
		if _, ok := parseSegmentName(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseSegmentName: any name that parses is the canonical name of
// what it parsed to (one URL per segment, so a CDN caches one copy).
func FuzzParseSegmentName(f *testing.F) {
	for _, s := range []string{"seg0.ts", "seg42.ts", "seg01.ts", "seg.ts", "seg18446744073709551615.ts", "seg18446744073709551616.ts"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		seq, ok := parseSegmentName(name)
		if ok && SegmentName(seq) != name {
			t.Fatalf("%q parsed to %d, whose name is %q", name, seq, SegmentName(seq))
		}
	})
}

func TestRenderMediaDiscontinuitySequence(t *testing.T) {
	segs := []*segment{
		{seq: 7, dsn: 3, disc: true, dur: 2 * time.Second, wall: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)},
		{seq: 8, dsn: 3, dur: 2100 * time.Millisecond},
		{seq: 9, dsn: 4, disc: true, dur: 1500 * time.Millisecond},
	}
	got := renderMedia(segs, 2*time.Second, true)
	want := `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-01-02T03:04:05.006Z
#EXTINF:2.000,
seg7.ts
#EXTINF:2.100,
seg8.ts
#EXT-X-DISCONTINUITY
#EXTINF:1.500,
seg9.ts
#EXT-X-ENDLIST
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// RFC 8216 §4.3.3.1: a 2.6 s segment rounds to 3.
	segs[1].dur = 2600 * time.Millisecond
	if !strings.Contains(renderMedia(segs, 2*time.Second, false), "#EXT-X-TARGETDURATION:3\n") {
		t.Error("target duration does not cover the longest segment")
	}
}
