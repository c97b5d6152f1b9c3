package rtpau

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	mcopus "github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/pion/rtp"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus under testdata/fuzz from real x264 packets")

// packets joins marshalled RTP packets as [2-byte length][packet]..., the
// input format of FuzzH264.
func packets(ps ...*rtp.Packet) []byte {
	var b []byte
	for _, p := range ps {
		raw, err := p.Marshal()
		if err != nil {
			panic(err)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(raw)))
		b = append(b, raw...)
	}
	return b
}

func splitPackets(data []byte) []*rtp.Packet {
	var out []*rtp.Packet
	for len(data) >= 2 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		if n > len(data) {
			n = len(data)
		}
		p := &rtp.Packet{}
		if err := p.Unmarshal(data[:n]); err == nil {
			out = append(out, p)
		}
		data = data[n:]
	}
	return out
}

// h264Seeds are hand-made packet sequences covering every packet type.
func h264Seeds() [][]byte {
	idr := append([]byte{0x65}, make([]byte, 3000)...)
	fr := fuA(idr, 1100)
	return [][]byte{
		packets(rp(1, 0, true, stapA(sps320, ppsX, idr1)), rp(2, 3000, true, pfr)),
		packets(rp(1, 0, false, sps320), rp(2, 0, false, ppsX), rp(3, 0, false, idr1), rp(4, 0, true, idr2)),
		packets(rp(65535, 0, false, stapA(sps320, ppsX)), rp(0, 0, false, fr[0]), rp(1, 0, false, fr[1]), rp(2, 0, true, fr[2])),
		packets(rp(1, 0, true, stapA(sps320, ppsX, idr1)), rp(3, 3000, true, pfr), rp(4, 6000, true, idr1)),
		packets(rp(1, 0, true, []byte{0x19, 0, 0, 0, 2, 0x65, 1}), rp(2, 0, true, []byte{0x7c, 0x45, 1})),
		packets(rp(1, 0, true, []byte{0x78, 0xff, 0xff, 0x65}), rp(2, 0, false, nil)),
	}
}

// FuzzH264 feeds arbitrary packet sequences to H264: it must never panic,
// and what it emits must keep the AccessUnit contract.
func FuzzH264(f *testing.F) {
	for _, s := range h264Seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := NewH264(NewClock(90000, nil))
		var prevDTS int64
		n := 0
		for _, p := range splitPackets(data) {
			aus, _ := h.Push(p)
			for _, au := range aus {
				if len(au.Payload) == 0 || au.Size() > MaxAccessUnitSize+len(h.sps)+len(h.pps) {
					t.Fatalf("bad access unit size %d (%d NAL units)", au.Size(), len(au.Payload))
				}
				for _, nal := range au.Payload {
					if len(nal) == 0 {
						t.Fatal("empty NAL unit")
					}
					if typ := nal[0] & 0x1f; typ == 0 || typ >= nalSTAPA || typ == nalAUD {
						t.Fatalf("NAL unit type %d emitted", typ)
					}
				}
				if au.Key && (au.Payload[0][0]&0x1f != nalSPS || au.Payload[1][0]&0x1f != nalPPS) {
					t.Fatal("IDR without leading SPS, PPS")
				}
				if n > 0 && au.DTS <= prevDTS {
					t.Fatalf("DTS %d after %d", au.DTS, prevDTS)
				}
				if n == 0 && !au.Key {
					t.Fatal("first access unit is not an IDR")
				}
				prevDTS = au.DTS
				n++
			}
		}
		if s := h.Stats(); s.Frames != uint64(n) {
			t.Fatalf("stats count %d frames, %d emitted", s.Frames, n)
		}
	})
}

