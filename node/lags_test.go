package node_test

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// lagSeries are the node's lag histograms that say where a stream's
// latency went: the publisher's side (arrival) and the encoder's (out).
var lagSeries = []struct{ name, metric, kind string }{
	{"arrival video", "edgenode_ingest_arrival_lag_seconds", "video"},
	{"arrival audio", "edgenode_ingest_arrival_lag_seconds", "audio"},
	{"encoded video", "edgenode_hwenc_output_lag_seconds", "video"},
	{"encoded AAC", "edgenode_hwenc_output_lag_seconds", "audio"},
}

// histograms maps "metric kind" to its cumulative bucket counts by le.
type histograms map[string]map[float64]float64

// readLags scrapes the lag histograms from a node's metrics URL (nil when
// it cannot be read: a figure for the log, not a check).
func readLags(t *testing.T, url string) histograms {
	resp, err := http.Get(url)
	if err != nil {
		t.Logf("metrics: %v", err)
		return nil
	}
	defer resp.Body.Close()
	h := histograms{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		for _, s := range lagSeries {
			pre := s.metric + `_bucket{kind="` + s.kind + `",le="`
			if !strings.HasPrefix(l, pre) {
				continue
			}
			le, rest, ok := strings.Cut(strings.TrimPrefix(l, pre), `"} `)
			if !ok {
				continue
			}
			b, err1 := strconv.ParseFloat(le, 64)
			n, err2 := strconv.ParseFloat(rest, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			key := s.metric + " " + s.kind
			if h[key] == nil {
				h[key] = map[float64]float64{}
			}
			h[key][b] = n
		}
	}
	return h
}

// lagSummary says p50/p90 of each lag series over what was observed
// between two scrapes (bucket-interpolated, as histogram_quantile).
func lagSummary(before, after histograms) string {
	var parts []string
	for _, s := range lagSeries {
		key := s.metric + " " + s.kind
		a := after[key]
		if a == nil {
			continue
		}
		les := make([]float64, 0, len(a))
		for le := range a {
			les = append(les, le)
		}
		slices.Sort(les)
		counts := make([]float64, len(les))
		for i, le := range les {
			counts[i] = a[le] - before[key][le]
		}
		total := counts[len(counts)-1]
		if total <= 0 {
			continue
		}
		q := func(p float64) string {
			rank := p * total
			lo, prev := 0.0, 0.0
			for i, le := range les {
				if counts[i] >= rank {
					if math.IsInf(le, 1) {
						return fmt.Sprintf(">%.2fs", lo)
					}
					f := 0.0
					if counts[i] > prev {
						f = (rank - prev) / (counts[i] - prev)
					}
					return fmt.Sprintf("%.2fs", lo+(le-lo)*f)
				}
				lo, prev = le, counts[i]
			}
			return "?"
		}
		parts = append(parts, fmt.Sprintf("%s p50 %s p90 %s (%.0f)", s.name, q(0.5), q(0.9), total))
	}
	return strings.Join(parts, "; ")
}
