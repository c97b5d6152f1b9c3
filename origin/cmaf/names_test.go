package cmaf

import "testing"

func TestNamesRoundTrip(t *testing.T) {
	if k, n, _ := ParseName(InitName(3)); k != FileInit || n != 3 {
		t.Error("init")
	}
	if k, n, _ := ParseName(SegmentName(12345)); k != FileSegment || n != 12345 {
		t.Error("segment")
	}
	if k, n, p := ParseName(PartName(9, 4)); k != FilePart || n != 9 || p != 4 {
		t.Error("part")
	}
	for _, bad := range []string{"", "seg.m4s", "seg01.m4s", "part1.m4s", "part1.x.m4s", "init1.m4s", "seg-1.m4s", "part1.2.3.m4s"} {
		if k, _, _ := ParseName(bad); k != FileUnknown {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{InitName(1), SegmentName(2), PartName(3, 4), "part1.2.3.m4s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, n, p := ParseName(s)
		var back string
		switch k {
		case FileInit:
			back = InitName(n)
		case FileSegment:
			back = SegmentName(n)
		case FilePart:
			back = PartName(n, p)
		default:
			return
		}
		if back != s {
			t.Fatalf("%q parsed as %v %d %d, prints as %q", s, k, n, p, back)
		}
	})
}
