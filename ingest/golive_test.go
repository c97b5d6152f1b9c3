package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/chromedp/chromedp"

	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
)

type pageStats struct {
	Width, Height int
	FPS           float64
	Kbps          float64
}

func pageStatus(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](`window.golive ? window.golive.status : ""`))
}

// waitStatus polls the Go Live page until its status is one of want.
func waitStatus(ctx context.Context, t *testing.T, tab context.Context, want ...string) string {
	t.Helper()
	for {
		st, err := pageStatus(tab)
		if err == nil {
			for _, w := range want {
				if st == w {
					return st
				}
			}
		}
		select {
		case <-ctx.Done():
			errText, _ := chromedp.Run(tab, chromedp.Evaluate[string](`window.golive ? window.golive.error : ""`))
			t.Fatalf("page status %q (error %q), want %v", st, errText, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestGoLivePageChromium publishes from the Go Live page in headless
// Chromium (fake camera) and proves the video is real: the access units
// the hub received decode with ffmpeg without errors, at the resolution
// Chromium's getStats reports. Then a second tab is refused with the 400
// of a live path, and a reload of the presenter's page goes live again at
// once.
func TestGoLivePageChromium(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/deps.sh test installs it)")
	}
	e := newEnv(t, testConfig())
	b := browsertest.Start(t, browsertest.Options{Console: testing.Verbose()})
	tab := b.Tab(t)
	ctx, cancel := context.WithTimeout(tab, 120*time.Second)
	defer cancel()
	sub := e.hub.Subscribe(key42, "test")
	defer sub.Close()

	page := e.base + "/live/42_secret"
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, tab, "ready")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("golive"))); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, tab, "live")

	c := collect(ctx, t, sub, func(c *collected) bool { return len(c.video) > 0 && len(c.audio) > 0 })
	var stats pageStats
	var last [2]int
	for attempt := 0; ; attempt++ {
		more := collect(ctx, t, sub, func(m *collected) bool {
			m.session = c.session
			return len(m.video) >= 60 // 3 s at 20 fps
		})
		c.video = append(c.video, more.video...)
		c.audio = append(c.audio, more.audio...)
		var err error
		stats, err = chromedp.Run(ctx, chromedp.Evaluate[pageStats](
			`({width: golive.stats.width||0, height: golive.stats.height||0, fps: golive.stats.fps||0, kbps: golive.stats.kbps||0})`))
		if err != nil {
			t.Fatal(err)
		}
		last = decodeLastFrame(t, c.video)
		if stats.Width == last[0] && stats.Height == last[1] {
			break
		}
		// Chromium steps its resolution up while it ramps; the step may
		// fall between our last frame and getStats. Look again.
		if attempt == 4 {
			t.Fatalf("decoded %dx%d, Chromium reports %dx%d", last[0], last[1], stats.Width, stats.Height)
		}
	}
	t.Logf("Chromium sent %dx%d at %.0f fps, %.0f kbit/s; hub got %d video and %d audio access units (missed %d)",
		stats.Width, stats.Height, stats.FPS, stats.Kbps, len(c.video), len(c.audio), c.missed)
	if stats.Width == 0 || stats.Height == 0 {
		t.Fatalf("page stats %+v", stats)
	}
	if c.missed != 0 {
		t.Errorf("hub dropped %d access units for the test subscriber", c.missed)
	}
	// The page holds the camera's resolution (golive.html holdResolution):
	// every keyframe the node got is the fake camera's 1280x720, the
	// start-up ramp included; each step would be a new init segment, an
	// HLS discontinuity and a DASH Period.
	deg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`golive.degradation`))
	var sizes []string
	for _, au := range c.video {
		if !au.Key {
			continue
		}
		for _, n := range au.Payload {
			if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
				var sps h264.SPS
				if err := sps.Unmarshal(n); err != nil {
					t.Fatalf("SPS: %v", err)
				}
				if s := fmt.Sprintf("%dx%d", sps.Width(), sps.Height()); len(sizes) == 0 || sizes[len(sizes)-1] != s {
					sizes = append(sizes, s)
				}
			}
		}
	}
	if len(sizes) != 1 || sizes[0] != "1280x720" {
		t.Errorf("keyframe sizes %v (degradationPreference %q), want 1280x720 throughout", sizes, deg)
	}
	for i, au := range c.audio {
		if au.Codec != media.CodecOpus || len(au.Payload) != 1 || (i > 0 && au.PTS <= c.audio[i-1].PTS) {
			t.Fatalf("audio AU %d: %+v", i, au)
		}
	}
	m := e.metrics(t)
	if !strings.Contains(m, `edgenode_ingest_video_width_pixels{stream="42"}`) ||
		!strings.Contains(m, `edgenode_ingest_frames_total{kind="audio",stream="42"}`) {
		t.Errorf("/metrics lacks the stream's video/audio series:\n%s", m)
	}

	// A second presenter on the same path is refused with the product's 400.
	tab2 := b.Tab(t)
	ctx2, cancel2 := context.WithTimeout(tab2, 60*time.Second)
	defer cancel2()
	if err := chromedp.Do(ctx2, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx2, t, tab2, "ready")
	if err := chromedp.Do(ctx2, chromedp.Click(chromedp.ID("golive"))); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx2, t, tab2, "error")
	msg, _ := chromedp.Run(ctx2, chromedp.Evaluate[string](`golive.error`))
	if msg != "someone is already publishing to the path '42_secret'" {
		t.Errorf("second publisher's page says %q", msg)
	}

	// Reload mid-stream: the old session ends at once and going live again
	// succeeds.
	reloaded := time.Now()
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	end := collect(ctx, t, sub, func(c *collected) bool { return c.ended })
	_ = end
	waitStatus(ctx, t, tab, "ready")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("golive"))); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, tab, "live")
	again := collect(ctx, t, sub, func(c *collected) bool { return len(c.video) >= 10 })
	if !again.video[0].Key {
		t.Error("first access unit after going live again is not an IDR")
	}
	t.Logf("live again %v after the reload", time.Since(reloaded).Round(10*time.Millisecond))
	_ = hub.Source
}

// decodeLastFrame decodes aus with ffmpeg (failing on any decode error) and
// returns the size of the last decoded frame.
func decodeLastFrame(t *testing.T, aus []*media.AccessUnit) [2]int {
	t.Helper()
	b, err := mediatest.AnnexB(aus)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "chromium.h264")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", f, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg decode of Chromium's video: %v\n%s", err, out)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "frame=width,height", "-of", "csv=p=0", f).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	lines := strings.Fields(strings.TrimSpace(string(probe)))
	if len(lines) < len(aus)*9/10 {
		t.Fatalf("ffprobe decoded %d frames of %d access units", len(lines), len(aus))
	}
	var w, h int
	if _, err := fmt.Sscanf(lines[len(lines)-1], "%d,%d", &w, &h); err != nil {
		t.Fatalf("ffprobe line %q: %v", lines[len(lines)-1], err)
	}
	return [2]int{w, h}
}
