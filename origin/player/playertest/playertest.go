// Package playertest drives the player page in headless Chromium for
// tests: it opens /player/{id}?format=... in a tab (internal/browsertest
// launches the browser) and reads the page's window.edgenode figures.
package playertest

import (
	"context"
	"errors"
	"fmt"
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
	// Waits are the stalls (the last 100): where and with how much
	// media buffered ahead of the playhead.
	Waits []Wait `json:"waits"`
}

// Wait is one stall of the player page.
type Wait struct {
	CurrentTime float64 `json:"t"`
	// Ahead is the media buffered ahead of the playhead when it stalled
	// (s): 0 for a hole or media that came late.
	Ahead float64 `json:"ahead"`
	// Ms is when, in ms after the format was selected.
	Ms float64 `json:"ms"`
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

// StallsAfter counts the stalls of a playback timeline (WaitPlaying's
// statuses) after its first after seconds of playback.
func StallsAfter(timeline []Status, after float64) int {
	start, base := -1.0, -1
	for _, st := range timeline {
		if st.Playing && start < 0 {
			start = st.CurrentTime
		}
		if start >= 0 && base < 0 && st.CurrentTime > start+after {
			base = st.Stalls
		}
	}
	if base < 0 {
		return 0
	}
	return timeline[len(timeline)-1].Stalls - base
}
