package hls

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// Report is the position of another rendition for EXT-X-RENDITION-REPORT.
type Report struct {
	URI      string
	LastMSN  uint64
	LastPart int // -1: no parts
}

// MediaOptions tune MediaPlaylist.
type MediaOptions struct {
	// Prefix of media URIs relative to the playlist ("video/").
	Prefix string
	// PartHoldBack (0: DefaultHoldBack).
	PartHoldBack time.Duration
	// Skip: produce a delta update (§6.2.5.1).
	Skip bool
	// Reports of the other renditions.
	Reports []Report
}

// TargetDuration is EXT-X-TARGETDURATION in seconds for s.
func TargetDuration(s cmaf.Snapshot) int {
	// The configured segment duration rounded up, so that every playlist
	// of a stream has the same value; raised only when a segment was
	// longer (no IDR in time): §4.4.3.1, every EXTINF rounded to the
	// nearest integer ≤ TD.
	td := ConfiguredTD(s.Info.SegmentTarget)
	for _, sg := range s.Segments {
		if d := int(math.Round(sg.Duration.Seconds())); sg.Complete && d > td {
			td = d
		}
	}
	return td
}

// ConfiguredTD is the target duration (s) the segment duration asks for.
func ConfiguredTD(segment time.Duration) int {
	return max(int(math.Ceil(segment.Seconds())), 1)
}

func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 5, 64)
}

// mediaSecs renders the duration of a segment (EXTINF) or part
// (EXT-X-PART DURATION): in whole microseconds, rounded up, plus one, so
// that every listed duration is 1-2 µs longer than its media and never
// shorter. Shaka Player 5.2.12 (the newest on npm) re-derives a part's
// SourceBuffer timestampOffset from the playlist's start time and the
// part's tfdt before each append, and compares it with the offset it set
// before, which it had nudged by +1 ms when negative (a workaround for
// legacy Edge, shaka-player#1281; on a live stream the offset is
// negative: presentation time 0 is the first listed segment); a
// difference of 1 ms or more makes it abort() the SourceBuffer, after
// which MSE drops media until the next keyframe. With durations rounded
// to the nearest 10 µs half the parts came out a hair short, the
// difference 1 ms or more, and Shaka dropped every part after each
// segment's first: 0.2 s of picture per second, a 5-12 ms stall at every
// segment boundary (node TestStockPlayers, LL-HLS passthrough: 34 stalls
// a minute). Durations never short keep the difference under 1 ms.
// Fixed upstream (shaka-player#10559, #10591), not yet released.
func mediaSecs(d time.Duration) string {
	us := (d+time.Microsecond-1)/time.Microsecond + 1
	return strconv.FormatFloat(float64(us)/1e6, 'f', 6, 64)
}

// LastPart returns the position of the last complete part in s.
func LastPart(s cmaf.Snapshot) (msn uint64, part int, ok bool) {
	for i := len(s.Segments) - 1; i >= 0; i-- {
		if n := len(s.Segments[i].Parts); n > 0 {
			return s.Segments[i].MSN, n - 1, true
		}
	}
	return 0, 0, false
}

// DefaultHoldBack is PART-HOLD-BACK when the config leaves it out: 3
// part targets (0.75 s at the default 250 ms), §4.4.3.8's minimum. Stock
// hls.js with only lowLatencyMode takes PART-HOLD-BACK as its target
// latency from where its first playlist ends and never catches up
// (playback rate 1): what it takes to start (0.3-0.5 s: the first parts,
// the init segments) stays on top of it for the session, so at 1 s it
// played 1.6-1.8 s behind when started on a running stream, and at
// 0.875 s 1.36 s (passthrough) and 1.43-1.49 s (ladder) behind. Every
// stall also adds its length for good, so less hold-back needs a steady
// edge: a segment ending in a short part is not listed complete hard on
// the part before it (tail.go)
// and the source's parts wait for the rungs' (sync.go), which were the
// stalls at 0.6 s (3 of the old 0.2 s parts). At 0.75 s hls.js played
// the ladder 1.07-1.27 s behind without a stall (node TestStockPlayers).
func DefaultHoldBack(partTarget time.Duration) time.Duration { return 3 * partTarget }

// ServerControl is the EXT-X-SERVER-CONTROL value; identical in every
// media playlist of a stream because it only depends on the config
// (App. B.1).
func ServerControl(td int, partTarget, holdBack time.Duration) string {
	if holdBack == 0 {
		holdBack = DefaultHoldBack(partTarget)
	}
	// §4.4.3.8: at least 3 × PART-TARGET, as listed (mediaSecs: up to
	// 2 µs over), in whole milliseconds rounded up.
	if minHB := 3 * (partTarget + 2*time.Microsecond); holdBack < minHB {
		holdBack = (minHB + time.Millisecond - 1).Truncate(time.Millisecond)
	}
	// §4.4.3.8: CAN-SKIP-UNTIL at least 6 × target duration.
	return fmt.Sprintf("CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=%d.0,PART-HOLD-BACK=%s", 6*td, strconv.FormatFloat(holdBack.Seconds(), 'f', 3, 64))
}

