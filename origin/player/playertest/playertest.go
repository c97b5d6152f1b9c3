// Package playertest runs the player page in headless Chromium for tests:
// it launches a browser with the flags measured in FACTS.md, opens
// /player/{id}?format=..., and reads the page's window.edgenode figures.
//
// Tests that use it skip only when no chromium binary is installed.
package playertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Status mirrors window.edgenode on the player page.
type Status struct {
	Stream        string   `json:"stream"`
	Format        string   `json:"format"`
	URL           string   `json:"url"`
	Lib           string   `json:"lib"`
	CurrentTime   float64  `json:"currentTime"`
	Latency       *float64 `json:"latency"`
	LibLatency    *float64 `json:"libLatency"`
	TargetLatency *float64 `json:"targetLatency"`
	Buffer        float64  `json:"buffer"`
	Stalls        int      `json:"stalls"`
	Playing       bool     `json:"playing"`
	Width         int      `json:"width"`
	Height        int      `json:"height"`
	Errors        []string `json:"errors"`
	ClockOffsetMs float64  `json:"clockOffsetMs"`
	FirstFrameMs  *float64 `json:"firstFrameMs"`
	// CatchUps counts jumps forward to the target latency.
	CatchUps int `json:"catchUps"`
	// Marks are start-up steps, "name@ms" after the format was selected.
	Marks []string `json:"marks"`
}

// ChromiumPath returns the browser binary, or "" when none is installed.
func ChromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts a headless Chromium whose lifetime is bound to the test
// and returns a context for its first tab. It skips the test when no
// chromium binary is installed.
func Browser(t testing.TB, parent context.Context) context.Context {
	t.Helper()
	bin := ChromiumPath()
	if bin == "" {
		t.Skip("chromium not installed (Debian package chromium); CI installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Getenv("PLAYERTEST_VERBOSE") != "" {
		opts = append(opts, chromedp.CombinedOutput(os.Stderr))
	}
	actx, acancel := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Start the browser now so that a failure to launch is reported here.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		acancel()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	return ctx
}

// Tab opens another tab in the same browser as ctx.
func Tab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tctx, cancel := chromedp.NewContext(ctx)
	if err := chromedp.Do(tctx); err != nil {
		cancel()
		t.Fatalf("new tab: %v", err)
	}
	t.Cleanup(cancel)
	return tctx
}

// Open navigates the tab of ctx to url.
func Open(ctx context.Context, url string) error {
	return chromedp.Do(ctx, chromedp.Navigate(url))
}

// Read returns the page's current figures.
func Read(ctx context.Context) (Status, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[Status](`window.edgenode || null`))
}

// Eval evaluates a JavaScript expression in the tab and decodes its value.
func Eval[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// ErrNotPlaying is returned by WaitPlaying when playback did not reach the
// wanted position in time.
var ErrNotPlaying = errors.New("playertest: playback did not advance")

// WaitPlaying polls the page until currentTime has advanced by at least
// advance since playback began, or timeout passes. It returns the last
// status and every status seen (one per poll) so that a test can check
// latency and stalls over the whole run.
func WaitPlaying(ctx context.Context, advance, timeout time.Duration) (Status, []Status, error) {
	var seen []Status
	deadline := time.Now().Add(timeout)
	start := -1.0
	var last Status
	for time.Now().Before(deadline) {
		st, err := Read(ctx)
		if err == nil {
			last = st
			seen = append(seen, st)
			if st.Playing && start < 0 {
				start = st.CurrentTime
			}
			if start >= 0 && st.CurrentTime-start >= advance.Seconds() {
				return st, seen, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, seen, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return last, seen, fmt.Errorf("%w: %+v", ErrNotPlaying, last)
}
