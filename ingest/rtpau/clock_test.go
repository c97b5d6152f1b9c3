package rtpau

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// fakeNow is a settable arrival clock.
type fakeNow struct{ t time.Time }

func (f *fakeNow) now() time.Time { return f.t }

func TestClockUnwrap(t *testing.T) {
	c := NewClock(90000, nil)
	for _, tc := range []struct {
		ts   uint32
		want int64
	}{
		{0xffff0000, 0},
		{0xffff0000 + 3000, 3000},
		{0xfffffc18, 0xfc18 - 0x0000 + 0xffff0000 - 0xffff0000}, // just below the wrap
		{0x00000bb8, 0x10000 + 0xbb8},                           // wrapped
		{0x00000000, 0x10000},                                   // backwards across the wrap (B-frame)
		{0x00001770, 0x10000 + 0x1770},
	} {
		if got := c.Ticks(tc.ts); got != tc.want {
			t.Fatalf("Ticks(%#x) = %d, want %d", tc.ts, got, tc.want)
		}
	}
	// 48 kHz audio wraps after 24.9 hours: run 30 hours in 1 s steps.
	a := NewClock(48000, nil)
	ts := uint32(4294000000)
	a.Ticks(ts)
	var want int64
	for i := 0; i < 30*3600; i++ {
		ts += 48000
		want += 48000
		if got := a.Ticks(ts); got != want {
			t.Fatalf("step %d: %d, want %d", i, got, want)
		}
	}
}

func TestClockArrivalMapping(t *testing.T) {
	start := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	fn := &fakeNow{start}
	c := NewClock(90000, fn.now)
	if c.Ticks(1000) != 0 {
		t.Fatal("first tick not 0")
	}
	if got := c.Time(0); !got.Equal(start) {
		t.Fatalf("Time(0) = %v", got)
	}
	// A packet 1 s later in media time arrives 1.2 s later (delayed): no change.
	fn.t = start.Add(1200 * time.Millisecond)
	c.Ticks(1000 + 90000)
	if got := c.Time(90000); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("delayed packet moved the mapping: %v", got)
	}
	// The first packet was delayed by 30 ms relative to this one: follow it.
	fn.t = start.Add(2*time.Second - 30*time.Millisecond)
	c.Ticks(1000 + 180000)
	if got, want := c.Time(0), start.Add(-30*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Time(0) = %v, want %v", got, want)
	}
	// Timestamps jumped back 10 s: re-anchor on arrival.
	fn.t = start.Add(3 * time.Second)
	back := uint32(1000 + 180000)
	tk := c.Ticks(back - 900000)
	if got, want := c.Time(tk), fn.t; !got.Equal(want) {
		t.Fatalf("after jump back Time = %v, want %v", got, want)
	}
}

func TestClockSenderReport(t *testing.T) {
	local := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	fn := &fakeNow{local}
	video := NewClock(90000, fn.now)
	audio := NewClock(48000, fn.now)

	// The sender's clock is 2 s behind ours; video timestamps start at
	// 5000, audio at 777; both tracks captured at sender time S.
	sender := local.Add(-2 * time.Second)
	video.Ticks(5000)
	audio.Ticks(777)
	video.HandleSenderReport(&rtcp.SenderReport{NTPTime: ToNTP(sender.Add(time.Second)), RTPTime: 5000 + 90000})
	audio.HandleSenderReport(&rtcp.SenderReport{NTPTime: ToNTP(sender.Add(500 * time.Millisecond)), RTPTime: 777 + 24000})

	if got := video.Time(0); !got.Equal(sender) {
		t.Fatalf("video Time(0) = %v, want %v", got, sender)
	}
	if got := audio.Time(48000); !got.Equal(sender.Add(time.Second)) {
		t.Fatalf("audio Time(48000) = %v, want %v", got, sender.Add(time.Second))
	}
	if st := video.Stats(); !st.FromSenderReport || st.SenderReports != 1 || st.ReportShift != -2*time.Second {
		t.Fatalf("stats %+v, want one report moving wall times 2 s earlier than arrival", st)
	}

	// A report from a sender whose clock says 1900 is ignored.
	c := NewClock(90000, fn.now)
	c.Ticks(0)
	c.HandleSenderReport(&rtcp.SenderReport{NTPTime: 1 << 32, RTPTime: 0})
	if st := c.Stats(); st.FromSenderReport || st.IgnoredReports != 1 {
		t.Fatalf("implausible report used: %+v", st)
	}
	if got := c.Time(0); !got.Equal(local) {
		t.Fatalf("Time(0) = %v", got)
	}

	// A report before the first packet applies once packets come.
	e := NewClock(90000, fn.now)
	e.HandleSenderReport(&rtcp.SenderReport{NTPTime: ToNTP(sender), RTPTime: 0xfffffff0})
	e.Ticks(0x10) // 32 ticks after the report's timestamp, across the wrap
	if got, want := e.Time(0), sender.Add(32*time.Second/90000); !got.Equal(want) {
		t.Fatalf("early report: Time(0) = %v, want %v", got, want)
	}
	if st := e.Stats(); st.ReportShift != 0 {
		t.Fatalf("early report: shift %v, want 0 (no arrival times given out before it)", st.ReportShift)
	}
}

func TestNTPRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 24, 1, 2, 3, 456789000, time.UTC),
		time.Date(2036, 2, 7, 6, 28, 15, 0, time.UTC), // just before NTP era 1 ends
	} {
		got := NTPTime(ToNTP(tm))
		if d := got.Sub(tm); d < -time.Nanosecond || d > time.Nanosecond {
			t.Fatalf("%v -> %v", tm, got)
		}
	}
}

// TestClockAudioVideoComparable: without sender reports, audio and video of
// one publisher (different timestamp bases, different first-packet delays,
// jitter) map the same capture instant to nearly the same wall time.
func TestClockAudioVideoComparable(t *testing.T) {
	capture0 := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 8))
	fn := &fakeNow{}
	video, audio := NewClock(90000, fn.now), NewClock(48000, fn.now)
	vts, ats := uint32(123456789), uint32(4000000000)
	// Both tracks: network delay 20 ms plus up to 80 ms of jitter; the first
	// video packet is 70 ms late, the first audio packet on time.
	delay := func(first bool, extra time.Duration) time.Duration {
		if first {
			return 20*time.Millisecond + extra
		}
		return 20*time.Millisecond + time.Duration(rng.IntN(80))*time.Millisecond
	}
	var vt, at int64
	for i := 0; i < 300; i++ { // 10 s
		c := capture0.Add(time.Duration(i) * 33333 * time.Microsecond)
		fn.t = c.Add(delay(i == 0, 70*time.Millisecond))
		vt = video.Ticks(vts + uint32(i*3000))
		for j := 0; j < 2; j++ {
			k := 2*i + j
			c := capture0.Add(time.Duration(k) * 20 * time.Millisecond)
			fn.t = c.Add(delay(k == 0, 0))
			at = audio.Ticks(ats + uint32(k*960))
		}
	}
	// Same capture instant: video frame 299 and audio frame 299*33.333/20.
	vwall := video.Time(vt)
	awall := audio.Time(at - int64(599-498)*960) // audio frame 498 ≈ 9.96 s
	want := capture0.Add(299 * 33333 * time.Microsecond).Sub(capture0.Add(498 * 20 * time.Millisecond))
	if d := vwall.Sub(awall) - want; d < -2*time.Millisecond || d > 2*time.Millisecond {
		t.Fatalf("audio and video disagree by %v", d)
	}
}