// MediaPlaylist renders an LL-HLS media playlist of s.
func MediaPlaylist(s cmaf.Snapshot, o MediaOptions) []byte {
	var b strings.Builder
	td := TargetDuration(s)
	pt := s.Info.PartTarget
	b.WriteString("#EXTM3U\n")
	// EXT-X-SKIP needs version 9 (§4.4.5.2); EXT-X-MAP with fMP4 ≥ 6.
	b.WriteString("#EXT-X-VERSION:9\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", td)
	fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:%s\n", ServerControl(ConfiguredTD(s.Info.SegmentTarget), pt, o.PartHoldBack))
	// §4.4.3.7: PART-INF whenever parts exist.
	// Listed as the parts' durations are (mediaSecs), so that a part of
	// exactly the target is not listed longer than it.
	fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%s\n", mediaSecs(pt))
	segs := s.Segments
	if len(segs) == 0 {
		fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", s.NextMSN)
	} else {
		fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", segs[0].MSN)
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", segs[0].DiscontinuitySeq)
	}
	// Complete segments only appear with EXTINF; the open one only as
	// parts.
	skip := 0
	if o.Skip {
		// §6.2.5.1: skip the segments that start more than CAN-SKIP-UNTIL
		// before the end of the playlist.
		var fromEnd time.Duration
		boundary := time.Duration(6*td) * time.Second
		for i := len(segs) - 1; i >= 0; i-- {
			fromEnd += segs[i].Duration
			if fromEnd > boundary {
				// Segments [0, i] are at least partly beyond the boundary;
				// skip the ones entirely beyond it.
				skip = i
				break
			}
		}
		for skip > 0 && !segs[skip-1].Complete {
			skip--
		}
		if skip > 0 {
			fmt.Fprintf(&b, "#EXT-X-SKIP:SKIPPED-SEGMENTS=%d\n", skip)
		}
	}
	// Parts are listed for the segments in the last 3 target durations
	// (§4.4.4.9: older parts may be removed).
	partsFrom := len(segs)
	var acc time.Duration
	for i := len(segs) - 1; i >= 0; i-- {
		partsFrom = i
		acc += segs[i].Duration
		if acc >= time.Duration(3*td)*time.Second {
			break
		}
	}
	var lastInit uint64
	for i := skip; i < len(segs); i++ {
		sg := segs[i]
		if sg.Discontinuity && i > 0 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if i == skip || sg.InitID != lastInit {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s%s\"\n", o.Prefix, cmaf.InitName(sg.InitID))
			lastInit = sg.InitID
		}
		// App. B.1: PROGRAM-DATE-TIME on every segment.
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", programDateTime(sg.Wall, s.Info.Kind))
		if i >= partsFrom {
			for _, p := range sg.Parts {
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%s,URI=\"%s%s\"", mediaSecs(p.Duration), o.Prefix, cmaf.PartName(sg.MSN, p.Index))
				if p.Independent {
					b.WriteString(",INDEPENDENT=YES")
				}
				b.WriteByte('\n')
			}
		}
		if sg.Gap {
			// RFC 8216bis §4.4.4.7: the rendition does not have this
			// segment (its encoder was restarting or behind real time);
			// the number keeps MSN N the same instant in every
			// rendition. Players do not load it (its URI serves DASH
			// players a still picture: cmaf.Track.GapFill).
			b.WriteString("#EXT-X-GAP\n")
		}
		if sg.Complete {
			fmt.Fprintf(&b, "#EXTINF:%s,\n%s%s\n", mediaSecs(sg.Duration), o.Prefix, cmaf.SegmentName(sg.MSN))
		}
	}
	if !s.Ended {
		// §6.2.6: hint the part being written; its request is held and
		// answered as soon as it is complete.
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s%s\"\n", o.Prefix, cmaf.PartName(s.NextMSN, s.NextPart))
	}
	for _, r := range o.Reports {
		// App. B.1 / §4.4.5.4: where every other rendition is.
		if r.LastPart >= 0 {
			fmt.Fprintf(&b, "#EXT-X-RENDITION-REPORT:URI=\"%s\",LAST-MSN=%d,LAST-PART=%d\n", r.URI, r.LastMSN, r.LastPart)
		} else {
			fmt.Fprintf(&b, "#EXT-X-RENDITION-REPORT:URI=\"%s\",LAST-MSN=%d\n", r.URI, r.LastMSN)
		}
	}
	if s.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// Variant is one video rendition of the multivariant playlist.
