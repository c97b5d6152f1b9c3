package ffenc

import "testing"

func TestUnwrap(t *testing.T) {
	for _, tc := range []struct{ ts, ref, want int64 }{
		{1000, 900, 1000},
		{900, 1000, 900},
		{5, tsMask - 10, tsMask + 1 + 5},                // output wrapped past 2^33
		{tsMask - 5, tsMask + 20, tsMask - 5},           // output just before the wrap
		{(3<<33 + 77) & tsMask, 3<<33 + 50, 3<<33 + 77}, // third lap
		{0, 0, 0},
	} {
		if got := unwrap(tc.ts, tc.ref); got != tc.want {
			t.Errorf("unwrap(%d, %d) = %d, want %d", tc.ts, tc.ref, got, tc.want)
		}
	}
}

func FuzzUnwrap(f *testing.F) {
	f.Add(int64(0), int64(12345))
	f.Add(int64(1<<40), int64(-77))
	f.Fuzz(func(t *testing.T, v, d int64) {
		if v < 0 || v > 1<<50 || d < -(1<<31) || d > 1<<31 {
			return
		}
		ref := v + d
		if ref < 0 {
			return
		}
		if got := unwrap(v&tsMask, ref); got != v {
			t.Fatalf("unwrap(%d, %d) = %d, want %d", v&tsMask, ref, got, v)
		}
	})
}
