package ts

import (
	"testing"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// TestShareAudio: the transcoder's audio-only AAC rendition is the audio
// group of the video-only source variant, never a variant of its own; the
// rungs keep their own muxed AAC.
func TestShareAudio(t *testing.T) {
	vs := []variant{
		{name: "source", codecs: "avc1.42e01f", width: 1280, height: 720, fps: 30, peak: 3_000_000, avg: 2_000_000, hasSegment: true},
		{name: "360p", codecs: "avc1.42c01e,mp4a.40.2", width: 640, height: 360, fps: 30, peak: 800_000, avg: 700_000, hasSegment: true},
		{name: "aac", codecs: "mp4a.40.2", peak: 130_000, avg: 128_000, hasSegment: true},
	}
	body := renderMaster(shareAudio(vs))
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
	// No video at all (audio-only publisher): unchanged.
	only := []variant{{name: "aac", codecs: "mp4a.40.2", hasSegment: true}}
	if got := shareAudio(only); len(got) != 1 || got[0].audio != "" {
		t.Errorf("audio-only: %+v", got)
	}
}
