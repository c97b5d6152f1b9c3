package whipclient

import (
	"bytes"
	_ "embed"
	"fmt"
)

// Slices4 is a 2 s, 30 fps, 320×240 constrained-baseline H.264 clip made by
// x264 with four slices per picture (multi-slice IDRs, as some hardware
// encoders send) and a keyframe every second:
//
//	ffmpeg -f lavfi -i testsrc=size=320x240:rate=30 -t 2 -pix_fmt yuv420p \
//	  -c:v libx264 -profile:v baseline -preset veryfast -slices 4 -g 30 \
//	  -keyint_min 30 -sc_threshold 0 -b:v 300k -x264-params aud=1 \
//	  -bsf:v h264_mp4toannexb -f h264 slices4_320x240.h264
//
//go:embed testdata/slices4_320x240.h264
var Slices4 []byte

// Slices4Size is the picture size of Slices4.
const Slices4Width, Slices4Height = 320, 240

// SplitAnnexB splits an Annex-B byte stream that has access unit
// delimiters into access units (NAL units without start codes; the
// delimiters themselves are dropped).
func SplitAnnexB(b []byte) ([][][]byte, error) {
	var aus [][][]byte
	var cur [][]byte
	for _, nal := range splitNALs(b) {
		if len(nal) == 0 {
			continue
		}
		if nal[0]&0x1f == 9 { // AUD starts an access unit
			if len(cur) > 0 {
				aus = append(aus, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, nal)
	}
	if len(cur) > 0 {
		aus = append(aus, cur)
	}
	if len(aus) == 0 {
		return nil, fmt.Errorf("whipclient: no access units in %d bytes", len(b))
	}
	return aus, nil
}

func splitNALs(b []byte) [][]byte {
	var out [][]byte
	start := -1
	i := 0
	for i+3 <= len(b) {
		if b[i] == 0 && b[i+1] == 0 && (b[i+2] == 1 || (i+4 <= len(b) && b[i+2] == 0 && b[i+3] == 1)) {
			sc := 3
			if b[i+2] == 0 {
				sc = 4
			}
			if start >= 0 {
				out = append(out, bytes.TrimRight(b[start:i], "\x00"))
			}
			i += sc
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}
