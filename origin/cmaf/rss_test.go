package cmaf_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
)

// rssBytes reads the process's resident set size (Linux /proc).
func rssBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}

// settledRSS returns RSS and Go heap in use after a GC that returns freed
// memory to the OS, so that samples compare what is live.
func settledRSS(t *testing.T) (rss int64, heap uint64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rssBytes(t), ms.HeapInuse
}

// TestResidentMemoryPerStream is the "resident memory per live stream"
// piece of make bench (scripts/bench-origin.sh), not a unit test: it runs
// the real origin with BENCH_STREAMS synthetic 640×360 30 fps streams
// (H.264 + Opus from internal/mediatest, played in real time through the
// hub) for BENCH_DURATION (default 10m) and reports resident memory per
// stream against the idle origin measured in the same run (the baseline),
// and the growth over the second half of the run (flat memory: the
// sliding window bounds it).
func TestResidentMemoryPerStream(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("BENCH_STREAMS"))
	if n <= 0 {
		t.Skip("benchmark piece: set BENCH_STREAMS (see scripts/bench-origin.sh)")
	}
	dur := 10 * time.Minute
	if v := os.Getenv("BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("BENCH_DURATION: %v", err)
		}
		dur = d
	}
	const loopLen = 10 * time.Second
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: loopLen}}})

	ctx, cancel := context.WithTimeout(context.Background(), dur+time.Minute)
	defer cancel()
	h := hub.New(hub.DefaultQueue)
	o, err := origin.New(origin.Config{}, origin.Deps{Hub: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	base, baseHeap := settledRSS(t)

	playCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	for i := range n {
		pub, err := h.Publish(hub.Key{Stream: uint64(i + 1), Rendition: hub.Source},
			hub.Session{ID: fmt.Sprintf("bench-%d", i), Tracks: stream.Tracks})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pub.Close()
			_ = stream.Play(playCtx, pub, mediatest.PlayOptions{Realtime: true, Loops: int(dur/loopLen) + 2})
		}()
	}
	start := time.Now()
	var half int64
	tick := time.NewTicker(min(dur/10, 30*time.Second))
	defer tick.Stop()
	for time.Since(start) < dur {
		select {
		case <-ctx.Done():
			t.Fatal("timed out")
		case <-tick.C:
		}
		rss, heap := settledRSS(t)
		t.Logf("%6.0fs rss %.1f MiB heap %.1f MiB", time.Since(start).Seconds(), mib(rss), mib(int64(heap)))
		if half == 0 && time.Since(start) >= dur/2 {
			half = rss
		}
	}
	end, endHeap := settledRSS(t)
	per := float64(end-base) / float64(n)
	fmt.Printf("origin resident memory: %d streams for %v: %.2f MiB/stream (heap %.2f MiB/stream); idle origin %.1f MiB (baseline); "+
		"growth over the second half %+.2f MiB/stream\n",
		n, dur, mib(int64(per)), mib(int64(endHeap-baseHeap))/float64(n), mib(base), mib(end-half)/float64(n))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
