package ingest_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/ingest/internal/whipclient"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
)

// clip turns a mediatest stream's video into whipclient input.
func clip(s *mediatest.Stream) (aus [][][]byte, pts []int64) {
	var first int64 = -1
	for _, smp := range s.Samples {
		if smp.AU.Codec != media.CodecH264 {
			continue
		}
		if first < 0 {
			first = smp.AU.DTS
		}
		aus = append(aus, smp.AU.Payload)
		pts = append(pts, smp.AU.PTS-first)
	}
	return aus, pts
}

func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitMetric polls /metrics until series satisfies ok.
func waitMetric(ctx context.Context, t *testing.T, e *env, series string, ok func(float64) bool) float64 {
	t.Helper()
	for {
		v := metricValue(t, e.metrics(t), series)
		if ok(v) {
			return v
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s = %v", series, v)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestBFramesAndResolutionChange: a publisher sending B-frames (x264 main
// profile) and switching picture size mid-stream is reported in the
// metrics, and the access units keep PTS ≥ DTS with DTS increasing.
func TestBFramesAndResolutionChange(t *testing.T) {
	s := mediatest.Generate(t, mediatest.Options{
		Profile: "main", BFrames: 2, NoAudio: true,
		Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: time.Second}, {Width: 480, Height: 270, Duration: time.Second}},
	})
	video, pts := clip(s)
	e := newEnv(t, testConfig())
	sub := e.hub.Subscribe(key42, "test")
	defer sub.Close()
	publish(t, e, whipclient.Options{Video: video, VideoPTS: pts, NoAudio: true, VideoFmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := collect(ctx, t, sub, func(c *collected) bool { return len(c.video) >= 70 })
	reordered := 0
	for i, au := range c.video {
		if au.PTS < au.DTS {
			t.Fatalf("AU %d: PTS %d < DTS %d", i, au.PTS, au.DTS)
		}
		if i > 0 && au.DTS <= c.video[i-1].DTS {
			t.Fatalf("AU %d: DTS %d does not advance past %d", i, au.DTS, c.video[i-1].DTS)
		}
		if i > 0 && au.PTS < c.video[i-1].PTS {
			reordered++
		}
	}
	if reordered == 0 {
		t.Error("no access unit presented before its predecessor: the clip has no B-frames?")
	}
	waitMetric(ctx, t, e, `edgenode_ingest_bframes_total{stream="42"}`, func(v float64) bool { return v > 0 })
	waitMetric(ctx, t, e, `edgenode_ingest_resolution_changes_total{stream="42"}`, func(v float64) bool { return v >= 1 })
	waitMetric(ctx, t, e, `edgenode_ingest_video_fps{stream="42"}`, func(v float64) bool { return v > 20 && v < 40 })
}

// TestLossRecoveredByNACK: with every 20th media packet lost on the way,
// the ingest NACKs them, the publisher retransmits, and the hub still gets
// every frame, whole; the NACKs show in the metrics.
func TestLossRecoveredByNACK(t *testing.T) {
	e := newEnv(t, testConfig())
	sub := e.hub.Subscribe(key42, "test")
	defer sub.Close()
	publish(t, e, whipclient.Options{DropEvery: 20, Bitrate: 600_000})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := collect(ctx, t, sub, func(c *collected) bool { return len(c.video) >= 90 })
	missing := 0
	for i := 1; i < len(c.video); i++ {
		if d := c.video[i].PTS - c.video[i-1].PTS; d != 3000 {
			missing += int(d/3000) - 1
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d frames missing despite NACK", missing, len(c.video)+missing)
	}
	checkVideo(t, c.video)
	waitMetric(ctx, t, e, `edgenode_ingest_nacks_total{kind="video",stream="42"}`, func(v float64) bool { return v > 0 })
}

// TestStartKeyframe: with the PLI timer off, the ingest asks for a
// keyframe at the start and once more StartKeyframe after the first one
// (a short first segment: players start sooner), then no more.
func TestStartKeyframe(t *testing.T) {
	cfg := testConfig()
	cfg.PLIInterval = -1
	e := newEnv(t, cfg)
	sub := e.hub.Subscribe(key42, "test")
	defer sub.Close()
	p := publish(t, e, whipclient.Options{NoAudio: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var firstKey time.Time
	collect(ctx, t, sub, func(c *collected) bool {
		if firstKey.IsZero() && len(c.video) > 0 {
			firstKey = time.Now()
		}
		return len(c.video) > 0 && c.video[len(c.video)-1].PTS-c.video[0].PTS >= 2*90000
	})
	at := p.PLITimes()
	if len(at) != 2 {
		t.Fatalf("%d PLIs in 2 s without the timer; want the start one and one %v after the first keyframe", len(at), ingest.DefaultStartKeyframe)
	}
	if d := at[1].Sub(firstKey); d < ingest.DefaultStartKeyframe-20*time.Millisecond {
		t.Errorf("second PLI %v after the first keyframe reached the hub, want ≥ %v", d, ingest.DefaultStartKeyframe)
	}
	t.Logf("second PLI %v after the first, %v after the first keyframe reached the hub", at[1].Sub(at[0]), at[1].Sub(firstKey))
}

// TestPLIOnLoss: with the PLI timer off and losses the publisher does not
// repair, the ingest asks for a keyframe on loss, and the stream goes on
// from the next IDR.
func TestPLIOnLoss(t *testing.T) {
	for _, lossy := range []bool{false, true} {
		t.Run(map[bool]string{false: "no loss: only the first PLI", true: "loss: PLIs"}[lossy], func(t *testing.T) {
			cfg := testConfig()
			cfg.PLIInterval = -1
			cfg.StartKeyframe = -1
			e := newEnv(t, cfg)
			sub := e.hub.Subscribe(key42, "test")
			defer sub.Close()
			o := whipclient.Options{NoNACK: true, NoAudio: true}
			if lossy {
				o.DropEvery, o.Bitrate = 25, 400_000
			}
			p := publish(t, e, o)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := collect(ctx, t, sub, func(c *collected) bool {
				return len(c.video) > 0 && c.video[len(c.video)-1].PTS-c.video[0].PTS >= 3*90000
			})
			plis := p.PLIs()
			t.Logf("%d frames over 3 s, %d PLIs", len(c.video), plis)
			if !lossy && plis != 1 {
				t.Errorf("%d PLIs without loss and without the timer; want only the start one", plis)
			}
			if lossy && plis < 2 {
				t.Errorf("%d PLIs despite unrepaired loss", plis)
			}
			for i, au := range c.video {
				if i > 0 && au.PTS-c.video[i-1].PTS != 3000 && !au.Key {
					t.Errorf("AU %d follows a gap but is not an IDR", i)
				}
			}
		})
	}
}

// TestSingleTrack: audio-only and video-only publishers are served; the
// hub session lists just their track.
func TestSingleTrack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  whipclient.Options
		codec media.Codec
	}{
		{"audio only", whipclient.Options{NoVideo: true}, media.CodecOpus},
		{"video only", whipclient.Options{NoAudio: true}, media.CodecH264},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testConfig())
			sub := e.hub.Subscribe(key42, "test")
			defer sub.Close()
			publish(t, e, tc.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := collect(ctx, t, sub, func(c *collected) bool { return len(c.video)+len(c.audio) >= 20 })
			if len(c.session.Tracks) != 1 || c.session.Tracks[0].Codec != tc.codec {
				t.Fatalf("tracks %+v", c.session.Tracks)
			}
		})
	}
}
