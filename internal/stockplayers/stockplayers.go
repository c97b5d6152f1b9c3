// Package stockplayers runs the players a CDN customer already has — dash.js,
// Shaka Player and hls.js, exactly as npm ships them — against the node's
// streams in headless Chromium, each configured only with the low-latency
// switches its own documentation names. The packages are pinned in
// npm/package-lock.json and installed by `scripts/deps.sh test`.
//
// A Server serves the players, a page per player (assets/play.html +
// harness.js) and a pixel-clock WHIP publisher (assets/publish.html): the
// publisher draws its wall clock into every frame, and the player pages read
// it back from the frame they show, so a test can compare the time each
// player gives a frame with the time it was captured.
//
//	srv := stockplayers.Start(t)
//	tab := browser.Tab(t)
//	err := stockplayers.Open(tab, srv.PlayerURL(stockplayers.DashJS, mpdURL))
//	st, err := stockplayers.Read(tab)
package stockplayers

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/chromedp/chromedp"
)

// Player names one stock player.
type Player string

// The stock players.
const (
	HLSJS  Player = "hlsjs"
	DashJS Player = "dashjs"
	Shaka  Player = "shaka"
)

// lib is each player's script in its npm package (the builds their
// READMEs tell users to load).
var lib = map[Player]string{
	HLSJS:  "hls.js/dist/hls.min.js",
	DashJS: "dashjs/dist/modern/umd/dash.all.min.js",
	Shaka:  "shaka-player/dist/shaka-player.compiled.js",
}

// debugLib is the unminified build of each (play.html?debug=1).
var debugLib = map[Player]string{
	HLSJS:  "hls.js/dist/hls.js",
	DashJS: "dashjs/dist/modern/umd/dash.all.debug.js",
	Shaka:  "shaka-player/dist/shaka-player.compiled.debug.js",
}

//go:embed assets
var assets embed.FS

var page = template.Must(template.ParseFS(assets, "assets/play.html"))

// ModulesDir returns internal/stockplayers/npm/node_modules in the source
// tree this package was built from.
func ModulesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "npm", "node_modules")
}

// Server serves the players and pages on loopback.
type Server struct {
	URL string
}