type Variant struct {
	URI   string
	Video cmaf.TrackInfo
	Audio *cmaf.TrackInfo // nil: no audio
	// AudioURI is the media playlist of the audio rendition of group
	// AudioGroup, named AudioName (default Name). Variants may share a
	// group (the source and the transcoder's "aac" audio); the group is
	// listed once, from its first variant.
	AudioURI   string
	AudioGroup string
	AudioName  string
	Name       string
	// Bandwidth and AverageBandwidth in bit/s of video+audio.
	Bandwidth, AverageBandwidth int
}

// Multivariant renders the multivariant playlist. Audio is an EXT-X-MEDIA
// rendition group (TYPE=AUDIO), listed once however many variants share
// it: with a transcoder, every variant uses its AAC-only rendition (Apple
// HLS authoring spec: AAC, not Opus); without one, the source its own
// Opus track.
func Multivariant(vs []Variant) []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	groups := map[string]bool{}
	for _, v := range vs {
		if v.Audio == nil || groups[v.AudioGroup] {
			continue
		}
		groups[v.AudioGroup] = true
		name := v.AudioName
		if name == "" {
			name = v.Name
		}
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"%s\",NAME=\"%s\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"%d\",URI=\"%s\"\n",
			v.AudioGroup, name, max(v.Audio.Channels, 1), v.AudioURI)
	}
	// §4.4.6.2 CLOSED-CAPTIONS: with captions in no variant every
	// EXT-X-STREAM-INF says NONE. Shaka Player, told nothing, probes
	// segments for in-band captions at load and picks the open LL-HLS
	// segment, which has parts but no URI yet: its load failed with
	// "Cannot read properties of undefined (reading 'match')" on every
	// stream opened in its first few segments. Captions the publisher
	// sends (hasCaptions in origin/cmaf) are a CLOSED-CAPTIONS group,
	// §4.4.6.1 INSTREAM-ID="CC1".
	captions := false
	for _, v := range vs {
		captions = captions || v.Video.Captions
	}
	if captions {
		b.WriteString("#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID=\"CC1\"\n")
	}
	for _, v := range vs {
		codecs := v.Video.Codec
		if v.Audio != nil {
			codecs += "," + v.Audio.Codec
		}
		fr := v.Video.FrameRate
		if fr <= 0 {
			fr = 30
		}
		// Multivariant checklist: BANDWIDTH, AVERAGE-BANDWIDTH, CODECS,
		// RESOLUTION, FRAME-RATE on every variant (§4.4.6.2).
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"%s\"", v.Bandwidth, v.AverageBandwidth, codecs)
		if v.Video.Width > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.Video.Width, v.Video.Height)
		}
		if v.Video.Kind != cmaf.Audio {
			// §4.4.6.2: FRAME-RATE describes video; an audio-only
			// stream's one variant has none.
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", fr)
		}
		if v.Audio != nil {
			fmt.Fprintf(&b, ",AUDIO=\"%s\"", v.AudioGroup)
		}
		switch {
		case !captions:
			b.WriteString(",CLOSED-CAPTIONS=NONE")
		case v.Video.Captions:
			b.WriteString(",CLOSED-CAPTIONS=\"cc\"")
		}
		fmt.Fprintf(&b, "\n%s\n", v.URI)
	}
	return []byte(b.String())
}

// programDateTime writes a segment's EXT-X-PROGRAM-DATE-TIME (§4.4.4.6)
// to the millisecond, which is all a browser's Date keeps, rounded so
// that an audio playlist never places its media later than the video's:
// video dates round up, audio dates round down and a millisecond more.
//
// Why: hls.js places an alternative audio playlist on the main one's
// timeline by the difference of their dates (alignMediaPlaylistByPDT),
// at every reload. AAC segments are whole 1024-sample frames, so their
// dates are rarely whole milliseconds, and truncating both gave the
// audio a random shift of up to ±1 ms per reload. Shifted later, a part
// hls.js had loaded ended (by the playlist) a fraction of a millisecond
// after the audio it had buffered; it then took the part at its buffer's
// end for one already loaded ("loop loading") and stopped loading audio
// until the video ran dry: on the x264 ladder stock hls.js stalled with
// its audio buffer ending a second or more before its video (node
// TestStockPlayers, hls.js debug log). Placed up to 2 ms early instead,
// the next part always starts at or before the buffered audio's end.
// The dates stay within 2 ms of the capture time.
func programDateTime(wall time.Time, kind cmaf.Kind) string {
	w := wall.UTC()
	if kind == cmaf.Audio {
		w = w.Truncate(time.Millisecond).Add(-time.Millisecond)
	} else if r := w.Truncate(time.Millisecond); r.Before(w) {
		w = r.Add(time.Millisecond)
	}
	return w.Format("2006-01-02T15:04:05.000Z07:00")
}
