package rtpau

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/edgenode/edgenode/internal/media"
)

func TestOpus(t *testing.T) {
	start := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	fn := &fakeNow{start}
	o := NewOpus(NewClock(48000, fn.now))
	var aus []*media.AccessUnit
	push := func(seq uint16, ts uint32, payload []byte) error {
		buf := append([]byte(nil), payload...)
		got, err := o.Push(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts}, Payload: buf})
		clear(buf) // the access unit must not share memory with the packet
		aus = append(aus, got...)
		return err
	}
	ts := uint32(0xffffffff - 959) // wraps after the first packet
	frame := []byte{0xfc, 0xff, 0xfe}
	for i := 0; i < 150; i++ {
		if i == 50 {
			continue // lost
		}
		fn.t = start.Add(time.Duration(i) * 20 * time.Millisecond)
		if err := push(uint16(65500+i), ts+uint32(i*960), frame); err != nil {
			t.Fatal(err)
		}
	}
	seq := uint16(65500)
	if err := push(seq+150, ts+149*960, frame); !errors.Is(err, ErrTimestamp) {
		t.Fatalf("repeated timestamp: %v", err)
	}
	if err := push(seq+151, 0, nil); err != nil {
		t.Fatalf("padding: %v", err)
	}
	if len(aus) != 149 {
		t.Fatalf("%d access units", len(aus))
	}
	for i, au := range aus {
		n := int64(i)
		if i >= 50 {
			n++
		}
		if au.PTS != n*960 || au.DTS != au.PTS || !au.Key || au.Codec != media.CodecOpus {
			t.Fatalf("AU %d: %+v", i, au)
		}
		if want := start.Add(time.Duration(n) * 20 * time.Millisecond); !au.Time.Equal(want) {
			t.Fatalf("AU %d: time %v, want %v", i, au.Time, want)
		}
		if len(au.Payload) != 1 || string(au.Payload[0]) != string(frame) {
			t.Fatalf("AU %d payload %x", i, au.Payload)
		}
	}
	st := o.Stats()
	if st.Lost != 1 || st.Padding != 1 || st.Frames != 149 || st.Dropped != 1 || st.Errors != 1 || st.Packets != 151 {
		t.Fatalf("stats %+v", st)
	}
	// 2 s window at 50 packets/s with one lost: about 50 fps and
	// 3 bytes × 50 × 8 bit/s.
	if st.FPS < 49 || st.FPS > 50.1 || st.Bitrate < 1150 || st.Bitrate > 1210 {
		t.Fatalf("fps %v bitrate %v", st.FPS, st.Bitrate)
	}
	if tr := o.Track(); tr.Codec != media.CodecOpus || tr.SampleRate != 48000 || tr.Channels != 2 {
		t.Fatalf("track %+v", tr)
	}
}

func TestOpusDuration(t *testing.T) {
	for _, tc := range []struct {
		pkt  []byte
		want int
		err  bool
	}{
		{[]byte{0xfc, 1, 2}, 960, false}, // CELT FB 20 ms, one frame
		{[]byte{0x78, 1}, 960, false},    // Hybrid FB 20 ms (config 15)
		{[]byte{0x11}, 3840, false},      // SILK NB 40 ms, two frames (code 1)
		{[]byte{0x1b, 0x03}, 0, true},    // SILK NB 60 ms ×3 = 180 ms: too long
		{[]byte{0x18 | 3, 0x02}, 2880 * 2, false},
		{[]byte{0x83, 0x30}, 5760, false}, // CELT NB 2.5 ms ×48 = 120 ms
		{[]byte{0x83, 0x31}, 0, true},     // ×49: too long
		{[]byte{0x03}, 0, true},           // code 3 without count
		{[]byte{0xfb, 0x00}, 0, true},     // code 3 with 0 frames
		{nil, 0, true},
	} {
		got, err := OpusDuration(tc.pkt)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Fatalf("%x: %d %v, want %d err=%v", tc.pkt, got, err, tc.want, tc.err)
		}
	}
}

// oggPackets returns the packets of the first logical stream of an Ogg
// file (RFC 3533 §6: pages of segments; a segment shorter than 255 bytes
// ends a packet).
func oggPackets(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	var cur []byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" {
			t.Fatal("not an Ogg page")
		}
		nseg := int(b[26])
		if len(b) < 27+nseg {
			t.Fatal("truncated page header")
		}
		lacing := b[27 : 27+nseg]
		body := b[27+nseg:]
		for _, l := range lacing {
			if int(l) > len(body) {
				t.Fatal("truncated page body")
			}
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				out = append(out, cur)
				cur = nil
			}
		}
		b = body
	}
	return out
}

// TestOpusRealistic encodes audio with libopus at several frame durations,
// sends its packets as RTP with timestamps advancing by OpusDuration and
// checks each packet's duration against ffprobe and the access units'
// timestamps.
func TestOpusRealistic(t *testing.T) {
	needFFmpeg(t)
	for _, fd := range []string{"2.5", "10", "20", "60"} {
		t.Run(fd+"ms", func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "a.ogg")
			run(t, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
				"-c:a", "libopus", "-b:a", "64k", "-frame_duration", fd, "-y", name)
			probe := run(t, "ffprobe", "-v", "error", "-select_streams", "a:0",
				"-show_entries", "packet=duration", "-of", "csv=p=0", name)
			var want []int
			for _, l := range strings.Fields(probe) {
				n, err := strconv.Atoi(strings.TrimSuffix(l, ","))
				if err != nil {
					t.Fatalf("ffprobe %q: %v", l, err)
				}
				want = append(want, n)
			}
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			pkts := oggPackets(t, raw)
			if len(pkts) < 3 || !strings.HasPrefix(string(pkts[0]), "OpusHead") {
				t.Fatalf("no Opus stream in Ogg (%d packets)", len(pkts))
			}
			pkts = pkts[2:] // OpusHead, OpusTags
			if len(pkts) != len(want) {
				t.Fatalf("%d packets in Ogg, ffprobe counts %d", len(pkts), len(want))
			}
			o := NewOpus(NewClock(48000, nil))
			ts := uint32(0xfffff000)
			var pts int64
			for i, p := range pkts {
				d, err := OpusDuration(p)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				// ffprobe trims the last packet to the stream end.
				if d != want[i] && i != len(pkts)-1 {
					t.Fatalf("packet %d: OpusDuration %d, ffprobe %d", i, d, want[i])
				}
				aus, err := o.Push(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: ts}, Payload: p})
				if err != nil || len(aus) != 1 || aus[0].PTS != pts {
					t.Fatalf("packet %d: %v, %d AUs, want PTS %d", i, err, len(aus), pts)
				}
				ts += uint32(d)
				pts += int64(d)
			}
		})
	}
}
