package rtpau

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/media"
)

// These tests encode real H.264 with ffmpeg (libx264), packetize it with
// pion's H264Payloader in the ways real publishers do, push it through
// Reorder and H264, write the access units as Annex-B and have ffmpeg decode
// the result: no decode errors, the expected number of frames and size.

func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install ffmpeg): %v", bin, err)
		}
	}
}

// srcAU is one access unit of a source stream in decoding order.
type srcAU struct {
	nalus [][]byte // without AUD
	pts   int64    // 90 kHz, from 0
	key   bool
}

type source struct {
	aus           []srcAU
	width, height int
}

var (
	srcMu    sync.Mutex
	srcCache = map[string]*source{}
	srcDir   string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rtpau-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srcDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	// The package starts no goroutines; make sure it stays that way.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// encode returns the stream ffmpeg makes from a lavfi test source with the
// given encoder arguments (cached per test binary).
func encode(t testing.TB, size string, seconds float64, encArgs ...string) *source {
	t.Helper()
	needFFmpeg(t)
	key := size + fmt.Sprint(seconds) + strings.Join(encArgs, " ")
	srcMu.Lock()
	defer srcMu.Unlock()
	if s, ok := srcCache[key]; ok {
		return s
	}
	name := filepath.Join(srcDir, fmt.Sprintf("src%d", len(srcCache)))
	args := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=30",
		"-t", fmt.Sprint(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p"}
	args = append(args, encArgs...)
	args = append(args, "-y", name+".mp4")
	run(t, "ffmpeg", args...)
	run(t, "ffmpeg", "-v", "error", "-i", name+".mp4", "-c", "copy",
		"-bsf:v", "h264_mp4toannexb,h264_metadata=aud=insert", "-f", "h264", "-y", name+".h264")
	probe := run(t, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", name+".mp4")
	var pts []int64
	var keys []bool
	sc := bufio.NewScanner(strings.NewReader(probe))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("ffprobe line %q: %v", sc.Text(), err)
		}
		pts = append(pts, int64(math.Round(v*90000)))
		keys = append(keys, strings.HasPrefix(f[1], "K"))
	}
	raw, err := os.ReadFile(name + ".h264")
	if err != nil {
		t.Fatal(err)
	}
	s := &source{}
	var cur *srcAU
	for _, n := range splitAnnexB(raw) {
		if n[0]&0x1f == nalAUD {
			s.aus = append(s.aus, srcAU{})
			cur = &s.aus[len(s.aus)-1]
			continue
		}
		if cur == nil {
			t.Fatal("stream does not start with an AUD")
		}
		cur.nalus = append(cur.nalus, n)
	}
	if len(s.aus) != len(pts) {
		t.Fatalf("%d access units in Annex-B, %d packets from ffprobe", len(s.aus), len(pts))
	}
	min0 := pts[0]
	for _, p := range pts {
		min0 = min(min0, p)
	}
	for i := range s.aus {
		s.aus[i].pts = pts[i] - min0
		s.aus[i].key = keys[i]
	}
	var w, h int
	if _, err := fmt.Sscanf(size, "%dx%d", &w, &h); err != nil {
		t.Fatal(err)
	}
	s.width, s.height = w, h
	srcCache[key] = s
	return s
}

func run(t testing.TB, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// splitAnnexB splits a whole Annex-B file into NAL units.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			break
		}
		b = b[i+3:]
		j := bytes.Index(b, []byte{0, 0, 1})
		n := b
		if j >= 0 {
			n = b[:j]
		}
		n = bytes.TrimRight(n, "\x00")
		if len(n) > 0 {
			out = append(out, n)
		}
		if j < 0 {
			break
		}
		b = b[j:]
	}
	return out
}