// Start serves the players and pages until tb ends. It fails tb when the
// npm packages are not installed: `scripts/deps.sh test` installs them.
func Start(tb testing.TB) *Server {
	tb.Helper()
	mods := ModulesDir()
	for p, f := range lib {
		if _, err := os.Stat(filepath.Join(mods, f)); err != nil {
			tb.Fatalf("stockplayers: %s not installed (%v); run scripts/deps.sh test", p, err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /lib/", http.StripPrefix("/lib/", http.FileServer(http.Dir(mods))))
	static := func(name, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := assets.ReadFile("assets/" + name)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(b)
		}
	}
	mux.Handle("GET /publish.html", static("publish.html", "text/html; charset=utf-8"))
	for _, js := range []string{"clock.js", "harness.js", "publish.js"} {
		mux.Handle("GET /"+js, static(js, "text/javascript"))
	}
	mux.HandleFunc("GET /play.html", func(w http.ResponseWriter, r *http.Request) {
		f, ok := lib[Player(r.URL.Query().Get("player"))]
		if !ok {
			http.Error(w, "unknown player "+r.URL.Query().Get("player"), http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("debug") != "" {
			// The same package's unminified build, for readable stacks.
			f = debugLib[Player(r.URL.Query().Get("player"))]
		}
		var b bytes.Buffer
		if err := page.Execute(&b, struct{ Lib string }{"/lib/" + f}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b.Bytes())
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(l) }()
	tb.Cleanup(func() { _ = hs.Close() })
	return &Server{URL: "http://" + l.Addr().String()}
}

// PlayerURL is the page that plays src with p. extra are more query
// parameters (dash.js: liveDelay).
func (s *Server) PlayerURL(p Player, src string, extra ...string) string {
	v := url.Values{"player": {string(p)}, "src": {src}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return s.URL + "/play.html?" + v.Encode()
}

// PublishURL is the pixel-clock publisher page for the WHIP endpoint whip.
func (s *Server) PublishURL(whip string, width, height, fps int, extra ...string) string {
	v := url.Values{"whip": {whip}, "w": {fmt.Sprint(width)}, "h": {fmt.Sprint(height)}, "fps": {fmt.Sprint(fps)}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return s.URL + "/publish.html?" + v.Encode()
}

// Stall is one stall: when it began (s since the page loaded) and how long
// it lasted.
type Stall struct {
	At  float64 `json:"at"`
	Dur float64 `json:"dur"`
}

// Stats is what a player page reports (window.stock.stats()).
type Stats struct {
	Now         float64 `json:"now"` // the page's Date.now(), ms
	CurrentTime float64 `json:"currentTime"`
	Ahead       float64 `json:"ahead"` // buffered seconds ahead of the playhead
	Paused      bool    `json:"paused"`
	ReadyState  int     `json:"readyState"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	// Latency is the player's own live-latency figure (s): hls.js
	// hls.latency, dash.js getCurrentLiveLatency(), Shaka
	// getStats().liveLatency.
	Latency *float64 `json:"latency"`
	// Target is the latency the player aims at (s): hls.js
	// targetLatency (PART-HOLD-BACK, raised by each stall), dash.js
	// getTargetLiveDelay(); nil for Shaka.
	Target *float64 `json:"target"`
	// PlayheadDate is the wall-clock time (ms) the player gives the
	// playhead: hls.js playingDate, dash.js timeAsUTC(), Shaka
	// getPlayheadTimeAsDate().
	PlayheadDate *float64 `json:"playheadDate"`
	// Rung is the height of the video rendition the player has selected.
	Rung  *int   `json:"rung"`
	Level string `json:"level"`
	// Estimate is the player's bandwidth estimate (bit/s): hls.js
	// bandwidthEstimate, dash.js getAverageThroughput("video"), Shaka
	// getStats().estimatedBandwidth; Downlink the browser's
	// navigator.connection.downlink (Mbit/s).
	Estimate    *float64 `json:"estimate"`
	Downlink    *float64 `json:"downlink"`
	Waiting     int      `json:"waiting"`
	Stalls      []Stall  `json:"stalls"`
	Stalled     float64  `json:"stalled"` // the current stall so far (s)
	FirstPlayMs *float64 `json:"firstPlayMs"`
	// StartChosenMs is when hls.js chose where to start (its first media
	// playlist), ms since the page loaded; nil for the other players.
	StartChosenMs *float64 `json:"startChosenMs"`
	// FirstPlayDate is the page's Date.now() (ms) at the first frame.
	FirstPlayDate *float64 `json:"firstPlayDate"`
	Errors        []string `json:"errors"`
	Frames        int      `json:"frames"`
	// StallInfo describes each stall as it began: the page time, the
	// playhead and the buffered ranges (hls.js: also its main buffer
	// ahead and level).
	StallInfo []string `json:"stallInfo"`
}

// ClockRead is one pixel-clock reading of a shown frame.
type ClockRead struct {
	Wall    float64 `json:"wall"`    // Date.now() when the frame was shown, ms
	Capture float64 `json:"capture"` // the time drawn into it, ms
	// G2G is glass to glass: Wall - Capture.
	G2G float64 `json:"g2g"`
	// PlayerDate is the time the player gives the same frame, ms (nil
	// when it gives none).
	PlayerDate *float64 `json:"playerDate"`
	Height     int      `json:"height"`
	// Media is the frame's media time (s) and TSO the video
	// SourceBuffer's timestampOffset then (nil without one): Media - TSO
	// is the frame's time in the segments, for players that append them
	// unchanged (Shaka Player, dash.js).
	Media float64  `json:"media"`
	TSO   *float64 `json:"tso"`
	// Time is the playhead (s) when the frame was read, SeekEnd the end of
	// the player's seek range then (nil where the page does not ask):
	// Shaka Player dates its playhead clamped to its seek range, so past
	// SeekEnd its date is SeekEnd's.
	Time    float64  `json:"time"`
	SeekEnd *float64 `json:"seekEnd"`
	// Why is how the player came to its date, where it says (Shaka
	// Player: its seek range, the program-date-time region it dated the
	// playhead from and the unclamped date), for a date that moved.
	Why string `json:"why"`
}

// Open navigates tab to a player or publisher page.
func Open(tab context.Context, url string) error {
	return chromedp.Do(tab, chromedp.Navigate(url))
}

// Read returns the player page's figures.
func Read(tab context.Context) (Stats, error) {
	return chromedp.Run(tab, chromedp.Evaluate[Stats](`window.stock.stats()`))
}

// Clock returns the player page's pixel-clock readings so far.
func Clock(tab context.Context) ([]ClockRead, error) {
	return chromedp.Run(tab, chromedp.Evaluate[[]ClockRead](`window.stock.clock`))
}

// Publisher is the publisher page's state (window.publisher).
type Publisher struct {
	Status string  `json:"status"`
	Error  string  `json:"error"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
	FPS    float64 `json:"fps"`
	Kbps   int     `json:"kbps"`
}

// ErrPublish is returned by ReadPublisher when the page failed to publish.
var ErrPublish = errors.New("stockplayers: publisher failed")

// ReadPublisher returns the publisher page's state.
func ReadPublisher(tab context.Context) (Publisher, error) {
	raw, err := chromedp.Run(tab, chromedp.Evaluate[json.RawMessage](`window.publisher || null`))
	if err != nil {
		return Publisher{}, err
	}
	var p Publisher
	if err := json.Unmarshal(raw, &p); err != nil {
		return Publisher{}, err
	}
	if p.Status == "error" {
		return p, fmt.Errorf("%w: %s", ErrPublish, p.Error)
	}
	return p, nil
}
