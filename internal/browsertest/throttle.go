package browsertest

import (
	"context"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// emulateNetworkConditions is the DevTools command
// Network.emulateNetworkConditions (deprecated in favour of
// emulateNetworkConditionsByRule, which cdproto v0.159 alone generates,
// but still what Chromium's DevTools "Network throttling" uses and what
// players' ABR tests are written against).
var emulateNetworkConditions = cdp.Command[networkConditions, cdp.Empty]{Method: "Network.emulateNetworkConditions"}

type networkConditions struct {
	Offline            bool    `json:"offline"`
	Latency            float64 `json:"latency"`            // ms
	DownloadThroughput float64 `json:"downloadThroughput"` // bytes/s; -1: no limit
	UploadThroughput   float64 `json:"uploadThroughput"`   // bytes/s; -1: no limit
}

// Throttle limits what the tab downloads to bitsPerSecond (0: lifts the
// limit), as DevTools' network throttling does: every request of the tab,
// media segments and playlists alike, shares that rate.
func Throttle(tab context.Context, bitsPerSecond int) error {
	return Emulate(tab, Link{BitsPerSecond: bitsPerSecond})
}

// Link is a network a tab is given: a download rate (0: no limit) and a
// latency added to every request, as DevTools' throttling profiles are.
type Link struct {
	BitsPerSecond int
	Latency       time.Duration
}

// Emulate gives the tab the network l. Chromium also reports l to the
// page (navigator.connection.downlink and rtt, with a "change" event),
// as its own estimate of a real network would be: a zero Link restores
// the browser's estimate.
func Emulate(tab context.Context, l Link) error {
	c := networkConditions{DownloadThroughput: -1, UploadThroughput: -1, Latency: float64(l.Latency) / float64(time.Millisecond)}
	if l.BitsPerSecond > 0 {
		c.DownloadThroughput = float64(l.BitsPerSecond) / 8
	}
	if _, err := chromedp.Call(tab, network.Enable, network.EnableParams{}); err != nil {
		return err
	}
	_, err := chromedp.Call(tab, emulateNetworkConditions, c)
	return err
}
