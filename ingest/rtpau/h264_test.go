package rtpau

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/pion/rtp"

	"github.com/edgenode/edgenode/internal/media"
)

// Parameter sets written by x264 (baseline) for 320x240 and 640x360.
var (
	sps320 = mustHex("6742c00dd90141fb0110000003001000000303c0f142a480")
	sps640 = mustHex("6742c01ed900a02ff970110000030001000003003c0f162e48")
	ppsX   = mustHex("68cb83cb20")
	idr1   = []byte{0x65, 0x88, 0x84, 0x00, 0x10}
	idr2   = []byte{0x65, 0x00, 0x44, 0x00, 0x20} // second slice of an IDR
	pfr    = []byte{0x41, 0x9a, 0x02, 0x03}
	sei    = []byte{0x06, 0x05, 0x01, 0x02, 0x80}
	aud    = []byte{0x09, 0xf0}
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func rp(seq uint16, ts uint32, marker bool, payload []byte) *rtp.Packet {
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 102, SequenceNumber: seq, Timestamp: ts, Marker: marker, SSRC: 1},
		Payload: payload,
	}
}

func stapA(nals ...[]byte) []byte {
	b := []byte{0x78}
	for _, n := range nals {
		b = append(b, byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

// fuA splits nal into FU-A payloads of at most size bytes of fragment.
func fuA(nal []byte, size int) [][]byte {
	var out [][]byte
	ind := nal[0]&0xe0 | nalFUA
	rest := nal[1:]
	for i := 0; len(rest) > 0; i++ {
		n := min(size, len(rest))
		hdr := nal[0] & 0x1f
		if i == 0 {
			hdr |= 0x80
		}
		if n == len(rest) {
			hdr |= 0x40
		}
		out = append(out, append([]byte{ind, hdr}, rest[:n]...))
		rest = rest[n:]
	}
	return out
}

// feeder pushes packets with consecutive sequence numbers.
type feeder struct {
	t   *testing.T
	h   *H264
	seq uint16
	aus []*media.AccessUnit
}

func newFeeder(t *testing.T) *feeder {
	return &feeder{t: t, h: NewH264(NewClock(90000, nil)), seq: 100}
}

// push sends one payload and fails the test on an error.
func (f *feeder) push(ts uint32, marker bool, payload []byte) {
	f.t.Helper()
	if err := f.pushErr(ts, marker, payload); err != nil {
		f.t.Fatalf("seq %d: %v", f.seq-1, err)
	}
}

func (f *feeder) pushErr(ts uint32, marker bool, payload []byte) error {
	aus, err := f.h.Push(rp(f.seq, ts, marker, payload))
	f.seq++
	f.aus = append(f.aus, aus...)
	return err
}

func (f *feeder) skip(n int) { f.seq += uint16(n) }

func nalTypes(au *media.AccessUnit) []int {
	var ts []int
	for _, n := range au.Payload {
		ts = append(ts, int(n[0]&0x1f))
	}
	return ts
}

func (f *feeder) want(desc ...string) {
	f.t.Helper()
	var got []string
	for _, au := range f.aus {
		got = append(got, fmt.Sprintf("pts=%d key=%v %v", au.PTS, au.Key, nalTypes(au)))
	}
	if fmt.Sprint(got) != fmt.Sprint(desc) {
		f.t.Fatalf("access units\n got %q\nwant %q", got, desc)
	}
}

func TestH264Packetizations(t *testing.T) {
	bigIDR := append([]byte{0x65}, bytes.Repeat([]byte{0xab, 0xcd, 0x00, 0x11}, 1000)...)
	for _, tc := range []struct {
		name string
		run  func(f *feeder)
		want []string
	}{
		{
			name: "single NAL units, parameter sets in own packets",
			run: func(f *feeder) {
				f.push(0, false, sps320)
				f.push(0, false, ppsX)
				f.push(0, true, idr1)
				f.push(3000, true, pfr)
			},
			want: []string{"pts=0 key=true [7 8 5]", "pts=3000 key=false [1]"},
		},
		{
			name: "STAP-A with SPS PPS IDR",
			run: func(f *feeder) {
				f.push(0, true, stapA(sps320, ppsX, idr1))
				f.push(3000, true, pfr)
			},
			want: []string{"pts=0 key=true [7 8 5]", "pts=3000 key=false [1]"},
		},
		{
			name: "STAP-A parameter sets then FU-A IDR (pion, Chromium)",
			run: func(f *feeder) {
				f.push(0, false, stapA(sps320, ppsX))
				frags := fuA(bigIDR, 1000)
				for i, fr := range frags {
					f.push(0, i == len(frags)-1, fr)
				}
				f.push(3000, true, pfr)
			},
			want: []string{"pts=0 key=true [7 8 5]", "pts=3000 key=false [1]"},
		},
		{
			name: "multi-slice IDR and P",
			run: func(f *feeder) {
				f.push(0, false, stapA(sps320, ppsX))
				f.push(0, false, idr1)
				f.push(0, true, idr2)
				f.push(3000, false, pfr)
				f.push(3000, true, pfr)
			},
			want: []string{"pts=0 key=true [7 8 5 5]", "pts=3000 key=false [1 1]"},
		},
		{
			name: "no marker bits: access units end at timestamp change",
			run: func(f *feeder) {
				f.push(0, false, stapA(sps320, ppsX, idr1))
				f.push(3000, false, pfr)
				f.push(6000, false, pfr)
			},
			want: []string{"pts=0 key=true [7 8 5]", "pts=3000 key=false [1]"},
		},
		{
			name: "parameter sets remembered for a later IDR without them",
			run: func(f *feeder) {
				f.push(0, true, stapA(sps320, ppsX, idr1))
				f.push(3000, true, pfr)
				f.push(6000, true, idr1)
			},
			want: []string{"pts=0 key=true [7 8 5]", "pts=3000 key=false [1]", "pts=6000 key=true [7 8 5]"},
		},
		{
			name: "parameter sets in an access unit of their own (marker set)",
			run: func(f *feeder) {
				f.push(0, true, sps320)
				f.push(1, true, ppsX)
				f.push(3000, true, idr1)
			},
			want: []string{"pts=3000 key=true [7 8 5]"},
		},
		{
			name: "AUD dropped, SEI kept after parameter sets",
			run: func(f *feeder) {
				f.push(0, false, stapA(aud, sps320, ppsX, sei))
				f.push(0, true, idr1)
				f.push(3000, true, stapA(aud, pfr))
			},
			want: []string{"pts=0 key=true [7 8 6 5]", "pts=3000 key=false [1]"},
		},
		{
			name: "stream joined mid-GOP waits for the IDR",
			run: func(f *feeder) {
				f.push(0, true, pfr)
				f.push(3000, true, pfr)
				f.push(6000, true, stapA(sps320, ppsX, idr1))
			},
			want: []string{"pts=6000 key=true [7 8 5]"},
		},
		{
			name: "padding packets inside an access unit are not loss",
			run: func(f *feeder) {
				f.push(0, false, stapA(sps320, ppsX))
				f.push(0, false, nil)
				f.push(0, true, idr1)
				f.push(3000, false, nil)
				f.push(3000, true, pfr)
			},
			want: []string{"pts=0 key=true [7 8 5]", "pts=3000 key=false [1]"},
		},
		{
			name: "timestamp wrap keeps PTS increasing",
			run: func(f *feeder) {
				ts := uint32(0xffffffff - 2999)
				f.push(ts, true, stapA(sps320, ppsX, idr1))
				f.push(ts+3000, true, pfr) // 0
				f.push(ts+6000, true, pfr)
			},
			want: []string{"pts=0 key=true [7 8 5]", "pts=3000 key=false [1]", "pts=6000 key=false [1]"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t)
			tc.run(f)
			f.want(tc.want...)
			for _, au := range f.aus {
				if au.DTS != au.PTS {
					t.Fatalf("DTS %d != PTS %d", au.DTS, au.PTS)
				}
				if au.Codec != media.CodecH264 {
					t.Fatal(au.Codec)
				}
			}
			if len(f.aus) > 0 && !bytes.Equal(f.aus[0].Payload[0], sps320) {
				t.Fatal("first NAL unit is not the SPS")
			}
			if s := f.h.Stats(); s.Width != 320 || s.Height != 240 || s.Errors != 0 || s.Lost != 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestH264FURoundTrip(t *testing.T) {
	f := newFeeder(t)
	nal := append([]byte{0x65}, bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 3000)...)
	f.push(0, false, stapA(sps320, ppsX))
	frags := fuA(nal, 1200)
	for i, fr := range frags {
		f.push(0, i == len(frags)-1, fr)
	}
	if len(f.aus) != 1 || !bytes.Equal(f.aus[0].Payload[2], nal) {
		t.Fatal("FU-A reassembly differs from the NAL unit")
	}
}

func TestH264LossWaitsForKeyframe(t *testing.T) {
	f := newFeeder(t)
	f.push(0, true, stapA(sps320, ppsX, idr1))
	f.push(3000, true, pfr)
	bigP := append([]byte{0x41}, bytes.Repeat([]byte{9}, 3000)...)
	frags := fuA(bigP, 1000)
	f.push(6000, false, frags[0])
	f.skip(1) // frags[1] lost
	err := f.pushErr(6000, true, frags[2])
	if !errors.Is(err, ErrNeedKeyframe) {
		t.Fatalf("err %v, want ErrNeedKeyframe", err)
	}
	if !f.h.NeedKeyframe() {
		t.Fatal("NeedKeyframe false after loss")
	}
	f.push(9000, true, pfr) // decodes only with the lost frame: dropped
	f.skip(2)
	if err := f.pushErr(12000, true, pfr); err != nil {
		// Already waiting: the second loss does not ask again.
		t.Fatalf("second loss: %v", err)
	}
	f.push(15000, true, idr1)
	f.push(18000, true, pfr)
	f.want("pts=0 key=true [7 8 5]", "pts=3000 key=false [1]", "pts=15000 key=true [7 8 5]", "pts=18000 key=false [1]")
	s := f.h.Stats()
	if s.Lost != 3 || s.Dropped != 3 || s.NeedKeyframe || s.Keyframes != 2 || s.Frames != 4 {
		t.Fatalf("stats %+v", s)
	}
	if s.KeyframeInterval.Milliseconds() != 166 {
		t.Fatalf("keyframe interval %v", s.KeyframeInterval)
	}
}

func TestH264NoParameterSets(t *testing.T) {
	f := newFeeder(t)
	if err := f.pushErr(0, true, idr1); !errors.Is(err, ErrNoParameterSets) {
		t.Fatalf("err %v", err)
	}
	f.push(3000, true, stapA(sps320, ppsX, idr1))
	f.want("pts=3000 key=true [7 8 5]")
}

func TestH264ResolutionChange(t *testing.T) {
	f := newFeeder(t)
	f.push(0, true, stapA(sps320, ppsX, idr1))
	f.push(3000, true, pfr)
	f.push(6000, true, stapA(sps640, ppsX, idr1))
	s := f.h.Stats()
	if s.Width != 640 || s.Height != 360 || s.ResolutionChanges != 1 {
		t.Fatalf("stats %+v", s)
	}
	if !bytes.Equal(f.aus[2].Payload[0], sps640) {
		t.Fatal("IDR after the change does not carry the new SPS")
	}
	tr := f.h.Track()
	if tr.Width != 640 || tr.Height != 360 || !bytes.Equal(tr.SPS, sps640) || !bytes.Equal(tr.PPS, ppsX) {
		t.Fatalf("track %+v", tr)
	}
}

func TestH264BFramesDetected(t *testing.T) {
	// Decoding order I P B B with PTS 0, 9000, 3000, 6000 (POC-less fake
	// slices: DTS falls back to a strictly increasing sequence).
	f := newFeeder(t)
	f.push(0, true, stapA(sps320, ppsX, idr1))
	f.push(9000, true, pfr)
	f.push(3000, true, []byte{0x01, 0x9e, 0x01})
	f.push(6000, true, []byte{0x01, 0x9e, 0x02})
	if len(f.aus) != 4 {
		t.Fatalf("%d access units", len(f.aus))
	}
	for i := 1; i < len(f.aus); i++ {
		if f.aus[i].DTS <= f.aus[i-1].DTS {
			t.Fatalf("DTS not increasing: %d after %d", f.aus[i].DTS, f.aus[i-1].DTS)
		}
	}
	if s := f.h.Stats(); s.BFrames != 2 {
		t.Fatalf("BFrames %d", s.BFrames)
	}
}

// TestH264Malformed: every malformed packet is an error (never a panic),
// the access unit it belonged to is dropped, and the next IDR recovers.
func TestH264Malformed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload [][]byte
		want    error
	}{
		{"STAP-B", [][]byte{{0x19, 0, 0, 0, 2, 0x65, 1}}, ErrUnsupportedPacketization},
		{"MTAP16", [][]byte{{0x1a, 0, 0, 0, 2, 0x65, 1}}, ErrUnsupportedPacketization},
		{"MTAP24", [][]byte{{0x1b, 0, 0, 0, 2, 0x65, 1}}, ErrUnsupportedPacketization},
		{"FU-B", [][]byte{{0x1d, 0x85, 0, 0, 1}}, ErrUnsupportedPacketization},
		{"NAL type 0", [][]byte{{0x00, 1, 2}}, ErrMalformed},
		{"NAL type 30", [][]byte{{0x1e, 1, 2}}, ErrMalformed},
		{"NAL type 31", [][]byte{{0x1f, 1, 2}}, ErrMalformed},
		{"forbidden bit", [][]byte{{0xe5, 1, 2}}, ErrMalformed},
		{"STAP-A empty", [][]byte{{0x78}}, ErrMalformed},
		{"STAP-A half a size", [][]byte{{0x78, 0}}, ErrMalformed},
		{"STAP-A size past the end", [][]byte{{0x78, 0, 5, 0x65, 1}}, ErrMalformed},
		{"STAP-A huge size", [][]byte{{0x78, 0xff, 0xff, 0x65, 1}}, ErrMalformed},
		{"STAP-A zero size", [][]byte{{0x78, 0, 0, 0, 1, 0x65}}, ErrMalformed},
		{"STAP-A nested STAP-A", [][]byte{{0x78, 0, 2, 0x78, 0}}, ErrMalformed},
		{"STAP-A trailing byte", [][]byte{{0x78, 0, 1, 0x65, 7}}, ErrMalformed},
		{"FU-A header only", [][]byte{{0x7c, 0x85}}, ErrMalformed},
		{"FU-A start and end", [][]byte{{0x7c, 0xc5, 1}}, ErrMalformed},
		{"FU-A middle without start", [][]byte{{0x7c, 0x05, 1}}, ErrMalformed},
		{"FU-A end without start", [][]byte{{0x7c, 0x45, 1}}, ErrMalformed},
		{"FU-A carrying FU-A", [][]byte{{0x7c, 0x9c, 1}}, ErrMalformed},
		{"FU-A type changes mid-unit", [][]byte{{0x7c, 0x85, 1}, {0x7c, 0x41, 2}}, ErrMalformed},
		{"FU-A start twice", [][]byte{{0x7c, 0x85, 1}, {0x7c, 0x85, 2}}, ErrMalformed},
		{"FU-A interrupted by single NAL", [][]byte{{0x7c, 0x85, 1}, {0x65, 2}}, ErrMalformed},
		{"FU-A without end before marker", [][]byte{{0x7c, 0x85, 1}, {0x7c, 0x05, 2}}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t)
			f.push(0, true, stapA(sps320, ppsX, idr1))
			var err error
			for i, p := range tc.payload {
				err = errors.Join(err, f.pushErr(3000, i == len(tc.payload)-1, p))
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrNeedKeyframe) {
				t.Fatalf("err %v, want %v and ErrNeedKeyframe", err, tc.want)
			}
			f.push(4500, true, pfr) // refers to the dropped frame: not emitted
			f.push(6000, true, idr1)
			f.want("pts=0 key=true [7 8 5]", "pts=6000 key=true [7 8 5]")
			if s := f.h.Stats(); s.Errors == 0 {
				t.Fatalf("errors not counted: %+v", s)
			}
		})
	}
}

func TestH264TooLarge(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		f := newFeeder(t)
		f.push(0, true, stapA(sps320, ppsX, idr1))
		frag := make([]byte, 1400)
		var err error
		f.push(3000, false, append([]byte{0x7c, 0x81}, frag...))
		for i := 0; i*len(frag) <= MaxAccessUnitSize && err == nil; i++ {
			err = f.pushErr(3000, false, append([]byte{0x7c, 0x01}, frag...))
		}
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err %v", err)
		}
		f.push(3000, true, append([]byte{0x7c, 0x41}, frag...)) // rest of the unit: skipped
		f.push(4500, true, pfr)
		f.push(6000, true, idr1)
		f.want("pts=0 key=true [7 8 5]", "pts=6000 key=true [7 8 5]")
	})
	t.Run("NAL units", func(t *testing.T) {
		f := newFeeder(t)
		f.push(0, true, stapA(sps320, ppsX, idr1))
		var err error
		for i := 0; i <= MaxNALUnits && err == nil; i++ {
			err = f.pushErr(3000, false, pfr)
		}
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err %v", err)
		}
		f.push(3000, true, pfr)
		f.push(4500, true, pfr)
		f.push(6000, true, idr1)
		f.want("pts=0 key=true [7 8 5]", "pts=6000 key=true [7 8 5]")
	})
}

