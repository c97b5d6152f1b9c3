package dash_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/cmaf"
	"github.com/edgenode/edgenode/origin/dash"
)

// TestMPDBeforePublisher: a player that asks for the MPD of a known stream
// before its publisher is live is held and gets an MPD as soon as the first
// part exists — while the first segment is still being written (realtime
// play: the MPD must name a segment that is not complete, with
// availabilityTimeComplete=false) — and an unknown stream is 404 at once.
func TestMPDBeforePublisher(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) }) // after start's cleanup
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{
		GOP: 2 * time.Second, Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 4 * time.Second}}})
	e := start(t, origin.Config{}, dash.Config{FirstSegmentWait: 20 * time.Second}, 4096)
	e.dash.SetKnown(func(id uint64) bool { return id == 7 })

	if res, _, _ := getMPD(t, e.url+"/cmaf/8/index.mpd"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown stream: %d, want 404", res.StatusCode)
	}

	type result struct {
		code     int
		complete bool // availabilityTimeComplete is absent or true
		segs     int  // segments the video timeline lists
		mup      time.Duration
		cache    string
		body     string
	}
	got := make(chan result, 1)
	asked := make(chan struct{})
	go func() {
		close(asked)
		res, m, body := getMPD(t, e.url+"/cmaf/7/index.mpd")
		r := result{code: res.StatusCode, body: body, cache: res.Header.Get("Cache-Control")}
		if m != nil && m.MinimumUpdatePeriod != nil {
			r.mup = time.Duration(*m.MinimumUpdatePeriod)
		}
		if m != nil && len(m.Periods) > 0 && len(m.Periods[0].AdaptationSets) > 0 {
			st := m.Periods[0].AdaptationSets[0].Representations[0].SegmentTemplate
			r.complete = st.AvailabilityTimeComplete == nil || *st.AvailabilityTimeComplete
			if st.SegmentTimeline != nil {
				for _, s := range st.SegmentTimeline.S {
					r.segs += 1 + s.R
				}
			}
		}
		got <- r
	}()
	<-asked
	time.Sleep(200 * time.Millisecond) // let the request reach the server before the publisher
	pub, err := e.hub.Publish(hub.Key{Stream: 7, Rendition: hub.Source}, hub.Session{ID: "a", Tracks: stream.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	playDone := make(chan error, 1)
	go func() { playDone <- stream.Play(ctx, pub, mediatest.PlayOptions{Realtime: true}) }()
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		t.Fatal("MPD request never answered")
	}
	if r.code != http.StatusOK {
		t.Fatalf("MPD of a stream going live: %d %s", r.code, r.body)
	}
	if r.complete {
		t.Errorf("MPD served before the first segment was complete should say availabilityTimeComplete=false:\n%s", r.body)
	}
	if r.segs != 1 {
		t.Errorf("MPD lists %d segments, want only the first one:\n%s", r.segs, r.body)
	}
	// The segment being written is announced at its nominal length, which
	// a session's first segment often is not (ingest's early keyframe):
	// players reload every part until it is complete, past any CDN cache.
	partTarget := cmaf.Config{}.WithDefaults().PartTarget
	if r.mup != partTarget || r.cache != "no-cache" {
		t.Errorf("MPD of a starting stream: minimumUpdatePeriod %v, Cache-Control %q; want %v and no-cache", r.mup, r.cache, partTarget)
	}
	// Answered as soon as the first part existed, not when the first
	// segment was complete (its GOP is 2 s of realtime play).
	tr, ok := e.reg.Lookup(7, hub.Source, cmaf.Video)
	if !ok {
		t.Fatal("video track gone")
	}
	if sg, ok := tr.Segment(tr.Snapshot().Segments[0].MSN); ok && sg.Complete {
		t.Errorf("MPD was answered only after the first segment was complete")
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if sg, ok := tr.Segment(tr.Snapshot().Segments[0].MSN); ok && sg.Complete {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first segment never completed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res, m, _ := getMPD(t, e.url+"/cmaf/7/index.mpd"); m == nil || m.MinimumUpdatePeriod == nil ||
		time.Duration(*m.MinimumUpdatePeriod) <= partTarget || res.Header.Get("Cache-Control") == "no-cache" {
		t.Errorf("MPD once the first segment is complete still says reload every part: %v", res.Header)
	}
	cancel()
	<-playDone
	pub.Close()
}
