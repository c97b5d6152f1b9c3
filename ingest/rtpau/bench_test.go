package rtpau

import (
	"testing"

	"github.com/pion/rtp"
)

// bench720p is 2 s of 1280x720 30 fps baseline H.264 (x264, about 2.5
// Mbit/s like a browser at 720p) packetized at MTU 1200.
func bench720p(b *testing.B) ([]*rtp.Packet, int64) {
	src := encode(b, "1280x720", 2, "-profile:v", "baseline", "-g", "30", "-b:v", "2500k")
	pkts := packetize(src, packetizeOpts{seq: 65000, ts: 1})
	var n int64
	for _, p := range pkts {
		n += int64(len(p.Payload))
	}
	return pkts, n
}

// BenchmarkH264Depacketize720p measures H264.Push alone on in-order
// packets; bytes/s is RTP payload throughput.
func BenchmarkH264Depacketize720p(b *testing.B) {
	pkts, n := bench720p(b)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		h := NewH264(NewClock(90000, nil))
		for _, p := range pkts {
			if _, err := h.Push(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkReorderH264720p is the full per-packet path (Reorder + H264);
// compare with BenchmarkH264Depacketize720p for the cost of reordering.
func BenchmarkReorderH264720p(b *testing.B) {
	pkts, n := bench720p(b)
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		r := NewReorder(0)
		h := NewH264(NewClock(90000, nil))
		for _, p := range pkts {
			for _, q := range r.Push(p) {
				if _, err := h.Push(q); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// BenchmarkReorderShuffled measures Reorder alone on packets displaced
// within 8 positions.
func BenchmarkReorderShuffled(b *testing.B) {
	pkts := make([]*rtp.Packet, 4096)
	for i := range pkts {
		pkts[i] = pkt(uint16(i ^ 5))
	}
	b.ReportAllocs()
	for b.Loop() {
		r := NewReorder(64)
		for _, p := range pkts {
			r.Push(p)
		}
	}
}
