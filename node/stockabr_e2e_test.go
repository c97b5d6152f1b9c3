package node_test

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/stockplayers"
)

var streamInfRE = regexp.MustCompile(`#EXT-X-STREAM-INF:.*?BANDWIDTH=(\d+),AVERAGE-BANDWIDTH=(\d+).*?RESOLUTION=\d+x(\d+)`)

// variant is one line of the multivariant playlist.
type variant struct{ bandwidth, average int } // bit/s, video and audio

// ladderVariants reads the multivariant playlist: each variant's
// BANDWIDTH and AVERAGE-BANDWIDTH (the measured average) by its height.
func ladderVariants(t *testing.T, master string) map[int]variant {
	t.Helper()
	out := map[int]variant{}
	for _, m := range streamInfRE.FindAllStringSubmatch(string(fetch(t, master)), -1) {
		bw, _ := strconv.Atoi(m[1])
		avg, _ := strconv.Atoi(m[2])
		h, _ := strconv.Atoi(m[3])
		out[h] = variant{bw, avg}
	}
	return out
}

// Throttling (issue 12, acceptance 2).
const (
	abrSettle = 10 * time.Second // unthrottled play before the throttle
	abrDown   = 20 * time.Second // to step down once throttled
	abrUp     = 40 * time.Second // to step back up once lifted
	abrStall  = time.Second      // the longest stall allowed meanwhile
)

// playABR plays the ladder in one stock player, throttles its tab's
// network (DevTools' Network.emulateNetworkConditions) to half again the
// lowest variant's BANDWIDTH, and checks that the player steps down to a
// rung with less bandwidth than the one it played, then, the throttle
// lifted, back up to one with more than the throttled one, without a stall
// longer than a second.
func playABR(t *testing.T, b *browsertest.Browser, srv *stockplayers.Server, s streamView, only string) {
	player, format, _ := strings.Cut(only, " ")
	src := s.HLSCMAFURL
	if format == "dash" {
		src = s.DASHURL
	}
	vs := ladderVariants(t, s.HLSCMAFURL)
	if len(vs) < 2 {
		t.Fatalf("ladder of %d variants (%v): nothing to switch between", len(vs), vs)
	}
	low := 0
	bw := map[int]int{}
	for h, v := range vs {
		bw[h] = v.bandwidth
		if low == 0 || v.bandwidth < vs[low].bandwidth {
			low = h
		}
	}
	tab := b.Tab(t)
	if err := stockplayers.Open(tab, srv.PlayerURL(stockplayers.Player(player), src)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = browsertest.Throttle(tab, 0) })

	var last stockplayers.Stats
	var firstAt float64 // page clock (s since load) of the first frame
	// watch polls the player until ok holds, failing after d.
	watch := func(d time.Duration, what string, ok func(st stockplayers.Stats) bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			st, err := stockplayers.Read(tab)
			if err == nil {
				last = st
				if st.FirstPlayMs != nil && firstAt == 0 {
					firstAt = *st.FirstPlayMs / 1000
				}
				if ok(st) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v (rung %v, ladder %v, estimate %s bit/s, downlink %s Mbit/s, errors %v, read error %v)",
					what, d, rungOf(last), bw, fmtPtr(last.Estimate), fmtPtr(last.Downlink), last.Errors, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	rungBW := func(st stockplayers.Stats) int {
		if st.Rung == nil {
			return 0
		}
		return bw[*st.Rung]
	}
	began := time.Now()
	watch(30*time.Second, "first frame", func(st stockplayers.Stats) bool { return st.FirstPlayMs != nil })
	time.Sleep(abrSettle)
	// Unthrottled, it plays (or steps up to) a rung above the lowest.
	watch(abrUp, fmt.Sprintf("a rung above the lowest (%dp) unthrottled", low), func(st stockplayers.Stats) bool { return rungBW(st) > bw[low] })
	top := last
	// One rung down: the throttle sits between what the rung it plays
	// really needs (its measured average) and what the next lower one
	// does (their geometric mean), so that the player has a rung to step
	// down to that the throttled link carries. Averages, not BANDWIDTH:
	// an easy picture averages far below the rate caps.
	vs = ladderVariants(t, s.HLSCMAFURL) // averages after the settling
	below := 0
	for h, v := range vs {
		if v.average < vs[rungOf(top)].average && (below == 0 || v.average > vs[below].average) {
			below = h
		}
	}
	if below == 0 {
		t.Fatalf("no variant averages less than the %dp one it plays (ladder %v)", rungOf(top), vs)
	}
	limit := int(math.Sqrt(float64(vs[below].average) * float64(vs[rungOf(top)].average)))
	if limit < vs[below].average*5/4 {
		t.Fatalf("the %dp and %dp variants average %d and %d bit/s: too close for a throttle between them (ladder %v)", rungOf(top), below, vs[rungOf(top)].average, vs[below].average, vs)
	}

	if err := browsertest.Throttle(tab, limit); err != nil {
		t.Fatalf("throttle: %v", err)
	}
	throttled := time.Now()
	watch(abrDown, fmt.Sprintf("step down from %dp under a %d bit/s throttle", rungOf(top), limit), func(st stockplayers.Stats) bool {
		return rungBW(st) > 0 && rungBW(st) < rungBW(top)
	})
	down := last
	tookDown := time.Since(throttled)
	// Stay throttled a while on the lower rung: it must play there.
	time.Sleep(5 * time.Second)

	if err := browsertest.Throttle(tab, 0); err != nil {
		t.Fatalf("lift the throttle: %v", err)
	}
	lifted := time.Now()
	watch(abrUp, fmt.Sprintf("step up from %dp once the throttle lifted", rungOf(down)), func(st stockplayers.Stats) bool {
		return rungBW(st) > rungBW(down)
	})
	up := last
	tookUp := time.Since(lifted)
	time.Sleep(3 * time.Second)
	st, err := stockplayers.Read(tab)
	if err != nil {
		t.Fatal(err)
	}
	var long []stockplayers.Stall
	for _, x := range st.Stalls {
		if x.At > firstAt+stockWarmup.Seconds() && x.Dur > abrStall.Seconds() {
			long = append(long, x)
		}
	}
	if st.Stalled > abrStall.Seconds() {
		long = append(long, stockplayers.Stall{At: -1, Dur: st.Stalled})
	}
	t.Logf("%s ABR: %dp (%d bit/s) → throttled to %d bit/s → %dp after %.1fs → lifted → %dp after %.1fs; stalls %v; %v in all",
		only, rungOf(top), rungBW(top), limit, rungOf(down), tookDown.Seconds(), rungOf(up), tookUp.Seconds(), st.Stalls, time.Since(began).Round(time.Second))
	if len(long) > 0 {
		t.Errorf("%s: stalls longer than %v while switching: %v", only, abrStall, long)
	}
}

func rungOf(st stockplayers.Stats) int {
	if st.Rung == nil {
		return 0
	}
	return *st.Rung
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}
