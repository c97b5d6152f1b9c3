package ingest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// maxOfferSize bounds a POSTed offer (RFC 9725 §5: limit what a client can
// make the server parse).
const maxOfferSize = 64 << 10

// offerSummary is what checkOffer learned about an offer.
type offerSummary struct {
	// Video and Audio report whether the offer carries an H.264 / Opus
	// section this node accepts.
	Video, Audio bool
	// VideoProfiles lists the profile-level-ids kept.
	VideoProfiles []string
	// Mids in m-line order, and Kinds alongside ("video", "audio").
	Mids  []string
	Kinds []string
}

// acceptedH264Profiles are the profile_idc values ingested: baseline
// (incl. constrained baseline), main, high (SPECS "Media from WebRTC
// publishers": 42e01f, 42001f, 4d001f, 640c1f).
var acceptedH264Profiles = map[byte]string{0x42: "baseline", 0x4d: "main", 0x64: "high"}

type codecLine struct {
	pt    string
	name  string // as offered
	rate  string
	fmtp  string
	canon string // human description
}

// checkOffer parses a WHIP offer (RFC 9725 §4.2) and returns it with every
// payload type this node does not ingest removed, so that pion cannot fall
// back to matching a codec on its mime type alone (FACTS: it accepted
// packetization-mode=0 that way). Errors wrap ErrBadSDP (cannot parse) or
// ErrUnservable (parsed, but nothing this node can take) and say why.
func checkOffer(raw []byte) (string, offerSummary, error) {
	var sum offerSummary
	if len(raw) == 0 {
		return "", sum, fmt.Errorf("%w: empty body", ErrBadSDP)
	}
	if len(raw) > maxOfferSize {
		return "", sum, fmt.Errorf("%w: offer larger than %d bytes", ErrBadSDP, maxOfferSize)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(raw); err != nil {
		return "", sum, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return "", sum, fmt.Errorf("%w: offer has no media sections", ErrUnservable)
	}
	var videoSeen, audioSeen int
	var rejected []string
	for i, md := range sd.MediaDescriptions {
		kind := strings.ToLower(md.MediaName.Media)
		mid, _ := md.Attribute("mid")
		sum.Mids = append(sum.Mids, mid)
		sum.Kinds = append(sum.Kinds, kind)
		switch kind {
		case "video":
			videoSeen++
		case "audio":
			audioSeen++
		default:
			return "", sum, fmt.Errorf("%w: offer has a %q section; this node ingests one H.264 video and one Opus audio track", ErrUnservable, md.MediaName.Media)
		}
		// RFC 9725 §4.4.2: one MediaStream, at most one track per kind.
		if videoSeen > 1 || audioSeen > 1 {
			return "", sum, fmt.Errorf("%w: offer has more than one %s section; WHIP allows at most one track per kind (RFC 9725 §4.4.2)", ErrUnservable, kind)
		}
		// The answer is recvonly: the publisher must send.
		for _, dir := range []string{"recvonly", "inactive"} {
			if _, ok := md.Attribute(dir); ok {
				return "", sum, fmt.Errorf("%w: %s section %d is %s; a WHIP publisher must offer sendonly", ErrUnservable, kind, i, dir)
			}
		}
		if setup, ok := attr(&sd, md, "setup"); ok && setup == "active" {
			return "", sum, fmt.Errorf("%w: offer has a=setup:active; a WHIP offer must be a=setup:actpass", ErrUnservable)
		}
		keep, offered := filterCodecs(md, kind)
		if len(keep) == 0 {
			rejected = append(rejected, fmt.Sprintf("%s %s only", kind, strings.Join(offered, ", ")))
			continue
		}
		if kind == "video" {
			sum.Video = true
			for _, c := range keep {
				if c.name == "H264" {
					sum.VideoProfiles = append(sum.VideoProfiles, fmtpParam(c.fmtp, "profile-level-id"))
				}
			}
		} else {
			sum.Audio = true
		}
		rewriteCodecs(md, keep)
	}
	if len(rejected) > 0 {
		return "", sum, fmt.Errorf("%w: offer has %s; this node ingests H.264 (packetization-mode=1) and Opus", ErrUnservable, strings.Join(rejected, " and "))
	}
	out, err := sd.Marshal()
	if err != nil {
		return "", sum, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	return string(out), sum, nil
}

// attr looks an attribute up at media level, then at session level.
func attr(sd *sdp.SessionDescription, md *sdp.MediaDescription, key string) (string, bool) {
	if v, ok := md.Attribute(key); ok {
		return v, true
	}
	return sd.Attribute(key)
}

// codecsOf lists the payload types of md with their rtpmap and fmtp.
func codecsOf(md *sdp.MediaDescription) []codecLine {
	byPT := map[string]*codecLine{}
	var order []string
	for _, f := range md.MediaName.Formats {
		byPT[f] = &codecLine{pt: f}
		order = append(order, f)
	}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			pt, rest, ok := strings.Cut(a.Value, " ")
			if c := byPT[pt]; ok && c != nil {
				name, rate, _ := strings.Cut(strings.TrimSpace(rest), "/")
				c.name = name
				c.rate, _, _ = strings.Cut(rate, "/")
			}
		case "fmtp":
			pt, rest, ok := strings.Cut(a.Value, " ")
			if c := byPT[pt]; ok && c != nil {
				c.fmtp = strings.TrimSpace(rest)
			}
		}
	}
	out := make([]codecLine, 0, len(order))
	for _, pt := range order {
		out = append(out, *byPT[pt])
	}
	return out
}

