package manifestrules

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// CheckHLS checks the multivariant playlist at masterURL, every media
// playlist it names, and fetches every init segment, segment and part
// they list.
func CheckHLS(ctx context.Context, masterURL string, get Getter, exp Expect) Errors {
	var errs Errors
	code, body, err := get(ctx, masterURL)
	if err != nil || code != 200 {
		errs.add("multivariant playlist %s: %d %v", masterURL, code, err)
		return errs
	}
	var mv playlist.Multivariant
	if err := mv.Unmarshal(body); err != nil {
		errs.add("rfc8216bis §4.4.6: third-party parser: %v\n%s", err, body)
		return errs
	}
	groups := map[string][]*playlist.MultivariantRendition{}
	ccGroups := map[string]bool{}
	for _, r := range mv.Renditions {
		switch r.Type {
		case playlist.MultivariantRenditionTypeClosedCaptions:
			ccGroups[r.GroupID] = true
			if r.URI != nil {
				errs.add("rfc8216bis §4.4.6.1: CLOSED-CAPTIONS rendition %q with a URI", r.Name)
			}
			if r.InStreamID == nil {
				errs.add("rfc8216bis §4.4.6.1: CLOSED-CAPTIONS rendition %q without INSTREAM-ID", r.Name)
			}
		default:
			groups[r.GroupID] = append(groups[r.GroupID], r)
		}
	}
	type mediaPL struct {
		uri, rend string
		bw        int
	}
	var media []mediaPL
	seen := map[string]bool{}
	addMedia := func(uri string, bw int) {
		u, err := resolve(masterURL, uri)
		if err != nil {
			errs.add("rfc8216bis §4.4.6.2: URI %q: %v", uri, err)
			return
		}
		if !seen[u] {
			seen[u] = true
			media = append(media, mediaPL{uri: u, rend: rendition(uri), bw: bw})
		}
	}
	if len(mv.Variants) == 0 {
		errs.add("rfc8216bis §4.4.6.2: no EXT-X-STREAM-INF")
	}
	for _, v := range mv.Variants {
		name := v.URI
		// §4.4.6.2: BANDWIDTH is required; AVERAGE-BANDWIDTH, CODECS,
		// RESOLUTION and FRAME-RATE are what players choose on (Apple's
		// authoring rules: every variant carries them).
		if v.Bandwidth <= 0 {
			errs.add("rfc8216bis §4.4.6.2: %s BANDWIDTH %d", name, v.Bandwidth)
		}
		if v.AverageBandwidth == nil {
			errs.add("rfc8216bis §4.4.6.2 / Apple HLS authoring: %s without AVERAGE-BANDWIDTH", name)
		} else if *v.AverageBandwidth > v.Bandwidth {
			errs.add("rfc8216bis §4.4.6.2: %s AVERAGE-BANDWIDTH %d above BANDWIDTH %d", name, *v.AverageBandwidth, v.Bandwidth)
		}
		if capRate := exp.RateCaps[rendition(name)]; capRate > 0 && v.Bandwidth < capRate {
			errs.add("rfc8216bis §4.4.6.2: %s BANDWIDTH %d below the rung's rate cap %d: a player cannot budget on it", name, v.Bandwidth, capRate)
		}
		var video, audio int
		for _, c := range v.Codecs {
			switch {
			case codecOK(c, "video"):
				video++
			case codecOK(c, "audio"):
				audio++
			default:
				errs.add("rfc8216bis §4.4.6.2 / RFC 6381: %s CODECS names %q", name, c)
			}
		}
		if video > 0 {
			if v.Resolution == "" {
				errs.add("rfc8216bis §4.4.6.2 / Apple HLS authoring: %s without RESOLUTION", name)
			}
			if v.FrameRate == nil || *v.FrameRate <= 0 || *v.FrameRate > maxFrameRate {
				errs.add("rfc8216bis §4.4.6.2 / Apple HLS authoring: %s FRAME-RATE %v is not a frame rate", name, fmtPtr(v.FrameRate))
			}
			// §4.4.6.2 CLOSED-CAPTIONS: NONE when there are none; left
			// out, a player probes the media for captions (Shaka Player
			// then requests the open LL-HLS segment, which has no URI).
			if v.ClosedCaptions == "" {
				errs.add("rfc8216bis §4.4.6.2 / Apple HLS authoring: %s without CLOSED-CAPTIONS (NONE when there are none)", name)
			} else if v.ClosedCaptions != "NONE" && !ccGroups[v.ClosedCaptions] {
				errs.add("rfc8216bis §4.4.6.2: %s CLOSED-CAPTIONS group %q is not defined", name, v.ClosedCaptions)
			}
		}
		if video == 0 && (v.FrameRate != nil || v.Resolution != "") {
			errs.add("rfc8216bis §4.4.6.2: %s has no video but a RESOLUTION or FRAME-RATE", name)
		}
		if v.Audio != "" {
			rs, ok := groups[v.Audio]
			if !ok {
				errs.add("rfc8216bis §4.4.6.2.1: %s AUDIO group %q is not defined", name, v.Audio)
			}
			if audio == 0 {
				errs.add("rfc8216bis §4.4.6.2: %s CODECS %v does not name its AUDIO group's codec", name, v.Codecs)
			}
			for _, r := range rs {
				if r.URI != nil {
					addMedia(*r.URI, 0)
				}
			}
		}
		addMedia(v.URI, v.Bandwidth)
	}

	var control string
	var clocks []float64                // PROGRAM-DATE-TIME − tfdt of each playlist's newest segment, s
	variantDates := map[int]time.Time{} // media sequence number → PROGRAM-DATE-TIME
	misaligned := map[string]string{}
	for i, m := range media {
		var others []string
		for j, o := range media {
			if j != i {
				others = append(others, o.uri)
			}
		}
		clock := math.NaN()
		dates := map[int]time.Time{}
		sc := checkMediaPlaylist(ctx, m.uri, m.bw, others, get, &errs, &clock, dates)
		clocks = append(clocks, clock)
		if m.bw > 0 { // a variant's (video) playlist, not an audio group's
			for msn, d := range dates {
				if first, ok := variantDates[msn]; !ok {
					variantDates[msn] = d
				} else if diff := d.Sub(first); diff > 20*time.Millisecond || diff < -20*time.Millisecond {
					misaligned[m.uri] = fmt.Sprintf("segment %d dated %v off the first variant's", msn, diff)
				}
			}
		}
		if i > 0 && sc != control {
			errs.add("rfc8216bis App. B.1: %s SERVER-CONTROL %q differs from %q", m.uri, sc, control)
		}
		if i == 0 {
			control = sc
		}
	}
	// rfc8216bis §6.2.4 (matching content in Variant Streams has matching
	// timestamps) and §4.4.3.2: a segment's media sequence number names
	// the same stretch of the presentation in every variant. Shaka Player
	// keeps one number → start time map for all video playlists of a live
	// stream: a rung numbered from its own start, two segments after the
	// source's, was placed two seconds off and its dates with it.
	for u, why := range misaligned {
		errs.add("rfc8216bis §6.2.4: %s %s: media sequence numbers do not line up across variants", u, why)
	}
	// §4.4.4.6 with §4.4.6.2.1 / Apple HLS authoring (renditions share
	// one timeline): every playlist of a stream dates its media by one
	// clock, so PROGRAM-DATE-TIME minus the media time (tfdt) is the same
	// in all of them. Players map dates through whichever rendition they
	// play (Shaka Player: the video playlist it loaded last); a rung off
	// the source by a frame gives a frame two dates. Within 10 ms: dates
	// are kept to the millisecond, audio's rounded down a millisecond
	// more (origin/hls programDateTime).
	for i, c := range clocks {
		if math.IsNaN(c) || math.IsNaN(clocks[0]) {
			continue
		}
		if d := c - clocks[0]; math.Abs(d) > 0.010 {
			errs.add("rfc8216bis §4.4.4.6: %s dates its media %+.3f s off %s (PROGRAM-DATE-TIME − tfdt of the newest segment)", media[i].uri, d, media[0].uri)
		}
	}
	return errs
}

