package hls

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin/cmaf"
)

// feeder writes a generated stream into a packager on demand, looping
// the timeline.
type feeder struct {
	p    *cmaf.Packager
	st   *mediatest.Stream
	i    int
	off  int64
	last int64
}

func newFeeder(tb testing.TB, reg *cmaf.Registry, id uint64, audio bool) *feeder {
	st := mediatest.Generate(tb, mediatest.Options{NoAudio: !audio})
	p := cmaf.NewPackager(cmaf.Config{}, hub.Key{Stream: id, Rendition: hub.Source}, reg, nil, nil)
	if err := p.StartSession(&hub.Session{Tracks: st.Tracks}); err != nil {
		tb.Fatal(err)
	}
	return &feeder{p: p, st: st}
}

// next writes one sample.
func (f *feeder) next(tb testing.TB) {
	s := f.st.Samples[f.i]
	au := *s.AU
	au.PTS += f.off
	au.DTS += f.off
	au.Time = time.Now()
	if s.Track == 0 {
		f.last = au.DTS
	}
	if err := f.p.WriteAU(s.Track, &au, 0); err != nil {
		tb.Fatal(err)
	}
	f.i++
	if f.i == len(f.st.Samples) {
		f.i = 0
		f.off = f.last + 3000
	}
}

// untilPart writes samples until part (msn, idx) of the video track exists.
func (f *feeder) untilPart(tb testing.TB, t *cmaf.Track, msn uint64, idx int) {
	for !t.Available(msn, idx) {
		f.next(tb)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

// BenchmarkBlockedRelease1000 measures the time from a part's completion
// to the delivery of the playlist to 1,000 concurrently blocked requests
// (_HLS_msn/_HLS_part) over loopback HTTP: p50 and p99 of that delay, and
// the time until the last one. Compare with BenchmarkPlaylistNonBlocking
// (the cost of one plain playlist request).
func BenchmarkBlockedRelease1000(b *testing.B) {
	const clients = 1000
	reg := cmaf.NewRegistry()
	f := newFeeder(b, reg, 1, true)
	srv, tr := server(b, reg)
	defer srv.Close()
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	video, _ := reg.Lookup(1, hub.Source, cmaf.Video)
	f.untilPart(b, video, 2, 0)

	var all []time.Duration
	var lastAll []time.Duration
	b.ResetTimer()
	for range b.N {
		snap := video.Snapshot()
		msn, part := snap.NextMSN, snap.NextPart
		url := fmt.Sprintf("%s/cmaf/1/source/video.m3u8?_HLS_msn=%d&_HLS_part=%d", srv.URL, msn, part)
		got := make([]time.Time, clients)
		var wg sync.WaitGroup
		var started sync.WaitGroup
		started.Add(clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				started.Done()
				res, err := cl.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				got[i] = time.Now()
				if res.StatusCode != 200 {
					b.Errorf("status %d", res.StatusCode)
				}
			}()
		}
		started.Wait()
		// Let the requests reach the server and block.
		for waitBlocked(reg) < clients {
			time.Sleep(5 * time.Millisecond)
		}
		f.untilPart(b, video, msn, part)
		p, ok := video.Part(msn, part)
		if !ok {
			sg, _ := video.Segment(msn - 1)
			p = sg.Parts[len(sg.Parts)-1]
		}
		wg.Wait()
		var worst time.Duration
		for _, g := range got {
			d := g.Sub(p.Done)
			all = append(all, d)
			worst = max(worst, d)
		}
		lastAll = append(lastAll, worst)
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(all, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(percentile(lastAll, 0.5).Microseconds())/1000, "all-ms")
}

var blockedGauge func() int

// waitBlocked counts requests held by blocking reload.
func waitBlocked(*cmaf.Registry) int { return blockedGauge() }

func server(tb testing.TB, reg *cmaf.Registry) (*httptest.Server, *http.Transport) {
	s, err := New(Config{}, reg, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	blockedGauge = func() int { return int(s.blockedN.Load()) }
	mux := http.NewServeMux()
	s.RegisterRoutes(mux)
	reg.RegisterRoutes(mux, 0)
	srv := httptest.NewServer(mux)
	tr := &http.Transport{MaxIdleConnsPerHost: 1200, MaxConnsPerHost: 0, DisableCompression: true}
	return srv, tr
}

// BenchmarkPlaylistNonBlocking: one plain media playlist request (the
// baseline for BenchmarkBlockedRelease1000).
func BenchmarkPlaylistNonBlocking(b *testing.B) {
	reg := cmaf.NewRegistry()
	f := newFeeder(b, reg, 1, true)
	srv, tr := server(b, reg)
	defer srv.Close()
	defer tr.CloseIdleConnections()
	video, _ := reg.Lookup(1, hub.Source, cmaf.Video)
	f.untilPart(b, video, 5, 0)
	cl := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res, err := cl.Get(srv.URL + "/cmaf/1/source/video.m3u8")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		b.SetBytes(n)
	}
}

// BenchmarkServeParts200 measures part and segment serving throughput
// with 200 concurrent clients over loopback HTTP (bytes/s and requests).
func BenchmarkServeParts200(b *testing.B) {
	const clients = 200
	reg := cmaf.NewRegistry()
	f := newFeeder(b, reg, 1, false)
	srv, tr := server(b, reg)
	defer srv.Close()
	defer tr.CloseIdleConnections()
	video, _ := reg.Lookup(1, hub.Source, cmaf.Video)
	f.untilPart(b, video, 8, 0)
	snap := video.Snapshot()
	var urls []string
	var size int64
	for _, sg := range snap.Segments {
		if !sg.Complete {
			continue
		}
		urls = append(urls, fmt.Sprintf("%s/cmaf/1/source/video/%s", srv.URL, cmaf.SegmentName(sg.MSN)))
		size += int64(sg.Size)
		for _, p := range sg.Parts {
			urls = append(urls, fmt.Sprintf("%s/cmaf/1/source/video/%s", srv.URL, cmaf.PartName(sg.MSN, p.Index)))
			size += int64(len(p.Data))
		}
	}
	cl := &http.Client{Transport: tr}
	b.SetBytes(size / int64(len(urls)))
	b.ReportAllocs()
	b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			res, err := cl.Get(urls[i%len(urls)])
			i++
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkMemoryPerStream10Min packages 10 minutes of media (fed as fast
// as possible) on 4 streams and reports the live heap per stream: the
// window keeps it flat however long the stream runs.
func BenchmarkMemoryPerStream10Min(b *testing.B) {
	const streams = 4
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		reg := cmaf.NewRegistry()
		var fs []*feeder
		for i := range streams {
			fs = append(fs, newFeeder(b, reg, uint64(i+1), true))
		}
		for _, f := range fs {
			dur := f.st.Duration
			n := int(10*time.Minute/dur) * len(f.st.Samples)
			for range n {
				f.next(b)
			}
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/streams/1e6, "MB/stream")
		runtime.KeepAlive(fs)
	}
}

var _ = context.Background