func annexB(nalus [][]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

// packetizeOpts says how a publisher sends the stream.
type packetizeOpts struct {
	separateParams bool   // SPS and PPS as single NAL unit packets (no STAP-A)
	seq            uint16 // first sequence number
	ts             uint32 // RTP timestamp of PTS 0
	mtu            uint16
}

// packetize turns the source into RTP packets like a WebRTC sender.
func packetize(src *source, o packetizeOpts) []*rtp.Packet {
	if o.mtu == 0 {
		o.mtu = 1200
	}
	pay := &codecs.H264Payloader{DisableStapA: o.separateParams}
	var out []*rtp.Packet
	seq := o.seq
	for _, au := range src.aus {
		payloads := pay.Payload(o.mtu, annexB(au.nalus))
		for i, p := range payloads {
			out = append(out, &rtp.Packet{
				Header: rtp.Header{
					Version: 2, PayloadType: 102, SSRC: 0x1234,
					SequenceNumber: seq,
					Timestamp:      o.ts + uint32(au.pts),
					Marker:         i == len(payloads)-1,
				},
				Payload: p,
			})
			seq++
		}
	}
	return out
}

// depacketize runs packets through Reorder and H264.
func depacketize(t testing.TB, pkts []*rtp.Packet, reorder int) ([]*media.AccessUnit, *H264, *Reorder) {
	t.Helper()
	r := NewReorder(reorder)
	h := NewH264(NewClock(90000, nil))
	var aus []*media.AccessUnit
	push := func(ps []*rtp.Packet) {
		for _, p := range ps {
			got, err := h.Push(p)
			if err != nil && !errors.Is(err, ErrNeedKeyframe) {
				t.Fatalf("seq %d: %v", p.SequenceNumber, err)
			}
			aus = append(aus, got...)
		}
	}
	for _, p := range pkts {
		push(r.Push(p))
	}
	push(r.Flush())
	return aus, h, r
}

// decodeCheck writes aus as Annex-B, decodes it with ffmpeg and checks for
// no errors, the frame count and the picture size.
func decodeCheck(t testing.TB, aus []*media.AccessUnit, frames, width, height int) {
	t.Helper()
	var b []byte
	for _, au := range aus {
		b = append(b, annexB(au.Payload)...)
	}
	name := filepath.Join(t.TempDir(), "out.h264")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", name, "-f", "null", "-")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decode: %v\n%s", err, stderr.String())
	}
	out := run(t, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,nb_read_frames", "-of", "csv=p=0", name)
	want := fmt.Sprintf("%d,%d,%d", width, height, frames)
	if got := strings.TrimSpace(out); got != want {
		t.Fatalf("ffprobe width,height,frames = %s, want %s", got, want)
	}
}

// checkTiming compares the access units with the source they came from.
func checkTiming(t testing.TB, aus []*media.AccessUnit, src *source, ts0 uint32) {
	t.Helper()
	if len(aus) != len(src.aus) {
		t.Fatalf("%d access units, source has %d", len(aus), len(src.aus))
	}
	for i, au := range aus {
		s := src.aus[i]
		// PTS counts from the first packet's timestamp.
		if want := s.pts - src.aus[0].pts; au.PTS != want {
			t.Fatalf("AU %d: PTS %d, want %d", i, au.PTS, want)
		}
		if au.Key != s.key {
			t.Fatalf("AU %d: key %v, want %v", i, au.Key, s.key)
		}
		if au.DTS > au.PTS {
			t.Fatalf("AU %d: DTS %d > PTS %d", i, au.DTS, au.PTS)
		}
		if i > 0 && au.DTS <= aus[i-1].DTS {
			t.Fatalf("AU %d: DTS %d after %d", i, au.DTS, aus[i-1].DTS)
		}
		if au.Key && (au.Payload[0][0]&0x1f != nalSPS || au.Payload[1][0]&0x1f != nalPPS) {
			t.Fatalf("AU %d: IDR does not start with SPS, PPS: %v", i, nalTypes(au))
		}
	}
}

