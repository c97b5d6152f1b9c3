package ts

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// variant is one entry of the multivariant playlist.
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
}

// shareAudio makes an audio-only AAC rendition (the transcoder's audio,
// hwenc.AudioRendition) the EXT-X-MEDIA audio group of the video variants
// that have no AAC of their own (the source: its Opus is left out of TS)
// instead of a variant of its own. Without video variants (an audio-only
// publisher) nothing changes.
func shareAudio(vs []variant) []variant {
	aac, video := -1, false
	for i, v := range vs {
		if v.width > 0 || strings.Contains(v.codecs, "avc1") {
			video = true
		} else if strings.HasPrefix(v.codecs, "mp4a") && aac < 0 {
			aac = i
		}
	}
	if aac < 0 || !video {
		return vs
	}
	name := vs[aac].name
	out := make([]variant, 0, len(vs))
	for i, v := range vs {
		if i == aac {
			continue
		}
		if !strings.Contains(v.codecs, "mp4a") && !strings.Contains(v.codecs, "opus") {
			v.audio = name
			v.codecs = joinCodecs(v.codecs, vs[aac].codecs)
			v.peak += vs[aac].peak
			v.avg += vs[aac].avg
		}
		out = append(out, v)
	}
	// renderMaster lists this entry as the EXT-X-MEDIA group.
	return append(out, variant{name: name, codecs: vs[aac].codecs, peak: vs[aac].peak, avg: vs[aac].avg, hasSegment: true, audio: groupMarker})
}

// groupMarker marks the audio group entry shareAudio appends.
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
