package node_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// edgeSample is how far behind the wall clock each media playlist's last
// listed part ends, at one instant.
type edgeSample struct {
	at  time.Time
	lag map[string]time.Duration // playlist → now − listed edge
}

// edgeSampler reads the media playlists of one stream (non-blocking, so
// what a player polling now would see) every 200 ms and keeps how far
// each listed edge is behind real time, and every time a playlist's edge
// went backward (a listed part taken back).
type edgeSampler struct {
	mu       sync.Mutex
	samples  []edgeSample
	backward map[string]int
	last     map[string]time.Time
}

// sampleEdges samples base+"/"+name for each name until ctx ends.
func sampleEdges(ctx context.Context, base string, names []string) *edgeSampler {
	es := &edgeSampler{backward: map[string]int{}, last: map[string]time.Time{}}
	go func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			s := edgeSample{at: time.Now(), lag: map[string]time.Duration{}}
			for _, name := range names {
				e, ok := listedEdge(ctx, base+"/"+name)
				if !ok {
					continue
				}
				// Measured when the answer came: a non-blocking load
				// waits out a held segment completion (origin/hls tail.go).
				s.lag[name] = time.Since(e)
				es.mu.Lock()
				if l, seen := es.last[name]; seen && e.Before(l.Add(-time.Millisecond)) {
					es.backward[name]++
				}
				es.last[name] = e
				es.mu.Unlock()
			}
			es.mu.Lock()
			es.samples = append(es.samples, s)
			es.mu.Unlock()
		}
	}()
	return es
}

// listedEdge returns the wall-clock end of a media playlist's last listed
// part or segment (EXT-X-PROGRAM-DATE-TIME plus what follows it).
func listedEdge(ctx context.Context, url string) (time.Time, bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return time.Time{}, false
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return time.Time{}, false
	}
	var seg time.Time
	var parts time.Duration
	for _, l := range strings.Split(string(body), "\n") {
		switch {
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:")); err == nil {
				seg, parts = t, 0
			}
		case strings.HasPrefix(l, "#EXTINF:"):
			d, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(l, "#EXTINF:"), ","), 64)
			seg, parts = seg.Add(time.Duration(d*float64(time.Second))), 0
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			for _, a := range strings.Split(strings.TrimPrefix(l, "#EXT-X-PART:"), ",") {
				if v, ok := strings.CutPrefix(a, "DURATION="); ok {
					d, _ := strconv.ParseFloat(v, 64)
					parts += time.Duration(d * float64(time.Second))
				}
			}
		}
	}
	return seg.Add(parts), !seg.IsZero()
}

// summary gives each playlist's lag p50/p90/max and backward moves.
func (es *edgeSampler) summary() string {
	es.mu.Lock()
	defer es.mu.Unlock()
	lags := map[string][]time.Duration{}
	for _, s := range es.samples {
		for n, l := range s.lag {
			lags[n] = append(lags[n], l)
		}
	}
	var out []string
	for n, l := range lags {
		slices.Sort(l)
		out = append(out, fmt.Sprintf("%s p50 %v p90 %v max %v backward %d", n, l[len(l)/2].Round(time.Millisecond),
			l[len(l)*9/10].Round(time.Millisecond), l[len(l)-1].Round(time.Millisecond), es.backward[n]))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// before lists the samples in the d before t, one line each.
func (es *edgeSampler) before(t time.Time, d time.Duration) string {
	es.mu.Lock()
	defer es.mu.Unlock()
	var out []string
	for _, s := range es.samples {
		if s.at.Before(t.Add(-d)) || s.at.After(t.Add(300*time.Millisecond)) {
			continue
		}
		var names []string
		for n := range s.lag {
			names = append(names, n)
		}
		slices.Sort(names)
		line := fmt.Sprintf("  %+.1fs:", s.at.Sub(t).Seconds())
		for _, n := range names {
			line += fmt.Sprintf(" %s %v", n, s.lag[n].Round(10*time.Millisecond))
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
