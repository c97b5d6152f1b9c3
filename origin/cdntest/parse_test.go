package cdntest

import "testing"

func TestParseParts(t *testing.T) {
	pl := `#EXTM3U
#EXT-X-PART:DURATION=0.200,URI="video/part5.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.200,URI="video/part5.1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="video/part5.2.m4s"
`
	parts, hint, ok := ParseParts(pl)
	if len(parts) != 2 || parts[1].MSN != 5 || parts[1].Index != 1 || !ok || hint.Index != 2 {
		t.Fatalf("%v %v %v", parts, hint, ok)
	}
}

// FuzzParseParts: the playlist parser of the test viewer never panics and
// only returns parts whose URI names them.
func FuzzParseParts(f *testing.F) {
	f.Add("#EXT-X-PART:DURATION=0.2,URI=\"video/part1.0.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video/part1.1.m4s\"\n")
	f.Add("#EXT-X-PART:URI=\"part99999999999999999999.0.m4s\"\n")
	f.Add("#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init1.mp4\"\n")
	f.Fuzz(func(t *testing.T, pl string) {
		parts, hint, ok := ParseParts(pl)
		for _, p := range parts {
			if q, ok := parsePartURI(p.URI); !ok || q != p {
				t.Fatalf("part %+v does not round-trip", p)
			}
		}
		if ok {
			if q, ok := parsePartURI(hint.URI); !ok || q != hint {
				t.Fatalf("hint %+v does not round-trip", hint)
			}
		}
	})
}