func fmtPtr(f *float64) string {
	if f == nil {
		return "missing"
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

// attr returns an attribute of a tag line.
func attr(line, key string) string {
	_, rest, _ := strings.Cut(line, ":")
	for _, kv := range splitAttrs(rest) {
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// splitAttrs splits an attribute list at commas outside quotes.
func splitAttrs(s string) []string {
	var out []string
	q := false
	start := 0
	for i, c := range s {
		switch {
		case c == '"':
			q = !q
		case c == ',' && !q:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func number(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// checkMediaPlaylist applies the LL-HLS rules (SPECS.md § LL-HLS) to one
// media playlist, fetches what it lists, and returns its SERVER-CONTROL.
// bw is its variant's BANDWIDTH (0 for an audio rendition).
func checkMediaPlaylist(ctx context.Context, u string, bw int, others []string, get Getter, errs *Errors, clock *float64, dates map[int]time.Time) string {
	code, body, err := get(ctx, u)
	if err != nil || code != 200 {
		errs.add("media playlist %s: %d %v", u, code, err)
		return ""
	}
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		errs.add("rfc8216bis §4.4.3: %s: third-party parser: %v\n%s", u, err, body)
		return ""
	}
	ls := strings.Split(strings.TrimSpace(string(body)), "\n")
	tag := func(name string) (string, bool) {
		for _, l := range ls {
			if strings.HasPrefix(l, name+":") {
				return l, true
			}
		}
		return "", false
	}
	if pl.Version < 6 {
		// rfc8216bis §8 (protocol version): EXT-X-MAP outside
		// I-frames-only playlists needs version 6.
		errs.add("rfc8216bis §8: %s EXT-X-VERSION %d < 6 with EXT-X-MAP", u, pl.Version)
	}
	td := float64(pl.TargetDuration)
	pi, ok := tag("#EXT-X-PART-INF")
	if !ok {
		errs.add("rfc8216bis §4.4.3.7: %s has parts but no EXT-X-PART-INF", u)
		return ""
	}
	partTarget := number(attr(pi, "PART-TARGET"))
	sc, ok := tag("#EXT-X-SERVER-CONTROL")
	if !ok {
		errs.add("rfc8216bis §4.4.3.8: %s without EXT-X-SERVER-CONTROL", u)
	} else {
		if attr(sc, "CAN-BLOCK-RELOAD") != "YES" {
			errs.add("rfc8216bis §4.4.3.8: %s CAN-BLOCK-RELOAD is not YES", u)
		}
		if phb := number(attr(sc, "PART-HOLD-BACK")); !(phb >= 3*partTarget-1e-9) {
			errs.add("rfc8216bis §4.4.3.8: %s PART-HOLD-BACK %v < 3 × PART-TARGET %v", u, phb, partTarget)
		}
		if csu := attr(sc, "CAN-SKIP-UNTIL"); csu != "" && !(number(csu) >= 6*td) {
			errs.add("rfc8216bis §4.4.3.8: %s CAN-SKIP-UNTIL %s < 6 × TARGETDURATION", u, csu)
		}
	}
	if pl.PreloadHint == nil && !pl.Endlist {
		errs.add("rfc8216bis §4.4.5.3: %s live without EXT-X-PRELOAD-HINT", u)
	}
	reported := map[string]bool{}
	for _, r := range pl.RenditionReport {
		if ru, err := resolve(u, r.URI); err == nil {
			reported[ru] = true
		}
	}
	if !pl.Endlist {
		for _, o := range others {
			if !reported[o] {
				errs.add("rfc8216bis App. B.1 / §4.4.5.4: %s has no EXT-X-RENDITION-REPORT for %s", u, o)
			}
		}
	}

	// Walk the lines: EXT-X-MAP, parts, segments, in order.
	var (
		mapURI    string
		timescale uint32
		pdt       bool
		prevEnd   float64   = -1 // tfdt + EXTINF of the segment before, in seconds
		segPDT    time.Time      // the PROGRAM-DATE-TIME of the segment being read
		segIndex  int            // segments before it in the playlist
		segParts  int
		sawSeg    bool // parts before the first EXTINF may begin mid-segment
		gapNext   bool
		prevPDT   time.Time // of the segment before, within a discontinuity sequence
		prevDur   float64   // its EXTINF
	)
	fetchInit := func(ref string) {
		iu, err := resolve(u, ref)
		if err != nil {
			errs.add("%s EXT-X-MAP %q: %v", u, ref, err)
			return
		}
		code, b, err := get(ctx, iu)
		if err != nil || code != 200 {
			errs.add("rfc8216bis §4.4.4.5: %s EXT-X-MAP %s: %d %v", u, iu, code, err)
			return
		}
		timescale = mdhdTimescale(b)
		if timescale == 0 {
			errs.add("ISO/IEC 14496-12 §8.4.2: %s init %s has no mdhd timescale", u, iu)
		}
	}
	type shortPart struct {
		ref string
		d   float64
	}
	var short *shortPart
	for i, l := range ls {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			if ref := attr(l, "URI"); ref != mapURI {
				mapURI = ref
				fetchInit(ref)
			}
		case strings.HasPrefix(l, "#EXT-X-DISCONTINUITY"):
			prevEnd, prevPDT = -1, time.Time{}
		case strings.HasPrefix(l, "#EXT-X-GAP"):
			gapNext = true
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
			pdt = true
			d, err := time.Parse(time.RFC3339Nano, l[len("#EXT-X-PROGRAM-DATE-TIME:"):])
			if err != nil {
				errs.add("rfc8216bis §4.4.4.6: %s bad EXT-X-PROGRAM-DATE-TIME %q", u, l)
			} else if !prevPDT.IsZero() {
				// §4.4.4.6: the date of a segment's first sample (to the
				// millisecond a browser keeps, origin/hls programDateTime); within
				// a discontinuity sequence dates advance as EXTINF does
				// (players place segments, and align the renditions, by
				// both: hls.js re-times fragments by the difference).
				// Within 10 ms: a lost audio frame (20 ms) fails it; the
				// transcoder's first AAC segment, dated by its own
				// samples before the video clock is known, is up to 7 ms
				// off the next (issue 12 notes, next step).
				if diff := d.Sub(prevPDT) - time.Duration(prevDur*float64(time.Second)); diff > 10*time.Millisecond || diff < -10*time.Millisecond {
					errs.add("rfc8216bis §4.4.4.6: %s PROGRAM-DATE-TIME %s is %v off the one before it plus its EXTINF", u, d.Format(time.RFC3339Nano), diff)
				}
			}
			prevPDT = d
			segPDT = d
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			d := number(attr(l, "DURATION"))
			ref := attr(l, "URI")
			// §4.4.4.9: no part longer than PART-TARGET; all but the
			// last of a segment at least 85 % of it.
			if d > partTarget+1e-9 {
				errs.add("rfc8216bis §4.4.4.9: %s part %s lasts %v > PART-TARGET %v", u, ref, d, partTarget)
			}
			last := i+1 < len(ls) && !strings.HasPrefix(ls[i+1], "#EXT-X-PART:")
			// Checked with the next part, which has the frame that
			// would have followed.
			checkShort := short
			short = nil
			if !last && attr(l, "INDEPENDENT") != "YES" && d < 0.85*partTarget-1e-9 {
				short = &shortPart{ref, d}
			}
			if sawSeg && segParts == 0 && attr(l, "INDEPENDENT") != "YES" && attr(l, "GAP") != "YES" {
				errs.add("rfc8216bis §4.4.4.9: %s first part of a segment %s is not INDEPENDENT=YES", u, ref)
			}
			segParts++
			if attr(l, "GAP") == "YES" {
				continue
			}
			pu, err := resolve(u, ref)
			if err != nil {
				errs.add("%s part %q: %v", u, ref, err)
				continue
			}
			code, body, err := get(ctx, pu)
			if err != nil || code != 200 {
				errs.add("rfc8216bis §4.4.4.9 (a listed part is served): %s part %s: %d %v", u, pu, code, err)
			}
			if checkShort != nil {
				// §4.4.4.9: a part shorter than 85 % of PART-TARGET
				// breaks the rule, unless no frame boundary lay inside
				// the window: its next frame would have taken it past
				// PART-TARGET (a frame after a dropped one; see
				// origin/cmaf partWindow).
				next, ok := firstSampleTicks(body)
				if !ok || timescale == 0 || checkShort.d+float64(next)/float64(timescale) <= partTarget+1e-9 {
					errs.add("rfc8216bis §4.4.4.9: %s part %s lasts %v < 85 %% of PART-TARGET, and its next frame (%d ticks) fit", u, checkShort.ref, checkShort.d, next)
				}
			}
		case strings.HasPrefix(l, "#EXTINF:"):
			d := number(strings.TrimSuffix(strings.SplitN(l[len("#EXTINF:"):], ",", 2)[0], ","))
			if math.Round(d) > td {
				errs.add("rfc8216bis §4.4.3.1: %s EXTINF %v > TARGETDURATION %v", u, d, td)
			}
			if !pdt {
				errs.add("rfc8216bis App. B.1: %s segment without EXT-X-PROGRAM-DATE-TIME", u)
				prevPDT = time.Time{}
			}
			prevDur = d
			if !pdt {
				segPDT = time.Time{}
			} else {
				dates[int(pl.MediaSequence)+segIndex] = segPDT
			}
			segIndex++
			pdt, segParts, sawSeg = false, 0, true
			if i+1 >= len(ls) {
				errs.add("rfc8216bis §4.4.4.1: %s EXTINF without a URI", u)
				continue
			}
			gap := gapNext
			gapNext = false
			if gap {
				prevEnd = -1
				continue
			}
			su, err := resolve(u, ls[i+1])
			if err != nil {
				errs.add("%s segment %q: %v", u, ls[i+1], err)
				continue
			}
			code, b, err := get(ctx, su)
			if err != nil || code != 200 {
				errs.add("rfc8216bis §4.4.4.1 (a listed segment is served): %s segment %s: %d %v", u, su, code, err)
				prevEnd = -1
				continue
			}
			// §4.4.4.1: EXTINF is the segment's duration, so each
			// segment starts where the one before it ended (no hole for
			// a player to jump).
			if dec, ok := tfdt(b); ok && timescale > 0 {
				start := float64(dec) / float64(timescale)
				if prevEnd >= 0 && math.Abs(start-prevEnd) > 0.05 {
					errs.add("rfc8216bis §4.4.4.1: %s segment %s starts at %.3f s, the one before it ended at %.3f s (EXTINF)", u, su, start, prevEnd)
				}
				prevEnd = start + d
				if !segPDT.IsZero() {
					*clock = float64(segPDT.UnixNano())/1e9 - start
				}
			} else {
				errs.add("ISO/IEC 14496-12 §8.8.12: %s segment %s has no tfdt", u, su)
				prevEnd = -1
			}
			// rfc8216bis §4.4.6.2: the peak segment bit rate stays
			// within BANDWIDTH (SPECS.md: below 125 % of it).
			if bw > 0 && d >= 0.5 {
				if rate := float64(len(b)) * 8 / d; rate > 1.25*float64(bw) {
					errs.add("rfc8216bis §4.4.6.2: %s segment %s runs at %.0f bit/s, over 125 %% of BANDWIDTH %d", u, su, rate, bw)
				}
			}
		}
	}
	if pl.PreloadHint != nil {
		if _, err := resolve(u, pl.PreloadHint.URI); err != nil {
			errs.add("rfc8216bis §4.4.5.3: %s preload hint %q: %v", u, pl.PreloadHint.URI, err)
		}
	}
	return sc
}

// mdhdTimescale reads the media timescale of the first track of an init
// segment (ISO/IEC 14496-12 §8.4.2: moov/trak/mdia/mdhd).
func mdhdTimescale(b []byte) uint32 {
	path := []string{"moov", "trak", "mdia", "mdhd"}
	for depth := 0; len(b) >= 8; {
		size := int(binary.BigEndian.Uint32(b))
		if size < 8 || size > len(b) {
			return 0
		}
		if string(b[4:8]) != path[depth] {
			b = b[size:]
			continue
		}
		body := b[8:size]
		if depth == len(path)-1 {
			if len(body) >= 24 && body[0] == 1 {
				return binary.BigEndian.Uint32(body[20:])
			}
			if len(body) >= 16 {
				return binary.BigEndian.Uint32(body[12:])
			}
			return 0
		}
		b, depth = body, depth+1
	}
	return 0
}

// firstSampleTicks returns the duration of the first sample of a CMAF
// chunk, in its track's timescale (ISO/IEC 14496-12 §8.8.8 trun, or the
// tfhd default).
func firstSampleTicks(b []byte) (uint32, bool) {
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil || len(parts) == 0 || len(parts[0].Tracks) == 0 || len(parts[0].Tracks[0].Samples) == 0 {
		return 0, false
	}
	return parts[0].Tracks[0].Samples[0].Duration, true
}

// HLSClock returns the clock a media playlist dates its media by:
// PROGRAM-DATE-TIME minus the media time (tfdt, s) of its newest segment,
// the same in every playlist of a stream (CheckHLS). The date a player
// should give media time m of a rendition is HLSClock + m. Tests use it
// to tell a player's mapping of dates from the node's.
func HLSClock(ctx context.Context, mediaURL string, get Getter) (float64, error) {
	var errs Errors
	clock := math.NaN()
	checkMediaPlaylist(ctx, mediaURL, 0, nil, get, &errs, &clock, map[int]time.Time{})
	if math.IsNaN(clock) {
		return 0, fmt.Errorf("%s: no dated segment with a tfdt (%v)", mediaURL, errs)
	}
	return clock, nil
}