func TestRealisticBaseline(t *testing.T) {
	src := encode(t, "640x360", 2, "-profile:v", "baseline", "-g", "30",
		"-x264-params", "slice-max-size=1200")
	multi := 0
	for _, au := range src.aus {
		slices := 0
		for _, n := range au.nalus {
			if typ := n[0] & 0x1f; typ == nalIDR || typ == nalNonIDR {
				slices++
			}
		}
		if au.key && slices > 1 {
			multi++
		}
	}
	if multi == 0 {
		t.Fatal("source has no multi-slice IDR: test would prove nothing")
	}
	for _, tc := range []struct {
		name string
		opts packetizeOpts
		// mangle reorders, duplicates or pads the packets.
		mangle func([]*rtp.Packet) []*rtp.Packet
	}{
		{name: "STAP-A parameter sets", opts: packetizeOpts{seq: 1000, ts: 12345}},
		{name: "separate parameter sets", opts: packetizeOpts{separateParams: true, seq: 1000, ts: 12345}},
		{name: "sequence and timestamp wrap", opts: packetizeOpts{seq: 65500, ts: math.MaxUint32 - 45000}},
		{name: "small MTU", opts: packetizeOpts{seq: 7, mtu: 300}},
		{
			name: "shuffled within the window across the wrap",
			opts: packetizeOpts{seq: 65000, ts: 99},
			mangle: func(ps []*rtp.Packet) []*rtp.Packet {
				rng := rand.New(rand.NewPCG(3, 4))
				for i := 1; i+16 < len(ps); i += 16 {
					rng.Shuffle(16, func(a, b int) { ps[i+a], ps[i+b] = ps[i+b], ps[i+a] })
				}
				return ps
			},
		},
		{
			name: "duplicates and padding packets",
			opts: packetizeOpts{seq: 100, ts: 99},
			mangle: func(ps []*rtp.Packet) []*rtp.Packet {
				// Renumber to make room for a padding packet after every
				// 10th packet, and send every 7th packet twice.
				var out []*rtp.Packet
				seq := uint16(100)
				for i, p := range ps {
					p.SequenceNumber = seq
					seq++
					out = append(out, p)
					if i%7 == 0 {
						out = append(out, p)
					}
					if i%10 == 0 {
						out = append(out, &rtp.Packet{Header: rtp.Header{
							Version: 2, SequenceNumber: seq, Timestamp: p.Timestamp,
							Padding: true, PaddingSize: 255, SSRC: p.SSRC,
						}})
						seq++
					}
				}
				return out
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkts := packetize(src, tc.opts)
			if tc.mangle != nil {
				pkts = tc.mangle(pkts)
			}
			aus, h, r := depacketize(t, pkts, 64)
			checkTiming(t, aus, src, tc.opts.ts)
			decodeCheck(t, aus, len(src.aus), 640, 360)
			st := h.Stats()
			if st.Lost != 0 || st.Dropped != 0 || st.Errors != 0 || st.BFrames != 0 || st.Width != 640 ||
				st.Height != 360 || st.Keyframes != 2 || st.KeyframeInterval.Seconds() != 1 {
				t.Fatalf("stats %+v", st)
			}
			if math.Abs(st.FPS-30) > 0.01 {
				t.Fatalf("fps %v", st.FPS)
			}
			// The 2 s window holds the whole stream: bitrate is its bytes
			// (all but the last frame) over its span.
			var bytes int
			for _, au := range aus[:len(aus)-1] {
				bytes += au.Size()
			}
			want := float64(bytes) * 8 / (float64(aus[len(aus)-1].PTS-aus[0].PTS) / 90000)
			if math.Abs(st.Bitrate-want) > want/100 {
				t.Fatalf("bitrate %v, want %v", st.Bitrate, want)
			}
			if rs := r.Stats(); rs.Lost != 0 {
				t.Fatalf("reorder stats %+v", rs)
			}
		})
	}
}