// fmtpParam returns the value of key in an fmtp parameter list
// ("a=1;b=2"), matching the key case-insensitively.
func fmtpParam(fmtp, key string) string {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// h264Acceptable checks an H.264 fmtp: packetization-mode=1 and a
// profile_idc this node ingests. RFC 6184 §8.1: a missing
// packetization-mode means 0 and a missing profile-level-id 42000a.
func h264Acceptable(fmtp string) (bool, string) {
	if fmtpParam(fmtp, "packetization-mode") != "1" {
		mode := fmtpParam(fmtp, "packetization-mode")
		if mode == "" {
			mode = "0"
		}
		return false, "H264 (packetization-mode=" + mode + ")"
	}
	plid := fmtpParam(fmtp, "profile-level-id")
	if plid == "" {
		plid = "42000a"
	}
	if len(plid) != 6 {
		return false, "H264 (profile-level-id=" + plid + ")"
	}
	idc, err := strconv.ParseUint(plid[:2], 16, 8)
	if err != nil {
		return false, "H264 (profile-level-id=" + plid + ")"
	}
	if _, ok := acceptedH264Profiles[byte(idc)]; !ok {
		return false, "H264 (profile-level-id=" + plid + ")"
	}
	return true, ""
}

// filterCodecs returns the codecs of md to keep (with names normalised:
// mime types compare case-insensitively, GStreamer sends "OPUS") and a
// description of everything offered, for the 422 body.
func filterCodecs(md *sdp.MediaDescription, kind string) ([]codecLine, []string) {
	all := codecsOf(md)
	var keep []codecLine
	kept := map[string]bool{}
	var offered []string
	seen := map[string]bool{}
	note := func(s string) {
		if !seen[s] {
			seen[s] = true
			offered = append(offered, s)
		}
	}
	for _, c := range all {
		name := strings.ToUpper(c.name)
		switch {
		case kind == "video" && name == "H264":
			if ok, why := h264Acceptable(c.fmtp); !ok {
				note(why)
				continue
			}
			c.name = "H264"
			keep = append(keep, c)
			kept[c.pt] = true
		case kind == "audio" && name == "OPUS":
			if c.rate != "48000" {
				note("Opus/" + c.rate)
				continue
			}
			c.name = "opus"
			keep = append(keep, c)
			kept[c.pt] = true
		case name == "RTX" || name == "RED" || name == "ULPFEC" || name == "FLEXFEC-03" || name == "CN" || name == "TELEPHONE-EVENT":
			// Helpers, never the main codec; RTX kept below when its
			// apt is kept.
		case c.name == "":
			note("payload type " + c.pt)
		default:
			note(c.name)
		}
	}
	// RTX (RFC 4588) for a kept payload type: NACK repairs arrive on it.
	for _, c := range all {
		if strings.EqualFold(c.name, "rtx") && kept[fmtpParam(c.fmtp, "apt")] {
			c.name = "rtx"
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 && len(offered) == 0 {
		offered = []string{"no codec"}
	}
	return keep, offered
}

// rewriteCodecs limits md to the payload types in keep.
func rewriteCodecs(md *sdp.MediaDescription, keep []codecLine) {
	kept := map[string]codecLine{}
	var formats []string
	for _, f := range md.MediaName.Formats {
		for _, c := range keep {
			if c.pt == f {
				kept[f] = c
				formats = append(formats, f)
			}
		}
	}
	md.MediaName.Formats = formats
	attrs := md.Attributes[:0]
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap", "fmtp", "rtcp-fb":
			pt, rest, _ := strings.Cut(a.Value, " ")
			c, ok := kept[pt]
			if !ok && !(a.Key == "rtcp-fb" && pt == "*") {
				continue
			}
			if a.Key == "rtpmap" {
				_, clock, _ := strings.Cut(rest, "/")
				a.Value = pt + " " + c.name + "/" + clock
			}
		}
		attrs = append(attrs, a)
	}
	md.Attributes = attrs
}

// startBitrateAnswer adds x-google-start-bitrate to every H.264 fmtp line of
// an answer, so Chromium starts near its target resolution (FACTS:
// 960×540 at once instead of 320×180).
func startBitrateAnswer(answer string, kbps int) string {
	if kbps <= 0 {
		return answer
	}
	lines := strings.Split(answer, "\r\n")
	h264 := map[string]bool{}
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "a=rtpmap:"); ok {
			pt, rest, _ := strings.Cut(v, " ")
			if strings.HasPrefix(strings.ToUpper(rest), "H264/") {
				h264[pt] = true
			}
		}
	}
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "a=fmtp:"); ok {
			pt, _, _ := strings.Cut(v, " ")
			if h264[pt] && !strings.Contains(l, "x-google-start-bitrate") {
				lines[i] = l + ";x-google-start-bitrate=" + strconv.Itoa(kbps)
			}
		}
	}
	return strings.Join(lines, "\r\n")
}
