// Package manifestrules checks the manifests the node serves (an LL-DASH
// MPD, an LL-HLS multivariant playlist and its media playlists) against
// the rules a conforming player relies on, each named by the section of
// ISO/IEC 23009-1, DASH-IF IOP v5 or draft-pantos-hls-rfc8216bis (and
// Apple's HLS authoring rules) it comes from, and fetches every object a
// manifest lists: a segment listed is a segment served.
//
// The parsers are third-party ones (Eyevinn/dash-mpd, bluenviron/gohlslib),
// so what the node writes is read as another program reads it. A check
// returns every broken rule, not just the first, as "§section: what".
//
//	errs := manifestrules.CheckMPD(ctx, mpdURL, body, manifestrules.HTTPGet(client), manifestrules.Expect{})
package manifestrules

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Getter fetches one URL and returns its status and body.
type Getter func(ctx context.Context, u string) (status int, body []byte, err error)

// HTTPGet is a Getter over c (nil: http.DefaultClient).
func HTTPGet(c *http.Client) Getter {
	if c == nil {
		c = http.DefaultClient
	}
	return func(ctx context.Context, u string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, nil, err
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
}

// Expect is what the caller knows the manifests must say beyond the
// rules.
type Expect struct {
	// RateCaps maps a rendition name (the node's "source", "720p", …) to
	// the configured video bit rate of its encoder (bit/s). Its
	// @bandwidth and the BANDWIDTH of its variant must be at least that:
	// a player budgets on them (ISO/IEC 23009-1 §5.3.5.2,
	// rfc8216bis §4.4.6.2).
	RateCaps map[string]int
}

// Errors is the list of broken rules of one check.
type Errors []string

func (e *Errors) add(format string, args ...any) {
	*e = append(*e, fmt.Sprintf(format, args...))
}

// resolve returns ref relative to base.
func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}

// rendition is the node's rendition name of a Representation id
// ("720p-video" → "720p") or of a media playlist path
// (".../720p/video.m3u8" → "720p").
func rendition(s string) string {
	if i := strings.LastIndexByte(s, '-'); i > 0 && !strings.Contains(s, "/") {
		return s[:i]
	}
	parts := strings.Split(strings.TrimSuffix(s, "/"), "/")
	if len(parts) >= 2 {
		return parts[len(parts)-2]
	}
	return s
}

var (
	// RFC 6381 §3.3 as the node writes H.264: avc1.PPCCLL (hex).
	avcCodec = regexp.MustCompile(`^avc[13]\.[0-9A-Fa-f]{6}$`)
	// ISO/IEC 23009-1 §5.3.12.2 FrameRateType: [0-9]+(/[1-9][0-9]*)?
	frameRateRE = regexp.MustCompile(`^[0-9]+(/[1-9][0-9]*)?$`)
)

// codecOK says whether c is a codec string a browser's MSE takes for
// the kind of track (RFC 6381; ISO/IEC 14496-15 for avc1, ISO/IEC
// 14496-3 for mp4a.40.2, the Opus in ISOBMFF mapping for "opus").
func codecOK(c, kind string) bool {
	switch kind {
	case "video":
		return avcCodec.MatchString(c)
	case "audio":
		return c == "mp4a.40.2" || c == "mp4a.40.5" || c == "opus"
	}
	return false
}

// frameRate parses ISO/IEC 23009-1 §5.3.12.2 FrameRateType.
func frameRate(s string) (float64, bool) {
	if !frameRateRE.MatchString(s) {
		return 0, false
	}
	n, d, _ := strings.Cut(s, "/")
	num, err := strconv.ParseFloat(n, 64)
	if err != nil {
		return 0, false
	}
	den := 1.0
	if d != "" {
		if den, err = strconv.ParseFloat(d, 64); err != nil || den == 0 {
			return 0, false
		}
	}
	return num / den, true
}

// maxFrameRate bounds a plausible video frame rate: a figure above it is
// a timescale written as a rate (the 90000 of a 90 kHz encoder).
const maxFrameRate = 240

// tfdt returns the baseMediaDecodeTime of the first track fragment of a
// CMAF segment or chunk (ISO/IEC 14496-12 §8.8.12), walking moof/traf.
func tfdt(b []byte) (uint64, bool) {
	return findTfdt(b, 0)
}

func findTfdt(b []byte, depth int) (uint64, bool) {
	for len(b) >= 8 {
		size := int(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hdr := 8
		if size == 1 && len(b) >= 16 {
			size, hdr = int(binary.BigEndian.Uint64(b[8:])), 16
		}
		if size < hdr || size > len(b) {
			return 0, false
		}
		body := b[hdr:size]
		switch typ {
		case "moof", "traf":
			if depth < 2 {
				if v, ok := findTfdt(body, depth+1); ok {
					return v, true
				}
			}
		case "tfdt":
			if len(body) >= 8 && body[0] == 1 && len(body) >= 12 {
				return binary.BigEndian.Uint64(body[4:]), true
			}
			if len(body) >= 8 {
				return uint64(binary.BigEndian.Uint32(body[4:])), true
			}
		}
		b = b[size:]
	}
	return 0, false
}
