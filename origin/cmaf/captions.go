package cmaf

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// hasCaptions reports whether the H.264 NAL units of one access unit carry
// closed captions: an SEI message of payload type 4 (ITU-T H.264 D.1.6,
// user_data_registered_itu_t_t35) from the ATSC A/53 provider, whose user
// identifier is "GA94" (ANSI/SCTE 128-1 §8.1, CEA-708 cc_data; the way
// OBS and broadcast encoders send CEA-608/708 in-band). A browser
// publisher never sends them; an encoder may. Players that are told
// nothing about captions probe media segments for them (hls.go).
func hasCaptions(nalus [][]byte) bool {
	for _, n := range nalus {
		if len(n) < 2 || h264.NALUType(n[0]&0x1f) != h264.NALUTypeSEI {
			continue
		}
		rbsp := unescapeRBSP(n[1:])
		for len(rbsp) > 0 && rbsp[0] != 0x80 { // 0x80: rbsp_trailing_bits
			typ, r := seiNumber(rbsp)
			size, r2 := seiNumber(r)
			if r2 == nil || size > len(r2) {
				break
			}
			payload := r2[:size]
			// country code 0xB5 (USA), provider 0x0031 (ATSC), "GA94".
			if typ == 4 && len(payload) >= 7 && payload[0] == 0xb5 &&
				payload[1] == 0x00 && payload[2] == 0x31 && bytes.Equal(payload[3:7], []byte("GA94")) {
				return true
			}
			rbsp = r2[size:]
		}
	}
	return false
}

// seiNumber reads an SEI payload type or size (H.264 7.3.2.3.1: 0xFF bytes
// add 255 each, the last byte the rest). r is nil when b ends first.
func seiNumber(b []byte) (v int, r []byte) {
	for i, c := range b {
		v += int(c)
		if c != 0xff {
			return v, b[i+1:]
		}
	}
	return 0, nil
}

// unescapeRBSP removes emulation prevention bytes (H.264 7.4.1: 0x000003).
func unescapeRBSP(b []byte) []byte {
	if !bytes.Contains(b, []byte{0, 0, 3}) {
		return b
	}
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}
