package dash

import (
	"testing"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// TestSharedAudio: with the transcoder's audio-only AAC rendition the
// MPD's audio AdaptationSet lists only it; without it every audio track.
func TestSharedAudio(t *testing.T) {
	seg := []cmaf.Segment{{MSN: 1}}
	v := func(r string, k cmaf.Kind, codec string) view {
		return view{rendition: r, kind: k, snap: cmaf.Snapshot{Info: cmaf.TrackInfo{Kind: k, Codec: codec}, Segments: seg}}
	}
	tracks := []view{
		v("source", cmaf.Video, "avc1.42e01f"), v("source", cmaf.Audio, "opus"),
		v("360p", cmaf.Video, "avc1.42c01e"), v("360p", cmaf.Audio, "mp4a.40.2"),
		v("aac", cmaf.Audio, "mp4a.40.2"),
	}
	if got := sharedAudio(tracks); got != "aac" {
		t.Errorf("shared audio %q, want aac", got)
	}
	if got := sharedAudio(tracks[:4]); got != "" {
		t.Errorf("without the AAC rendition: %q, want none", got)
	}
	if got := sharedAudio([]view{v("aac", cmaf.Audio, "mp4a.40.2")}); got != "" {
		t.Errorf("audio-only stream: %q, want none", got)
	}
}
