package ts

import (
	"strings"
	"testing"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// Renditions as the server sees them (snapshot): the source carries no
// audio in TS (its Opus is left out), a rung carries muxed AAC, the
// transcoder's AAC-only rendition.
var (
	srcReady = variant{name: "source", codecs: "avc1.42e01f", width: 1280, height: 720, fps: 30, peak: 3_000_000, avg: 2_000_000,
		hasSegment: true, started: true, video: true, live: true}
	rungReady = variant{name: "360p", codecs: "avc1.42c01e,mp4a.40.2", width: 640, height: 360, fps: 30, peak: 800_000, avg: 700_000,
		hasSegment: true, started: true, video: true, carried: "mp4a.40.2", live: true}
	aacReady   = variant{name: "aac", codecs: "mp4a.40.2", peak: 130_000, avg: 128_000, hasSegment: true, started: true, carried: "mp4a.40.2", live: true}
	aacPending = variant{name: "aac", codecs: "mp4a.40.2", started: true, carried: "mp4a.40.2", live: true}
)

// TestShareAudio: the transcoder's audio-only AAC rendition is the audio
// group of the video-only source variant, never a variant of its own; the
// rungs keep their own muxed AAC.
func TestShareAudio(t *testing.T) {
	vs, why := playable([]variant{srcReady, rungReady, aacReady})
	if why != "" {
		t.Fatal(why)
	}
	sortVariants(vs)
	body := renderMaster(vs)
	var mv playlist.Multivariant
	if err := mv.Unmarshal([]byte(body)); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(mv.Variants) != 2 || len(mv.Renditions) != 1 {
		t.Fatalf("want 2 variants and 1 audio rendition:\n%s", body)
	}
	src := mv.Variants[0]
	if src.URI != "source/index.m3u8" || src.Audio != "aac" || src.Bandwidth != 3_130_000 || len(src.Codecs) != 2 || src.Codecs[1] != "mp4a.40.2" {
		t.Errorf("source variant %+v", src)
	}
	if r := mv.Renditions[0]; r.GroupID != "aac" || r.URI == nil || *r.URI != "aac/index.m3u8" || !r.Default {
		t.Errorf("audio rendition %+v", r)
	}
	if mv.Variants[1].Audio != "" {
		t.Errorf("360p has its own AAC, got group %q", mv.Variants[1].Audio)
	}
}

// TestPlayable: a variant is listed only once its video and the audio it
// uses are playable; renditions are named in what the master lists.
func TestPlayable(t *testing.T) {
	starting := variant{name: "aac", live: true} // consumed, session not seen yet
	srcNoSeg := srcReady
	srcNoSeg.hasSegment, srcNoSeg.peak, srcNoSeg.avg = false, 0, 0
	aacGone := aacPending
	aacGone.live = false
	srcOpus := srcReady
	srcOpus.codecs, srcOpus.carried = "avc1.42e01f,opus", "opus"
	for _, tc := range []struct {
		name string
		in   []variant
		want string // the master's lines naming renditions, in order; "" for none playable
		why  string
	}{
		{"no transcoder: source video-only", []variant{srcReady}, "source", ""},
		{"audio group ready", []variant{aacReady, srcReady}, "aac(group) source+aac", ""},
		{"audio group without segment holds the source back", []variant{srcReady, aacPending}, "", "audio rendition"},
		{"a starting rendition may be the audio group", []variant{srcReady, starting}, "", "audio rendition"},
		{"a rung with its own AAC is playable meanwhile", []variant{srcReady, rungReady, aacPending}, "360p", ""},
		{"audio group ended without a segment: source video-only", []variant{srcReady, aacGone}, "source", ""},
		{"source carrying Opus (opus: true) needs no group", []variant{srcOpus, aacPending}, "source", ""},
		{"audio group ready before any video: not a variant", []variant{srcNoSeg, aacReady}, "", "no rendition"},
		{"audio-only publisher: the AAC rendition is the variant", []variant{aacReady}, "aac", ""},
		{"nothing yet", []variant{srcNoSeg, aacPending}, "", "no rendition"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, why := playable(tc.in)
			var got []string
			for _, v := range vs {
				switch {
				case v.audio == groupMarker:
					got = append([]string{v.name + "(group)"}, got...)
				case v.audio != "":
					got = append(got, v.name+"+"+v.audio)
				default:
					got = append(got, v.name)
				}
			}
			if strings.Join(got, " ") != tc.want || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
				t.Errorf("got %q (why %q), want %q (why %q)", strings.Join(got, " "), why, tc.want, tc.why)
			}
			if len(vs) > 0 {
				var mv playlist.Multivariant
				if err := mv.Unmarshal([]byte(renderMaster(vs))); err != nil {
					t.Errorf("%v\n%s", err, renderMaster(vs))
				}
			}
		})
	}
}
