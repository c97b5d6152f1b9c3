package cpusteal

import (
	"fmt"
	"strings"
	"testing"
)

// TestRead: this machine's /proc/stat has a steal figure, and a window's
// share is a fraction.
func TestRead(t *testing.T) {
	steal, total, err := read()
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 || steal > total {
		t.Fatalf("steal %d of %d jiffies", steal, total)
	}
	w := Start()
	for i := 0; i < 1e7; i++ { // some CPU time for the window to count
	}
	if st := w.Stolen(); st < 0 || st > 1 {
		t.Fatalf("stolen %v, want a share in [0, 1]", st)
	}
	t.Logf("%s", w)
}

// TestErrorfJudgesUnlessStarved: a figure that misses its bound fails the
// test in a window with little steal, and is only logged in one where the
// host took more than Starved of the CPU.
func TestErrorfJudgesUnlessStarved(t *testing.T) {
	defer func(f func() (uint64, uint64, error)) { readStat = f }(readStat)
	for _, tc := range []struct {
		name         string
		steal, total uint64 // since the window's start
		fail         bool
	}{
		{"calm", 5, 1000, true},
		{"at the bound", 200, 1000, true},
		{"starved", 600, 1000, false},
		{"no time passed", 0, 0, true},
	} {
		steal, total := uint64(100), uint64(10000)
		readStat = func() (uint64, uint64, error) { return steal, total, nil }
		w := Start()
		steal, total = steal+tc.steal, total+tc.total
		for _, report := range []func(testing.TB, string, ...any){w.Errorf, w.Fatalf} {
			rec := &recorder{TB: t}
			report(rec, "latency %.1fs", 3.0)
			if rec.failed != tc.fail || !strings.Contains(rec.msg, "latency 3.0s") {
				t.Errorf("%s: failed %v, want %v: %q", tc.name, rec.failed, tc.fail, rec.msg)
			}
			if !tc.fail && !strings.Contains(rec.msg, "not judged") {
				t.Errorf("%s: %q does not say the figure was not judged", tc.name, rec.msg)
			}
		}
	}
}

// recorder is a testing.TB that notes Errorf and Logf.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(f string, a ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(f, a...)
}

func (r *recorder) Logf(f string, a ...any) { r.msg = fmt.Sprintf(f, a...) }

func (r *recorder) Skipf(f string, a ...any) { r.msg = "skip: " + fmt.Sprintf(f, a...) }

func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...) }
