package node_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/stockplayers"
)

var streamInfRE = regexp.MustCompile(`#EXT-X-STREAM-INF:.*?BANDWIDTH=(\d+).*?RESOLUTION=\d+x(\d+)`)

// ladderBandwidths reads the multivariant playlist: BANDWIDTH (bit/s,
// video and audio) by the variant's height.
func ladderBandwidths(t *testing.T, master string) map[int]int {
	t.Helper()
	out := map[int]int{}
	for _, m := range streamInfRE.FindAllStringSubmatch(string(fetch(t, master)), -1) {
		bw, _ := strconv.Atoi(m[1])
		h, _ := strconv.Atoi(m[2])
		out[h] = bw
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
	bw := ladderBandwidths(t, s.HLSCMAFURL)
	low := 0
	for _, v := range bw {
		if low == 0 || v < low {
			low = v
		}
	}
	if len(bw) < 2 {
		t.Fatalf("ladder of %d variants (%v): nothing to switch between", len(bw), bw)
	}
	limit := low * 3 / 2
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
				t.Fatalf("%s: not within %v (rung %v, ladder %v, errors %v, read error %v)", what, d, rungOf(last), bw, last.Errors, err)
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
	watch(5*time.Second, "a rung of the ladder", func(st stockplayers.Stats) bool { return rungBW(st) > 0 })
	top := last
	if rungBW(top) <= limit {
		t.Fatalf("%s plays the %dp rung (%d bit/s) unthrottled: at or under the throttle (%d bit/s), so it cannot step down (ladder %v)", only, rungOf(top), rungBW(top), limit, bw)
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
