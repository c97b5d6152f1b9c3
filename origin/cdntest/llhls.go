package cdntest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// PartRef names one LL-HLS part by its URI (relative to the playlist).
type PartRef struct {
	MSN   uint64
	Index int
	URI   string
}

var partURIRE = regexp.MustCompile(`part(\d+)\.(\d+)\.m4s`)

func parsePartURI(uri string) (PartRef, bool) {
	m := partURIRE.FindStringSubmatch(uri)
	if m == nil {
		return PartRef{}, false
	}
	msn, err1 := strconv.ParseUint(m[1], 10, 64)
	idx, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return PartRef{}, false
	}
	return PartRef{MSN: msn, Index: idx, URI: uri}, true
}

func attr(line, name string) string {
	i := strings.Index(line, name+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(name)+1:]
	if strings.HasPrefix(v, `"`) {
		v = v[1:]
		if j := strings.IndexByte(v, '"'); j >= 0 {
			return v[:j]
		}
		return v
	}
	if j := strings.IndexByte(v, ','); j >= 0 {
		return v[:j]
	}
	return v
}

// ParseParts returns the EXT-X-PART entries and the EXT-X-PRELOAD-HINT part
// of a media playlist.
func ParseParts(pl string) (parts []PartRef, hint PartRef, hasHint bool) {
	sc := bufio.NewScanner(strings.NewReader(pl))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			if p, ok := parsePartURI(attr(line, "URI")); ok {
				parts = append(parts, p)
			}
		case strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:") && attr(line, "TYPE") == "PART":
			hint, hasHint = parsePartURI(attr(line, "URI"))
		}
	}
	return parts, hint, hasHint
}

// Viewer is a minimal LL-HLS client that follows the live edge the way
// hls.js does in low-latency mode: a blocking playlist reload for the
// preload-hinted part, then every new part listed.
type Viewer struct {
	Client *http.Client
	// PlaylistURL is the media playlist (…/video.m3u8).
	PlaylistURL string
	// Fetched lists the part URLs downloaded, in order.
	Fetched []string
	// Playlists lists the blocking playlist URLs requested.
	Playlists []string
	// Bytes downloaded in parts.
	Bytes int64
}

func (v *Viewer) get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	res, err := v.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return string(b), nil
}

// Run follows the stream until ctx ends or parts parts were fetched.
func (v *Viewer) Run(ctx context.Context, parts int) error {
	base := v.PlaylistURL[:strings.LastIndexByte(v.PlaylistURL, '/')+1]
	pl, err := v.get(ctx, v.PlaylistURL)
	if err != nil {
		return err
	}
	_, hint, ok := ParseParts(pl)
	if !ok {
		return fmt.Errorf("no preload hint in\n%s", pl)
	}
	next := hint // first part to fetch
	for len(v.Fetched) < parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		u := fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", v.PlaylistURL, hint.MSN, hint.Index)
		v.Playlists = append(v.Playlists, u)
		pl, err = v.get(ctx, u)
		if err != nil {
			return err
		}
		list, h, ok := ParseParts(pl)
		for _, p := range list {
			if p.MSN < next.MSN || p.MSN == next.MSN && p.Index < next.Index {
				continue
			}
			body, err := v.get(ctx, base+p.URI)
			if err != nil {
				return err
			}
			v.Bytes += int64(len(body))
			v.Fetched = append(v.Fetched, base+p.URI)
			next = PartRef{MSN: p.MSN, Index: p.Index + 1}
		}
		if !ok {
			return nil // ended
		}
		if h.MSN > next.MSN {
			next = PartRef{MSN: h.MSN} // a new segment began: its part 0 is next
		}
		hint = h
	}
	return nil
}