// FuzzReorder pushes arbitrary sequence numbers (2 bytes each; a third
// byte selects the window size) and checks that every packet is released
// once, dropped as late or counted as duplicate, and that releases go
// forward except at resyncs.
func FuzzReorder(f *testing.F) {
	f.Add([]byte{8, 0xff, 0xfe, 0xff, 0xff, 0, 0, 0, 2, 0, 1})
	f.Add([]byte{2, 0x75, 0x30, 0x75, 0x31, 0, 100, 0, 101, 0, 102, 0, 103})
	f.Add([]byte{4, 0, 1, 0, 3, 0, 4, 0, 5, 0, 6, 0x4e, 0x20})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		r := NewReorder(int(data[0]) + 1)
		data = data[1:]
		released := 0
		var last uint16
		backwards := 0
		check := func(ps []*rtp.Packet) {
			for _, p := range ps {
				if released > 0 {
					if d := p.SequenceNumber - last; d == 0 || d >= 0x8000 {
						backwards++
					}
				}
				last = p.SequenceNumber
				released++
			}
		}
		pushed := 0
		for ; len(data) >= 2; data = data[2:] {
			check(r.Push(pkt(binary.BigEndian.Uint16(data))))
			pushed++
		}
		check(r.Flush())
		s := r.Stats()
		if uint64(released)+s.Late+s.Duplicates != uint64(pushed) {
			t.Fatalf("pushed %d, released %d, stats %+v", pushed, released, s)
		}
		if uint64(backwards) > s.Resyncs {
			t.Fatalf("%d backward steps with %d resyncs", backwards, s.Resyncs)
		}
	})
}

// FuzzOpus checks Opus.Push and OpusDuration never panic and keep PTS
// increasing.
func FuzzOpus(f *testing.F) {
	f.Add(packets(rp(1, 0, false, []byte{0xfc, 1}), rp(2, 960, false, []byte{0x83, 0x30}), rp(4, 960, false, nil)))
	f.Fuzz(func(t *testing.T, data []byte) {
		o := NewOpus(NewClock(48000, nil))
		var prev int64
		n := 0
		for _, p := range splitPackets(data) {
			// Differential check against mediacommon's reading of RFC 6716.
			if d, err := OpusDuration(p.Payload); err == nil && int64(d) != mcopus.PacketDuration2(p.Payload) {
				t.Fatalf("OpusDuration %d, mediacommon %d", d, mcopus.PacketDuration2(p.Payload))
			}
			aus, _ := o.Push(p)
			for _, au := range aus {
				if n > 0 && au.PTS <= prev {
					t.Fatalf("PTS %d after %d", au.PTS, prev)
				}
				prev = au.PTS
				n++
			}
		}
	})
}

// TestWriteFuzzCorpus rewrites testdata/fuzz/FuzzH264 from real packets
// when run with -update-corpus (the files are committed).
func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite the seed corpus")
	}
	seeds := h264Seeds()
	src := encode(t, "320x180", 0.2, "-profile:v", "baseline", "-g", "3", "-x264-params", "slice-max-size=300")
	for _, o := range []packetizeOpts{{seq: 65530, mtu: 200}, {separateParams: true, seq: 1, mtu: 400}} {
		pk := packetize(src, o)
		seeds = append(seeds, packets(pk...))
		// The same with a loss and a swap.
		pk = append(pk[:5:5], pk[6:]...)
		pk[8], pk[9] = pk[9], pk[8]
		seeds = append(seeds, packets(pk...))
	}
	writeSeeds(t, "FuzzH264", seeds)

	var reorder [][]byte
	for _, size := range []byte{0, 3, 15, 63} {
		b := []byte{size}
		for _, s := range []uint16{65530, 65533, 65531, 65532, 65535, 65534, 0, 3, 1, 2, 2, 40, 5, 30000, 30001, 3, 4, 5, 6, 7, 8} {
			b = binary.BigEndian.AppendUint16(b, s)
		}
		reorder = append(reorder, b)
	}
	writeSeeds(t, "FuzzReorder", reorder)

	writeSeeds(t, "FuzzOpus", [][]byte{
		packets(rp(65535, 0xffffff00, false, []byte{0xfc, 1, 2}), rp(0, 0xffffff00+96, false, []byte{0x78, 1}),
			rp(2, 0xffffff00+192, false, []byte{0x83, 0x30}), rp(3, 0, false, nil), rp(4, 5000, false, []byte{0x03})),
	})
}

func writeSeeds(t *testing.T, fuzzer string, seeds [][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", fuzzer)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
