package dash_test

import (
	"context"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/dash"
)

// TestReconnectOpensPeriod: a publisher who leaves and comes back within
// the grace period continues the same MPD in a new Period that starts no
// earlier than the previous one's media ends, numbering continuing.
func TestReconnectOpensPeriod(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 3 * time.Second}}})
	e := start(t, origin.Config{EndGrace: 5 * time.Second}, dash.Config{}, 4096)
	key := hub.Key{Stream: 6, Rendition: hub.Source}
	play := func(id string, at time.Time) {
		pub, err := e.hub.Publish(key, hub.Session{ID: id, Tracks: stream.Tracks})
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Play(ctx, pub, mediatest.PlayOptions{Start: at}); err != nil {
			t.Fatal(err)
		}
		pub.Close()
	}
	t0 := time.Now().Add(-10 * time.Second)
	play("a", t0)
	play("b", t0.Add(5*time.Second)) // back 2 s after the first session's media ended

	for {
		_, m, raw := getMPD(t, e.url+"/cmaf/6/index.mpd")
		if m != nil && len(m.Periods) == 2 && videoSegments(m.Periods[1]) == 3 {
			p0, p1 := m.Periods[0], m.Periods[1]
			if p0.Id == p1.Id {
				t.Fatalf("periods share id %s", p0.Id)
			}
			gap := time.Duration(*p1.Start) - time.Duration(*p0.Start)
			if gap < 4900*time.Millisecond || gap > 5100*time.Millisecond {
				t.Errorf("second period starts %v after the first, want the 5 s between the sessions' wall clocks\n%s", gap, raw)
			}
			v0 := p0.AdaptationSets[0].Representations[0].SegmentTemplate
			v1 := p1.AdaptationSets[0].Representations[0].SegmentTemplate
			if *v1.StartNumber <= *v0.StartNumber || v1.Initialization == v0.Initialization {
				t.Errorf("after reconnect: startNumber %d→%d, init %s→%s", *v0.StartNumber, *v1.StartNumber, v0.Initialization, v1.Initialization)
			}
			if *v1.PresentationTimeOffset < *v0.PresentationTimeOffset {
				t.Errorf("media time went backwards: PTO %d→%d", *v0.PresentationTimeOffset, *v1.PresentationTimeOffset)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("no two-period MPD:\n%s", raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// videoSegments counts the segments the first video Representation of p lists.
func videoSegments(p *mpd.Period) int {
	n := 0
	for _, s := range p.AdaptationSets[0].Representations[0].SegmentTemplate.SegmentTimeline.S {
		n += 1 + s.R
	}
	return n
}