// TestRealisticParamsOnce: the publisher sends SPS and PPS only before
// the first IDR (out-of-band style); every later IDR must still come out
// with them in front and the stream must decode.
func TestRealisticParamsOnce(t *testing.T) {
	src := encode(t, "640x360", 2, "-profile:v", "baseline", "-g", "15")
	once := &source{width: src.width, height: src.height}
	for i, au := range src.aus {
		var nalus [][]byte
		for _, n := range au.nalus {
			if typ := n[0] & 0x1f; i > 0 && (typ == nalSPS || typ == nalPPS) {
				continue
			}
			nalus = append(nalus, n)
		}
		once.aus = append(once.aus, srcAU{nalus: nalus, pts: au.pts, key: au.key})
	}
	aus, h, _ := depacketize(t, packetize(once, packetizeOpts{separateParams: true, seq: 3}), 64)
	checkTiming(t, aus, once, 0) // checks SPS, PPS first on every IDR
	decodeCheck(t, aus, len(src.aus), 640, 360)
	if st := h.Stats(); st.Keyframes != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRealisticLoss(t *testing.T) {
	src := encode(t, "640x360", 2, "-profile:v", "baseline", "-g", "30",
		"-x264-params", "slice-max-size=1200")
	pkts := packetize(src, packetizeOpts{seq: 65300, ts: 5})
	// The access unit that holds packet 40 (in the first GOP).
	k, n := 0, 0
	for i, p := range pkts {
		if i == 40 {
			break
		}
		if p.Marker {
			n++
			k = n
		}
	}
	kept := append(append([]*rtp.Packet{}, pkts[:40]...), pkts[42:]...)
	aus, h, r := depacketize(t, kept, 64)
	// Frames before the loss, then nothing until the IDR at frame 30.
	if len(aus) != k+30 {
		t.Fatalf("%d access units, want %d", len(aus), k+30)
	}
	if au := aus[k]; !au.Key || au.PTS != 30*3000 {
		t.Fatalf("first AU after the loss: key %v PTS %d", au.Key, au.PTS)
	}
	decodeCheck(t, aus, len(aus), 640, 360)
	st := h.Stats()
	if st.Lost != 2 || r.Lost() != 2 || st.Dropped != uint64(30-k) || st.NeedKeyframe {
		t.Fatalf("stats %+v reorder %+v", st, r.Stats())
	}

	// A loss in the last GOP leaves the depacketizer waiting.
	kept = append(append([]*rtp.Packet{}, pkts[:len(pkts)-10]...), pkts[len(pkts)-9:]...)
	aus, h, _ = depacketize(t, kept, 64)
	if !h.NeedKeyframe() || len(aus) >= len(src.aus) {
		t.Fatalf("after a late loss: NeedKeyframe %v, %d access units", h.NeedKeyframe(), len(aus))
	}
	decodeCheck(t, aus, len(aus), 640, 360)
}

func TestRealisticBFrames(t *testing.T) {
	src := encode(t, "640x360", 2, "-profile:v", "main", "-bf", "2", "-g", "30")
	reordered := false
	for i := 1; i < len(src.aus); i++ {
		if src.aus[i].pts < src.aus[i-1].pts {
			reordered = true
		}
	}
	if !reordered {
		t.Fatal("source has no B-frames: test would prove nothing")
	}
	aus, h, _ := depacketize(t, packetize(src, packetizeOpts{seq: 1, ts: 1 << 31}), 64)
	checkTiming(t, aus, src, 1<<31)
	decodeCheck(t, aus, len(src.aus), 640, 360)
	if st := h.Stats(); st.BFrames == 0 {
		t.Fatalf("B-frames not reported: %+v", st)
	}
}

// TestRealisticMainNoBFrames: main profile (picture order count type 0,
// CABAC) without B-frames, as OpenH264 sends for 4d001f: DTS must equal
// PTS.
func TestRealisticMainNoBFrames(t *testing.T) {
	src := encode(t, "640x360", 1, "-profile:v", "main", "-bf", "0", "-g", "30")
	aus, h, _ := depacketize(t, packetize(src, packetizeOpts{seq: 40000}), 64)
	checkTiming(t, aus, src, 0)
	decodeCheck(t, aus, len(src.aus), 640, 360)
	for i, au := range aus {
		if au.DTS != au.PTS {
			t.Fatalf("AU %d: DTS %d != PTS %d", i, au.DTS, au.PTS)
		}
	}
	if st := h.Stats(); st.BFrames != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRealisticResolutionChange(t *testing.T) {
	a := encode(t, "640x360", 1, "-profile:v", "baseline", "-g", "30")
	b := encode(t, "320x180", 1, "-profile:v", "baseline", "-g", "30")
	both := &source{}
	both.aus = append(both.aus, a.aus...)
	last := a.aus[len(a.aus)-1].pts
	for _, au := range b.aus {
		au.pts += last + 3000
		both.aus = append(both.aus, au)
	}
	aus, h, _ := depacketize(t, packetize(both, packetizeOpts{seq: 9}), 64)
	checkTiming(t, aus, both, 0)
	st := h.Stats()
	if st.ResolutionChanges != 1 || st.Width != 320 || st.Height != 180 {
		t.Fatalf("stats %+v", st)
	}
	// ffprobe reports the first size; decoding must stay clean across the
	// change.
	decodeCheck(t, aus, len(both.aus), 640, 360)
}
