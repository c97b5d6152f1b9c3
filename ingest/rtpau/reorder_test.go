package rtpau

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func pkt(seq uint16) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq}, Payload: []byte{byte(seq)}}
}

func seqs(ps []*rtp.Packet) []uint16 {
	var s []uint16
	for _, p := range ps {
		s = append(s, p.SequenceNumber)
	}
	return s
}

// pushAll pushes seq in order and returns the released sequence numbers.
func pushAll(r *Reorder, in []uint16) []uint16 {
	var out []uint16
	for _, s := range in {
		out = append(out, seqs(r.Push(pkt(s)))...)
	}
	return out
}

func TestReorder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		in    []uint16
		want  []uint16
		flush []uint16
		stats ReorderStats
	}{
		{
			name: "in order",
			size: 4, in: []uint16{10, 11, 12},
			want:  []uint16{10, 11, 12},
			stats: ReorderStats{Packets: 3},
		},
		{
			name: "swapped pair",
			size: 4, in: []uint16{10, 12, 11, 13},
			want:  []uint16{10, 11, 12, 13},
			stats: ReorderStats{Packets: 4},
		},
		{
			name: "wrap 65535 to 0 in order",
			size: 8, in: []uint16{65533, 65534, 65535, 0, 1, 2},
			want:  []uint16{65533, 65534, 65535, 0, 1, 2},
			stats: ReorderStats{Packets: 6},
		},
		{
			name: "wrap with reordering across 0",
			size: 8, in: []uint16{65534, 0, 65535, 2, 1, 3},
			want:  []uint16{65534, 65535, 0, 1, 2, 3},
			stats: ReorderStats{Packets: 6},
		},
		{
			name: "late packet after wrap is dropped, not released as new",
			size: 8, in: []uint16{65535, 0, 1, 65534, 2},
			want:  []uint16{65535, 0, 1, 2},
			stats: ReorderStats{Packets: 5, Late: 1},
		},
		{
			name: "duplicate held and released",
			size: 8, in: []uint16{1, 3, 3, 2, 2},
			want:  []uint16{1, 2, 3},
			stats: ReorderStats{Packets: 5, Duplicates: 1, Late: 1},
		},
		{
			name: "gap given up when window overflows",
			size: 4, in: []uint16{1, 3, 4, 5, 6},
			// 6 does not fit behind the gap at 2 (window 2..5): give up 2.
			want:  []uint16{1, 3, 4, 5, 6},
			stats: ReorderStats{Packets: 5, Lost: 1},
		},
		{
			name: "gap given up across the wrap",
			size: 4, in: []uint16{65534, 0, 1, 2, 3},
			want:  []uint16{65534, 0, 1, 2, 3},
			stats: ReorderStats{Packets: 5, Lost: 1},
		},
		{
			name: "overflow gives up only the oldest gap",
			size: 8, in: []uint16{1, 3, 6, 7, 8, 9, 10, 5, 4},
			// 10 does not fit behind the gap at 2: give up 2, release 3;
			// the gap at 4..5 stays open and is filled.
			want:  []uint16{1, 3, 4, 5, 6, 7, 8, 9, 10},
			stats: ReorderStats{Packets: 9, Lost: 1},
		},
		{
			name: "loss burst shorter than resync gap is counted",
			size: 4, in: []uint16{1, 2, 103},
			want:  []uint16{1, 2, 103},
			stats: ReorderStats{Packets: 3, Lost: 100},
		},
		{
			name: "big jump forward resyncs without loss",
			size: 4, in: []uint16{1, 2, 20000, 20001},
			want:  []uint16{1, 2, 20000, 20001},
			stats: ReorderStats{Packets: 4, Resyncs: 1},
		},
		{
			name: "restart far behind resyncs after a window of late packets",
			size: 2, in: []uint16{30000, 30001, 100, 101, 102, 103},
			want:  []uint16{30000, 30001, 102, 103},
			stats: ReorderStats{Packets: 6, Late: 2, Resyncs: 1},
		},
		{
			name: "flush releases held packets",
			size: 8, in: []uint16{1, 3, 5},
			want:  []uint16{1},
			flush: []uint16{3, 5},
			stats: ReorderStats{Packets: 3, Lost: 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReorder(tc.size)
			got := pushAll(r, tc.in)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("released %v, want %v", got, tc.want)
			}
			if f := seqs(r.Flush()); !slices.Equal(f, tc.flush) {
				t.Fatalf("flush released %v, want %v", f, tc.flush)
			}
			if s := r.Stats(); s != tc.stats {
				t.Fatalf("stats %+v, want %+v", s, tc.stats)
			}
		})
	}
}

func TestReorderPaddingPassesThrough(t *testing.T) {
	r := NewReorder(8)
	pad := &rtp.Packet{Header: rtp.Header{SequenceNumber: 2, Padding: true, PaddingSize: 200}}
	var out []uint16
	out = append(out, seqs(r.Push(pkt(1)))...)
	out = append(out, seqs(r.Push(pkt(3)))...)
	out = append(out, seqs(r.Push(pad))...)
	if !slices.Equal(out, []uint16{1, 2, 3}) {
		t.Fatalf("released %v", out)
	}
	if s := r.Stats(); s.Padding != 1 || s.Lost != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReorderMaxDelay(t *testing.T) {
	now := time.Unix(1000, 0)
	r := NewReorder(64)
	r.SetMaxDelay(100*time.Millisecond, func() time.Time { return now })
	if got := seqs(r.Push(pkt(1))); !slices.Equal(got, []uint16{1}) {
		t.Fatal(got)
	}
	// 2 is missing; 3 and 4 wait.
	if got := r.Push(pkt(3)); len(got) != 0 {
		t.Fatal(seqs(got))
	}
	now = now.Add(50 * time.Millisecond)
	if got := r.Push(pkt(4)); len(got) != 0 {
		t.Fatal(seqs(got))
	}
	now = now.Add(60 * time.Millisecond)
	if got := seqs(r.Push(pkt(5))); !slices.Equal(got, []uint16{3, 4, 5}) {
		t.Fatalf("after max delay released %v", got)
	}
	if r.Lost() != 1 {
		t.Fatalf("lost %d", r.Lost())
	}
	// The gap is closed: 2 is now late.
	if got := r.Push(pkt(2)); len(got) != 0 {
		t.Fatal(seqs(got))
	}
}

// TestReorderShuffledWrap shuffles a long run across several wrap-arounds
// inside the window and checks every packet comes out once, in order.
func TestReorderShuffledWrap(t *testing.T) {
	const n, win = 200000, 16
	rng := rand.New(rand.NewPCG(1, 2))
	in := make([]uint16, n)
	for i := range in {
		in[i] = uint16(65500 + i)
	}
	// Displace each packet by less than half the window. The first packet
	// stays first: it defines where the sequence starts.
	for i := 1; i+win/2 < n; i += win / 2 {
		rng.Shuffle(win/2, func(a, b int) { in[i+a], in[i+b] = in[i+b], in[i+a] })
	}
	r := NewReorder(win)
	got := append(pushAll(r, in), seqs(r.Flush())...)
	if len(got) != n {
		t.Fatalf("released %d of %d", len(got), n)
	}
	for i, s := range got {
		if s != uint16(65500+i) {
			t.Fatalf("position %d: seq %d, want %d", i, s, uint16(65500+i))
		}
	}
	if s := r.Stats(); s.Lost != 0 || s.Late != 0 || s.Resyncs != 0 {
		t.Fatalf("stats %+v", s)
	}
}
