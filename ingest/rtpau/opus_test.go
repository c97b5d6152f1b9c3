package rtpau

import (
	"errors"
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
