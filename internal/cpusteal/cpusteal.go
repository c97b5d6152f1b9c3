// Package cpusteal tells a real-time test whether the machine gave it the
// CPU it ran on. On a shared host the hypervisor runs other guests on this
// machine's virtual CPUs, and the guest kernel counts that time as steal
// (/proc/stat, the eighth figure of the "cpu" line). A test that measures
// playback in real time (latency, stalls, start-up) judges those figures
// only for a window in which little was stolen: a CI run on a host that
// took most of the CPU (the rtpau tests at 4× their usual time, every
// browser test late at once) says nothing about the node, and its figures
// are then logged instead of judged. Everything else a test checks
// (playback, pictures, errors) is judged as always.
//
//	w := cpusteal.Start()
//	… play …
//	if lat > 1.5 {
//		w.Errorf(t, "latency %.2fs, want ≤ 1.5s", lat)
//	}
package cpusteal

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Starved is the share of the machine's CPU time stolen over a window
// above which its real-time figures are not judged.
const Starved = 0.20

// Window is a span of time over which steal is measured.
type Window struct {
	steal, total uint64 // jiffies at the start
	ok           bool
	at           time.Time
}

// Start opens a window now.
func Start() Window {
	s, tot, err := readStat()
	return Window{steal: s, total: tot, ok: err == nil, at: time.Now()}
}

// Stolen returns the share (0–1) of all CPU time on the machine that the
// hypervisor gave away since Start; 0 where /proc/stat cannot be read.
func (w Window) Stolen() float64 {
	s, tot, err := readStat()
	if err != nil || !w.ok || tot <= w.total {
		return 0
	}
	return float64(s-w.steal) / float64(tot-w.total)
}

// String says how much was stolen, for logs.
func (w Window) String() string {
	return fmt.Sprintf("%.0f%% of the CPU stolen by the host over %v", 100*w.Stolen(), time.Since(w.at).Round(time.Second))
}

// Errorf reports a real-time figure that missed its bound: an error, unless
// the host took more than Starved of the CPU during the window, in which
// case the figure is logged as not judged.
func (w Window) Errorf(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if st := w.Stolen(); st > Starved {
		tb.Logf("not judged (%s): %s", w, msg)
		return
	}
	tb.Errorf("%s (%s)", msg, w)
}

// readStat is read; tests replace it.
var readStat = read

// Fatalf is Errorf for a real-time precondition the rest of the test
// needs: it stops the test, skipped as not judged when the host starved
// the machine, failed otherwise.
func (w Window) Fatalf(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if w.Stolen() > Starved {
		tb.Skipf("not judged (%s): %s", w, msg)
		return
	}
	tb.Fatalf("%s (%s)", msg, w)
}

// read returns the steal and total jiffies of the "cpu" line of
// /proc/stat (proc(5): user nice system idle iowait irq softirq steal …;
// guest time is already in user).
func read() (steal, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("cpusteal: unexpected /proc/stat line %q", line)
	}
	for i, s := range f[1:9] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("cpusteal: /proc/stat: %w", err)
		}
		total += v
		if i == 7 {
			steal = v
		}
	}
	return steal, total, nil
}
