package ts

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// variant is one entry of the multivariant playlist, or a rendition that
// may become one.
type variant struct {
	name       string
	codecs     string
	width      int
	height     int
	fps        float64
	peak, avg  int
	hasSegment bool
	// audio names the audio-only AAC rendition this (video-only) variant
	// takes its audio from, as an EXT-X-MEDIA group; "" when none.
	audio string

	// What the rendition is, for playable: started is false until its
	// first session has been seen (then video and carried are unknown);
	// video: it carries H.264; carried: the RFC 6381 codec of the audio
	// in its segments ("" for none); live: it may still get a segment.
	started bool
	video   bool
	carried string
	live    bool
}

// isAudioGroup reports whether v is an audio-only AAC rendition (the
// transcoder's audio, hwenc.AudioRendition).
func (v variant) isAudioGroup() bool {
	return v.started && !v.video && strings.HasPrefix(v.carried, "mp4a")
}

// needsAudio reports whether v is video whose segments carry no audio
// (the source: its Opus is left out of TS).
func (v variant) needsAudio() bool { return v.started && v.video && v.carried == "" }

// playable returns the variants of a multivariant playlist over the
// renditions rs: a variant is listed only once everything it references
// is playable (RFC 8216bis §4.4.6.2: each variant must be playable on its
// own). An audio-only AAC rendition is the EXT-X-MEDIA audio group
// (§4.4.6.1) of the video variants that carry no audio instead of a variant
// of its own, whenever there is video. While that group has no complete
// segment yet, those video variants are held back: listing them video-only
// would leave a player that loads the playlist early (players load it
// once) without audio for good. Without an audio-only rendition (no
// transcoder, or a video-only publisher) they are listed video-only.
//
// When nothing is playable it returns nil and why, for the 404.
func playable(rs []variant) ([]variant, string) {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b variant) int { return strings.Compare(a.name, b.name) })
	group, pending, unknown := -1, false, false
	video, needs := false, false
	for i, v := range rs {
		switch {
		case !v.started:
			unknown = unknown || v.live // may be the audio group, starting
		case v.isAudioGroup():
			if v.hasSegment && group < 0 {
				group = i
			} else if !v.hasSegment && v.live {
				pending = true
			}
		case v.video && (v.hasSegment || v.live):
			video = true
			needs = needs || v.needsAudio()
		}
	}
	if group >= 0 {
		pending = false
	} else if needs && unknown {
		pending = true // a rendition whose session is being set up
	}
	var out []variant
	withGroup := false
	why := "no rendition has a complete segment yet"
	for _, v := range rs {
		if !v.hasSegment || v.codecs == "" {
			continue
		}
		if v.needsAudio() {
			switch {
			case group >= 0:
				v.audio = rs[group].name
				v.codecs = joinCodecs(v.codecs, rs[group].codecs)
				v.peak += rs[group].peak
				v.avg += rs[group].avg
				withGroup = true
			case pending:
				why = "the audio rendition has no complete segment yet"
				continue
			}
		}
		if v.isAudioGroup() && video {
			continue // the EXT-X-MEDIA group (appended below), never a variant
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, why
	}
	if withGroup {
		g := rs[group]
		// renderMaster lists this entry as the EXT-X-MEDIA group.
		out = append(out, variant{name: g.name, codecs: g.codecs, peak: g.peak, avg: g.avg, hasSegment: true, audio: groupMarker})
	}
	return out, ""
}

// groupMarker marks the audio group entry playable appends.
const groupMarker = "\x00group"

// defaultBandwidth stands in before a rendition has a complete segment.
const defaultBandwidth = 1_000_000

// bandwidth returns the peak and average bit/s over segs.
func bandwidth(segs []*segment) (peak, avg int) {
	var bytes int
	var total time.Duration
	for _, s := range segs {
		if s.dur <= 0 {
			continue
		}
		bps := int(float64(len(s.data)*8) / s.dur.Seconds())
		peak = max(peak, bps)
		bytes += len(s.data)
		total += s.dur
	}
	if total > 0 {
		avg = int(float64(bytes*8) / total.Seconds())
	}
	return peak, avg
}

// renderMaster writes the multivariant playlist. RFC 8216bis §4.4.6.2:
// BANDWIDTH is the peak segment bit rate; AVERAGE-BANDWIDTH, CODECS,
// RESOLUTION and FRAME-RATE are given whenever known.
func renderMaster(vs []variant) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	for _, v := range vs {
		if v.audio == groupMarker {
			// The transcoder's AAC as alternative audio (§4.4.6.1).
			fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"%s\",NAME=\"%s\",DEFAULT=YES,AUTOSELECT=YES,URI=\"%s/index.m3u8\"\n", v.name, v.name, v.name)
		}
	}
	for _, v := range vs {
		if v.audio == groupMarker {
			continue
		}
		peak, avg := v.peak, v.avg
		if peak == 0 {
			peak, avg = defaultBandwidth, defaultBandwidth
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d", peak, max(avg, 1))
		if v.codecs != "" {
			fmt.Fprintf(&b, ",CODECS=\"%s\"", v.codecs)
		}
		if v.width > 0 && v.height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.width, v.height)
		}
		if v.fps > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", v.fps)
		}
		if v.audio != "" {
			fmt.Fprintf(&b, ",AUDIO=\"%s\"", v.audio)
		}
		fmt.Fprintf(&b, "\n%s/index.m3u8\n", v.name)
	}
	return b.String()
}

// SegmentName is the file name of TS segment seq.
func SegmentName(seq uint64) string { return fmt.Sprintf("seg%d.ts", seq) }

// parseSegmentName is the inverse of SegmentName; only the canonical
// spelling parses (one URL per segment).
func parseSegmentName(name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, "seg")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, ".ts")
	if !ok || num == "" || num[0] < '0' || num[0] > '9' || (len(num) > 1 && num[0] == '0') {
		return 0, false
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	return seq, err == nil
}

// targetDuration is EXT-X-TARGETDURATION: RFC 8216 §4.3.3.1, every
// EXTINF rounded to the nearest integer is ≤ it.
func targetDuration(segs []*segment, target time.Duration) int {
	td := int(math.Round(target.Seconds()))
	for _, s := range segs {
		td = max(td, int(math.Round(s.dur.Seconds())))
	}
	return max(td, 1)
}

// renderMedia writes a media playlist of segs (non-empty, oldest first).
// RFC 8216 §4.3.3.2 media sequence, §4.3.3.3 discontinuity sequence,
// §4.3.2.3 discontinuity, §4.3.2.6 program date time, §4.3.3.4 endlist.
func renderMedia(segs []*segment, target time.Duration, ended bool) string {
	var b strings.Builder
	first := segs[0]
	dsn := first.dsn
	if first.disc && dsn > 0 {
		dsn-- // the first segment's own tag is listed, so it is not yet counted
	}
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n",
		targetDuration(segs, target), first.seq)
	fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n", dsn)
	for _, s := range segs {
		if s.disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if !s.wall.IsZero() {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.wall.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", s.dur.Seconds(), SegmentName(s.seq))
	}
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.String()
}
