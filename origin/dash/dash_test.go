package dash_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/cmaf"
	"github.com/edgenode/edgenode/origin/dash"
	"github.com/edgenode/edgenode/origin/player"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	hub  *hub.Hub
	url  string
	dash *dash.Server
	reg  *cmaf.Registry
}

// start runs the real origin (CMAF packager + media routes + /time), the
// DASH server and the player page on loopback.
func start(t *testing.T, ocfg origin.Config, dcfg dash.Config, queue int) *env {
	t.Helper()
	return startDeps(t, ocfg, dcfg, origin.Deps{Hub: hub.New(queue)})
}

// startDeps is start with the origin's dependencies spelled out (the
// ladder, the AAC rendition); Metrics is filled in when nil.
func startDeps(t *testing.T, ocfg origin.Config, dcfg dash.Config, deps origin.Deps) *env {
	t.Helper()
	h := deps.Hub
	reg := prometheus.NewRegistry()
	if deps.Metrics == nil {
		deps.Metrics = reg
	}
	o, err := origin.New(ocfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, err := dash.New(dcfg, o.Registry(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := player.New(player.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	o.RegisterRoutes(mux)
	d.RegisterRoutes(mux)
	p.RegisterRoutes(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		_ = o.Close()
	})
	return &env{hub: h, url: hs.URL, dash: d, reg: o.Registry()}
}

func getMPD(t *testing.T, url string) (*http.Response, *mpd.MPD, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return res, nil, string(b)
	}
	m, err := mpd.ReadFromString(string(b))
	if err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, b)
	}
	return res, m, string(b)
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  dash.Config
		want string
	}{
		{dash.Config{}, ""},
		{dash.Config{TargetLatency: 2 * time.Second, UTCTimingURL: "https://cdn.example/time"}, ""},
		{dash.Config{TargetLatency: -1}, "'target_latency'"},
		{dash.Config{MinimumUpdatePeriod: time.Hour}, "'minimum_update_period'"},
		{dash.Config{UTCTimingURL: "/time"}, "'utc_timing_url'"},
		{dash.Config{TimePath: "time"}, "'time_path'"},
		{dash.Config{FirstSegmentWait: -1}, "'first_segment_wait'"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, dash.ErrConfig)) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestMPD checks the dynamic MPD against SPECS.md § LL-DASH while a
