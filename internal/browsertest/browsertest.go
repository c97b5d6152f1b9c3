// Package browsertest launches headless Chromium for tests, with the flags
// measured to work for WebRTC and media on this kind of machine (FACTS.md
// "Chromium as a WebRTC publisher"): fake camera and microphone, no
// permission prompts, loopback ICE candidates, and a fresh user-data-dir per
// browser.
//
// A test that needs a browser calls Start; it skips (only) when no Chromium
// binary is installed — `scripts/deps.sh test` installs one, so in CI such
// tests always run. The browser is stopped and its profile removed on
// cleanup.
//
//	b := browsertest.Start(t, browsertest.Options{})
//	tab := b.Tab(t)
//	err := chromedp.Do(tab, chromedp.Navigate(url))
package browsertest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Binaries are the names looked up on PATH, in order.
var Binaries = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// ExecPath returns the Chromium binary found on PATH, or "".
func ExecPath() string {
	for _, name := range Binaries {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Options tune Start. The zero value is a headless browser with a fake
// 1280×720 camera at 20 fps and a fake microphone.
type Options struct {
	// FakeCameraFPS sets the fake camera's frame rate (0: Chromium's 20).
	FakeCameraFPS int
	// Flags are extra command-line switches (true for a bare switch, a
	// string for a value, false to remove a default one).
	Flags map[string]any
	// Lifetime bounds the whole browser (default 3 minutes): a hung test
	// cannot keep Chromium running.
	Lifetime time.Duration
	// Console sends the pages' console messages and exceptions to tb.Logf.
	Console bool
}

// Browser is one running Chromium.
type Browser struct {
	// Ctx is the chromedp context of the browser's first tab. Derive
	// per-action deadlines from it with context.WithTimeout; do not cancel
	// it (cleanup does).
	Ctx     context.Context
	opts    Options
	cancels []context.CancelFunc
}

// AllocatorOptions returns the chromedp allocator options Start uses: the
// FACTS flags plus a fresh userDataDir.
func AllocatorOptions(execPath, userDataDir string, o Options) []chromedp.ExecAllocatorOption {
	fake := any(true)
	if o.FakeCameraFPS > 0 {
		fake = fmt.Sprintf("fps=%d", o.FakeCameraFPS)
	}
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts,
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(userDataDir),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-device-for-media-stream", fake),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	for k, v := range o.Flags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	return opts
}

// Start launches Chromium or skips tb when it is not installed. The
// browser is closed when tb's test ends.
func Start(tb testing.TB, o Options) *Browser {
	tb.Helper()
	path := ExecPath()
	if path == "" {
		tb.Skipf("Chromium not installed (looked for %s; `scripts/deps.sh test` installs it)", strings.Join(Binaries, ", "))
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 3 * time.Minute
	}
	b := &Browser{opts: o}
	life, cancelLife := context.WithTimeout(context.Background(), o.Lifetime)
	actx, cancelAlloc := chromedp.NewExecAllocator(life, AllocatorOptions(path, tb.TempDir(), o)...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b.cancels = []context.CancelFunc{cancelCtx, cancelAlloc, cancelLife}
	tb.Cleanup(b.close)
	// The first Run starts the browser; it must not carry a timeout of its
	// own (that would end the browser with it).
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("browsertest: start %s: %v", path, err)
	}
	b.Ctx = ctx
	if o.Console {
		b.logConsole(tb, ctx)
	}
	return b
}

// Tab opens a new tab in the browser; it is closed when tb's test ends.
func (b *Browser) Tab(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(b.Ctx)
	tb.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("browsertest: new tab: %v", err)
	}
	if b.opts.Console {
		b.logConsole(tb, ctx)
	}
	return ctx
}

func (b *Browser) logConsole(tb testing.TB, ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Source != "" && m.URL != "" {
				// A browser-log entry (a failed request, say): its URL
				// is what tells one 404 from another.
				tb.Logf("browser console: %s (%s %s)", m.String(), m.Source, m.URL)
				continue
			}
			tb.Logf("browser console: %s", m.String())
		}
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
}

func (b *Browser) close() {
	for _, c := range b.cancels {
		c()
	}
}
