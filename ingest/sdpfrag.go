package ingest

import (
	"fmt"
	"strings"
)

// maxFragSize bounds a PATCH body.
const maxFragSize = 16 << 10

// sdpFrag is a parsed application/trickle-ice-sdpfrag body (RFC 8840 §9,
// RFC 9725 §4.3.1).
type sdpFrag struct {
	// Ufrag and Pwd are the ICE credentials (session level or the first
	// media section's); a Pwd in a PATCH means an ICE restart.
	Ufrag, Pwd string
	// Options is a=ice-options.
	Options string
	Media   []fragMedia
}

// fragMedia is one "m=" section of a fragment.
type fragMedia struct {
	Mid        string
	MLine      string
	Candidates []string // values of a=candidate (without "candidate:")
	End        bool     // a=end-of-candidates
}

// candidates returns every candidate with the mid it belongs to.
func (f *sdpFrag) candidates() (mids, cands []string) {
	for _, m := range f.Media {
		for _, c := range m.Candidates {
			mids = append(mids, m.Mid)
			cands = append(cands, c)
		}
	}
	return mids, cands
}

// parseSDPFrag parses a trickle-ice-sdpfrag. It accepts the lines RFC 8840
// allows and ignores unknown attributes; errors wrap ErrBadSDP.
func parseSDPFrag(body []byte) (*sdpFrag, error) {
	if len(body) > maxFragSize {
		return nil, fmt.Errorf("%w: sdpfrag larger than %d bytes", ErrBadSDP, maxFragSize)
	}
	f := &sdpFrag{}
	var cur *fragMedia
	for n, line := range strings.Split(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return nil, fmt.Errorf("%w: sdpfrag line %d is not <type>=<value>", ErrBadSDP, n+1)
		}
		val := line[2:]
		switch line[0] {
		case 'm':
			if len(strings.Fields(val)) < 3 {
				return nil, fmt.Errorf("%w: sdpfrag line %d: bad m= line", ErrBadSDP, n+1)
			}
			f.Media = append(f.Media, fragMedia{MLine: val})
			cur = &f.Media[len(f.Media)-1]
		case 'a':
			k, v, _ := strings.Cut(val, ":")
			switch k {
			case "ice-ufrag":
				if v == "" || strings.ContainsAny(v, " \t") {
					return nil, fmt.Errorf("%w: sdpfrag line %d: bad ice-ufrag", ErrBadSDP, n+1)
				}
				if f.Ufrag != "" && f.Ufrag != v {
					return nil, fmt.Errorf("%w: sdpfrag has two different ice-ufrag values (bundle has one)", ErrBadSDP)
				}
				f.Ufrag = v
			case "ice-pwd":
				if v == "" || strings.ContainsAny(v, " \t") {
					return nil, fmt.Errorf("%w: sdpfrag line %d: bad ice-pwd", ErrBadSDP, n+1)
				}
				if f.Pwd != "" && f.Pwd != v {
					return nil, fmt.Errorf("%w: sdpfrag has two different ice-pwd values (bundle has one)", ErrBadSDP)
				}
				f.Pwd = v
			case "ice-options":
				f.Options = v
			case "mid":
				if cur == nil {
					return nil, fmt.Errorf("%w: sdpfrag line %d: a=mid before any m= line", ErrBadSDP, n+1)
				}
				cur.Mid = v
			case "candidate":
				if len(strings.Fields(v)) < 8 {
					return nil, fmt.Errorf("%w: sdpfrag line %d: candidate needs at least 8 fields", ErrBadSDP, n+1)
				}
				if cur == nil {
					// RFC 8840 puts candidates under an m= line; with
					// bundle, a bare one belongs to the first section.
					f.Media = append(f.Media, fragMedia{})
					cur = &f.Media[len(f.Media)-1]
				}
				cur.Candidates = append(cur.Candidates, v)
			case "end-of-candidates":
				if cur != nil {
					cur.End = true
				}
			}
		default:
			// Other line types (v=, o=, s=, c=...) carry nothing for ICE.
		}
	}
	if f.Pwd != "" && f.Ufrag == "" {
		return nil, fmt.Errorf("%w: sdpfrag has ice-pwd without ice-ufrag", ErrBadSDP)
	}
	return f, nil
}

// marshalRestartFrag builds the 200 body of an ICE restart (RFC 9725
// §4.3.3): the new local credentials and every local candidate, per media
// section of the answer.
func marshalRestartFrag(ufrag, pwd string, mids []string, cands []string) string {
	var b strings.Builder
	b.WriteString("a=ice-options:trickle ice2\r\n")
	b.WriteString("a=ice-ufrag:" + ufrag + "\r\n")
	b.WriteString("a=ice-pwd:" + pwd + "\r\n")
	for i, mid := range mids {
		b.WriteString("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n")
		b.WriteString("a=mid:" + mid + "\r\n")
		if i == 0 {
			for _, c := range cands {
				b.WriteString("a=candidate:" + c + "\r\n")
			}
		}
		b.WriteString("a=end-of-candidates\r\n")
	}
	return b.String()
}