func TestH264RestartNotCountedAsLoss(t *testing.T) {
	f := newFeeder(t)
	f.push(0, true, stapA(sps320, ppsX, idr1))
	f.skip(20000) // the sender restarted its numbering
	if err := f.pushErr(3000, true, pfr); !errors.Is(err, ErrNeedKeyframe) {
		t.Fatalf("err %v", err)
	}
	f.push(6000, true, idr1)
	f.want("pts=0 key=true [7 8 5]", "pts=6000 key=true [7 8 5]")
	if s := f.h.Stats(); s.Lost != 0 {
		t.Fatalf("lost %d", s.Lost)
	}
}

// TestH264ErrorAtTimestampChange: an access unit that fails when the next
// one's first packet arrives must not swallow that packet.
func TestH264ErrorAtTimestampChange(t *testing.T) {
	f := newFeeder(t)
	f.push(0, true, stapA(sps320, ppsX, idr1))
	f.push(3000, false, []byte{0x7c, 0x81, 1}) // FU-A never ended, no marker
	// The next unit starts with new parameter sets.
	if err := f.pushErr(6000, false, stapA(sps640, ppsX)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v", err)
	}
	f.push(6000, true, idr1)
	f.want("pts=0 key=true [7 8 5]", "pts=6000 key=true [7 8 5]")
	if !bytes.Equal(f.aus[1].Payload[0], sps640) {
		t.Fatal("the packet after the error was lost: old SPS in front of the IDR")
	}
}
