package hwenc

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/media"
)

// adts prefixes one raw AAC-LC frame (48 kHz, channels) with an ADTS
// header (ISO/IEC 13818-7 §6.2: no CRC, 7 bytes).
func adts(frame []byte, channels int) []byte {
	l := len(frame) + 7
	const profile, freqIdx = 1, 3 // AAC LC (object type 2) - 1; 48 kHz
	h := []byte{0xff, 0xf1,
		byte(profile<<6 | freqIdx<<2 | channels>>2),
		byte((channels&3)<<6 | l>>11),
		byte(l >> 3),
		byte((l&7)<<5 | 0x1f),
		0xfc}
	return append(h, frame...)
}

// TestSilentAACDecodesToZeros decodes the host's silent frame with
// ffmpeg: every frame decodes without an error, as 2 channels of 1024
// samples of digital silence each, also right after a real frame.
func TestSilentAACDecodesToZeros(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/deps.sh test installs it)")
	}
	const n = 50
	var in bytes.Buffer
	for range n {
		in.Write(adts(silentAAC, 2))
	}
	samples := decodeADTS(t, in.Bytes(), 2)
	if len(samples) != n*aacFrame*2 {
		t.Fatalf("decoded %d samples, want %d (%d frames × 1024 × 2 channels)", len(samples), n*aacFrame*2, n)
	}
	for i, s := range samples {
		if s != 0 {
			t.Fatalf("sample %d is %d, want digital silence", i, s)
		}
	}

	// After real audio (a 1 kHz tone from the same encoder the plugins
	// use) the silent frames decode cleanly too and end in silence.
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
		"-t", "0.5", "-ac", "2", "-c:a", "aac", "-b:a", "128k", "-f", "adts", "-")
	tone, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	mixed := append(bytes.Clone(tone), in.Bytes()...)
	out := decodeADTS(t, mixed, 2)
	tail := out[len(out)-(n-2)*aacFrame*2:] // past the tone's overlap-add tail
	for i, s := range tail {
		if s != 0 {
			t.Fatalf("after a tone: silent sample %d is %d", i, s)
		}
	}
}

// decodeADTS decodes an ADTS stream with ffmpeg to interleaved s16
// samples, failing on any decoder message.
func decodeADTS(t *testing.T, in []byte, channels int) []int16 {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "warning", "-xerror", "-f", "aac", "-i", "-",
		"-ac", "2", "-f", "s16le", "-")
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Fatalf("ffmpeg reported: %s", s)
	}
	if channels != 2 {
		t.Fatalf("only stereo is checked")
	}
	samples := make([]int16, out.Len()/2)
	if err := binary.Read(&out, binary.LittleEndian, samples); err != nil {
		t.Fatal(err)
	}
	return samples
}

func TestOpusFrameDuration(t *testing.T) {
	for _, c := range []struct {
		payload []byte
		want    int64
	}{
		{[]byte{0xfc, 0}, 960},         // CELT FB 20 ms, code 0 (Chromium's default)
		{[]byte{0xf8, 0}, 960},         // CELT FB 20 ms
		{[]byte{0xf0, 0}, 480},         // CELT FB 10 ms
		{[]byte{0x78, 0}, 960},         // hybrid FB 20 ms
		{[]byte{0x1b, 0x03}, 3 * 2880}, // SILK NB 60 ms, code 3 with 3 frames
		{[]byte{0x09}, 960 * 2},        // SILK NB 20 ms, code 1: two frames
		{nil, 960},
	} {
		au := &media.AccessUnit{Codec: media.CodecOpus}
		if c.payload != nil {
			au.Payload = [][]byte{c.payload}
		}
		if got := opusFrame(au); got != c.want {
			t.Errorf("opusFrame(% x) = %d, want %d", c.payload, got, c.want)
		}
	}
}