// stream with a resolution change is live, then the static MPD after it
// ended, and has ffprobe read the media through the MPD.
func TestMPD(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed (Debian package ffmpeg); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{
		{Width: 320, Height: 180, Duration: 2 * time.Second},
		{Width: 640, Height: 360, Duration: 4 * time.Second},
	}})
	e := start(t, origin.Config{EndGrace: 500 * time.Millisecond}, dash.Config{}, 4096)

	if res, _, _ := getMPD(t, e.url+"/cmaf/5/index.mpd"); res.StatusCode != 404 {
		t.Fatalf("unknown stream: %d", res.StatusCode)
	}
	pub, err := e.hub.Publish(hub.Key{Stream: 5, Rendition: hub.Source}, hub.Session{ID: "a", Tracks: stream.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Play(ctx, pub, mediatest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}

	// Live (the publisher is still there, its last segment open).
	// The packager works through the queued access units: wait until the
	// MPD shows both pieces.
	var res *http.Response
	var m *mpd.MPD
	var raw string
	for {
		res, m, raw = getMPD(t, e.url+"/cmaf/5/index.mpd")
		if m == nil && ctx.Err() != nil {
			t.Fatalf("live MPD: %d %s", res.StatusCode, raw)
		}
		// Both tracks in the second Period: the audio's segment there
		// opens with its first sample after the video's cut, a moment
		// later (under load the MPD was read in between).
		if m != nil && len(m.Periods) == 2 && len(m.Periods[1].AdaptationSets) == 2 && strings.Count(raw, "<S ") >= 4 || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("live MPD:\n%s", raw)
	// Gzip-negotiated (Go's client asks for it) with a strong ETag per
	// representation (httpx.ServeDocument).
	if res.Header.Get("Content-Type") != "application/dash+xml" || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
		res.Header.Get("Vary") != "Accept-Encoding" || !strings.HasSuffix(res.Header.Get("ETag"), `-gz"`) || !res.Uncompressed {
		t.Errorf("headers %v", res.Header)
	}
	// Shared caches keep a live MPD a second; a browser's own cache not at
	// all (a player reloading it must see each new version).
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=0, s-maxage=1" {
		t.Errorf("live MPD Cache-Control %q", cc)
	}
	if m.GetType() != "dynamic" || m.AvailabilityStartTime == "" || m.MinimumUpdatePeriod == nil ||
		m.SuggestedPresentationDelay == nil || m.TimeShiftBufferDepth == nil || m.PublishTime == "" {
		t.Errorf("dynamic MPD attributes missing")
	}
	if len(m.UTCTimings) != 1 || string(m.UTCTimings[0].SchemeIdUri) != dash.UTCTimingScheme || m.UTCTimings[0].Value != e.url+"/time" {
		t.Errorf("UTCTiming %+v", m.UTCTimings)
	}
	if len(m.ServiceDescription) != 1 || *m.ServiceDescription[0].Latencies[0].Target != 1000 {
		t.Errorf("ServiceDescription")
	}
	if !strings.Contains(raw, `suggestedPresentationDelay="PT1S"`) {
		t.Errorf("suggestedPresentationDelay is not the default 1 s")
	}
	// The resolution change (new SPS, new init segment) opens a Period.
	if len(m.Periods) != 2 {
		t.Fatalf("%d periods, want 2", len(m.Periods))
	}
	for _, p := range m.Periods {
		if p.Start == nil {
			t.Errorf("period %s without start", p.Id)
		}
		var kinds []string
		for _, as := range p.AdaptationSets {
			kinds = append(kinds, string(as.ContentType))
			if len(as.ProducerReferenceTimes) != 1 || as.ProducerReferenceTimes[0].UTCTiming == nil ||
				as.ProducerReferenceTimes[0].UTCTiming.Value != m.UTCTimings[0].Value {
				t.Errorf("period %s %s: ProducerReferenceTime with the MPD's UTCTiming missing", p.Id, as.ContentType)
			}
			for _, rep := range as.Representations {
				st := rep.SegmentTemplate
				if st == nil || st.SegmentTimeline == nil || !strings.Contains(st.Media, "$Number$") || st.StartNumber == nil {
					t.Fatalf("representation %s: no SegmentTemplate $Number$ + SegmentTimeline", rep.Id)
				}
				ato := float64(st.AvailabilityTimeOffset)
				if ato <= 0 || ato >= 1 || st.AvailabilityTimeComplete == nil || *st.AvailabilityTimeComplete {
					t.Errorf("representation %s: availabilityTimeOffset %v complete %v", rep.Id, ato, st.AvailabilityTimeComplete)
				}
				// Every referenced init and segment is served.
				for _, path := range []string{st.Initialization, strings.ReplaceAll(st.Media, "$Number$", itoa(*st.StartNumber))} {
					r, err := http.Get(e.url + "/cmaf/5/" + path)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(r.Body)
					r.Body.Close()
					if r.StatusCode != 200 || len(b) == 0 {
						t.Errorf("%s: %d", path, r.StatusCode)
					}
				}
			}
		}
		if strings.Join(kinds, ",") != "video,audio" {
			t.Errorf("period %s adaptation sets %v", p.Id, kinds)
		}
	}
	if v := m.Periods[0].AdaptationSets[0].Representations[0]; v.Width != 320 || v.Height != 180 {
		t.Errorf("period 1 video %dx%d, want the first init segment's 320x180", v.Width, v.Height)
	}
	v := m.Periods[1].AdaptationSets[0].Representations[0]
	if v.Width != 640 || v.Height != 360 || !strings.HasPrefix(v.Codecs, "avc1.") {
		t.Errorf("period 2 video %dx%d %s", v.Width, v.Height, v.Codecs)
	}

	// ffprobe follows the dynamic MPD.
	probe(t, ctx, e.url+"/cmaf/5/index.mpd")

	// After the publisher leaves (and the grace period): static MPD.
	pub.Close()
	var static *mpd.MPD
	for static == nil {
		if _, m, _ := getMPD(t, e.url+"/cmaf/5/index.mpd"); m != nil && m.GetType() == "static" {
			static = m
		} else if ctx.Err() != nil {
			t.Fatal("MPD never became static")
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if static.MediaPresentationDuration == nil || static.MinimumUpdatePeriod != nil {
		t.Fatalf("static MPD attributes")
	}
	if d := time.Duration(*static.MediaPresentationDuration); d < 5500*time.Millisecond || d > 6500*time.Millisecond {
		t.Errorf("mediaPresentationDuration %v, stream is 6 s", d)
	}
	out := probe(t, ctx, e.url+"/cmaf/5/index.mpd")
	if !strings.Contains(out, "h264") || !strings.Contains(out, "opus") {
		t.Errorf("ffprobe streams: %s", out)
	}
}

func itoa(v uint32) string { return strings.TrimSpace(strings.Repeat(" ", 0) + uintStr(uint64(v))) }

func uintStr(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

func probe(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
		"-of", "compact", url).CombinedOutput()
	if err != nil || strings.Contains(string(out), "rror") {
		t.Fatalf("ffprobe %s: %v\n%s", url, err, out)
	}
	return string(out)
}
