package cmaf

import "testing"

// TestHasCaptions: an SEI with an A/53 (GA94) T.35 payload is captions,
// also behind another SEI message and with an emulation prevention byte;
// other SEI and slices are not.
func TestHasCaptions(t *testing.T) {
	// payload type 4, size 11: B5 0031 "GA94" 03 (cc_data) 0x00 0x00 0x03(EPB) 0x01
	cc := []byte{0x06, 0x04, 0x0b, 0xb5, 0x00, 0x31, 'G', 'A', '9', '4', 0x03, 0x00, 0x00, 0x03, 0x01, 0xff, 0x80}
	// payload type 5 (user data unregistered), size 2, then the captions
	behind := append([]byte{0x06, 0x05, 0x02, 0xaa, 0xbb}, cc[1:]...)
	other := []byte{0x06, 0x04, 0x07, 0xb5, 0x00, 0x2f, 'D', 'T', 'G', '1', 0x80} // AFD, not captions
	slice := []byte{0x65, 0x88, 0x84}
	for _, tc := range []struct {
		name  string
		nalus [][]byte
		want  bool
	}{
		{"captions", [][]byte{cc, slice}, true},
		{"after another SEI message", [][]byte{behind, slice}, true},
		{"other T.35", [][]byte{other, slice}, false},
		{"slice only", [][]byte{slice}, false},
		{"truncated SEI", [][]byte{cc[:6]}, false},
	} {
		if got := hasCaptions(tc.nalus); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
