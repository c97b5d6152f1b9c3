package rtpau

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// TestConcurrentReaders runs Push on one goroutine while others read Stats
// and NeedKeyframe and hand sender reports to the Clock, as a session does
// (RTP loop, RTCP loop, metrics scrape). Run with -race.
func TestConcurrentReaders(t *testing.T) {
	clock := NewClock(90000, nil)
	h := NewH264(clock)
	r := NewReorder(32)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			_ = h.Stats()
			_ = h.Track()
			_ = h.NeedKeyframe()
			_ = r.Stats()
			_ = clock.Stats()
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			clock.HandleSenderReport(&rtcp.SenderReport{NTPTime: ToNTP(time.Now()), RTPTime: uint32(i * 3000)})
		}
	}()
	var frames int
	for i := 0; i < 2000; i++ {
		payload := pfr
		if i%30 == 0 {
			payload = stapA(sps320, ppsX, idr1)
		}
		for _, p := range r.Push(rp(uint16(i), uint32(i*3000), true, payload)) {
			aus, err := h.Push(p)
			if err != nil {
				t.Error(err)
			}
			for _, au := range aus {
				_ = au.Time
				frames++
			}
		}
	}
	close(done)
	wg.Wait()
	if frames != 2000 || h.Stats().Frames != 2000 {
		t.Fatalf("frames %d, stats %+v", frames, h.Stats())
	}
}
