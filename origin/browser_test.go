package origin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/browsertest"
	"github.com/edgenode/edgenode/internal/cpusteal"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin/player"
	"github.com/edgenode/edgenode/origin/player/playertest"
)

// swapHandler lets a test restart the origin behind the same address.
type swapHandler struct{ h atomic.Pointer[http.ServeMux] }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	s.h.Load().ServeHTTP(w, r)
	if debugReqs != nil {
		debugReqs.Logf("%s +%v %s (%v)", t0.Format("05.000"), time.Since(t0).Round(time.Millisecond), r.URL.RequestURI(), r.Header.Get("Range"))
	}
}

var debugReqs *testing.T

func newMux(t *testing.T, o *Origin) *http.ServeMux {
	t.Helper()
	mux := http.NewServeMux()
	o.RegisterRoutes(mux)
	ps, err := player.New(player.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps.RegisterRoutes(mux)
	mux.HandleFunc("GET /test/hls.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(testPage))
	})
	return mux
}

// downMux drops every connection, like a node that is not running.
func downMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	return mux
}

// testPage plays LL-HLS with hls.js tuned as a low-latency player should
// be and keeps the figures playertest reads. hls.js defaults never catch
// up with the live edge once behind (maxLiveSyncPlaybackRate 1, no
// maximum latency): on a loaded machine the start alone can put it 3 s
// behind. Catch-up rate 1.5 and a re-sync beyond 2 s fix that
// (liveSyncDuration repeats PART-HOLD-BACK: hls.js only accepts a maximum
// latency next to an explicit sync duration). hls.js also raises its
// target by 1 s after every stall (liveSyncOnStallIncrease), so one stall
// at a reconnect would keep it above 1.5 s for good: 0 keeps the target.
const testPage = `<!doctype html><html><body><video id=v muted autoplay playsinline></video>
<script src="/player/assets/hls.min.js"></script>
<script>
var st = window.edgenode = {stream: '', format: 'll-hls', currentTime: 0, latency: null, libLatency: null,
  targetLatency: null, buffer: 0, stalls: 0, playing: false, width: 0, height: 0, errors: []};
var v = document.getElementById('v');
var id = new URLSearchParams(location.search).get('id');
var hls = new Hls({lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5, liveSyncDuration: 0.6,
  liveMaxLatencyDuration: 2, liveSyncOnStallIncrease: 0, backBufferLength: 10});
hls.on(Hls.Events.ERROR, function (e, d) { if (d.fatal) { st.errors.push(d.type + ': ' + d.details); hls.startLoad(); } });
hls.loadSource('/cmaf/' + id + '/master.m3u8');
hls.attachMedia(v);
v.addEventListener('playing', function () { st.playing = true; if (!st.firstPlayingAt) { st.firstPlayingAt = Date.now(); } });
v.addEventListener('waiting', function () { if (st.playing) { st.stalls++; } st.playing = false; });
setInterval(function () {
  st.currentTime = v.currentTime; st.width = v.videoWidth; st.height = v.videoHeight;
  var d = hls.playingDate; st.latency = d ? (Date.now() - d.getTime()) / 1000 : null;
  st.libLatency = isFinite(hls.latency) ? hls.latency : null; st.targetLatency = hls.targetLatency;
  var b = v.buffered; st.buffer = b.length ? b.end(b.length - 1) - v.currentTime : 0;
}, 250);
</script></body></html>`

// checkRun checks a phase once the player caught up with the live edge
// (settle seconds of playback after from): no player errors (unless
// allowed), median latency ≤ max, no sample above 2 × max, at most two
// stalls. Median, not every sample: on the shared 2-core box (load
// average ~20) Chromium's playback clock fell behind by ~0.1 s/s at times
// until hls.js re-synced (counted as a stall) and single samples reached
// 1.7–2.4 s; a player that sits behind the target fails all the same.
func checkRun(t *testing.T, steal cpusteal.Window, what string, all []playertest.Status, from, settle, max float64, allowErrors bool) {
	t.Helper()
	stalls := -1
	var lat []float64
	for _, s := range all {
		if len(s.Errors) > 0 && !allowErrors {
			t.Errorf("%s: player errors: %v", what, s.Errors)
			return
		}
		if s.CurrentTime < from+settle || s.Latency == nil {
			continue
		}
		if stalls < 0 {
			stalls = s.Stalls
		}
		lat = append(lat, *s.Latency)
	}
	if len(lat) < 5 {
		t.Errorf("%s: only %d latency samples after settling", what, len(lat))
		return
	}
	sort.Float64s(lat)
	med, p90, worst := lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1]
	last := all[len(all)-1]
	t.Logf("%s: %d samples, latency median %.2fs p90 %.2fs worst %.2fs; stalls %d; hls.js latency %.2f target %.2f",
		what, len(lat), med, p90, worst, last.Stalls-stalls, deref(last.LibLatency), deref(last.TargetLatency))
	if med > max || worst > 2*max {
		steal.Errorf(t, "%s: latency median %.2fs (want ≤ %.1fs), worst %.2fs (want ≤ %.1fs)", what, med, max, worst, 2*max)
	}
	if n := last.Stalls - stalls; n > 0 {
		// Where they were: the page's last n waits.
		var ws []string
		for _, w := range last.Waits[len(last.Waits)-min(n, len(last.Waits)):] {
			ws = append(ws, fmt.Sprintf("t=%.2f ahead=%.2f at %.0fms", w.CurrentTime, w.Ahead, w.Ms))
		}
		t.Logf("%s: %d stalls once caught up (from t=%.2f): %s", what, n, from+settle, strings.Join(ws, "; "))
	}
	if last.Stalls > stalls+2 {
		steal.Errorf(t, "%s: %d stalls once caught up", what, last.Stalls-stalls)
	}
}

// TestHLSJSLowLatencyRampReconnectRestart: hls.js (low-latency mode) in
// headless Chromium plays through a resolution ramp at ≤ 1.5 s latency,
// then through a publisher reconnect and a node restart without reload.
func TestHLSJSLowLatencyRampReconnectRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	st := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{
		{Width: 320, Height: 180, Duration: 2 * time.Second},
		{Width: 640, Height: 360, Duration: 2 * time.Second},
		{Width: 1280, Height: 720, Duration: 2 * time.Second},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	steal := cpusteal.Start() // latency and stalls are judged unless the host starved the box
	b := browsertest.Start(t, browsertest.Options{Lifetime: 3 * time.Minute})
	bctx := b.Ctx

	state := &mapState{}
	cfg := Config{EndGrace: 20 * time.Second}
	h := hub.New(0)
	o, err := New(cfg, Deps{Hub: h, State: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sw := &swapHandler{}
	sw.h.Store(newMux(t, o))
	srv := httptest.NewServer(sw)
	defer srv.Close()
	defer func() { _ = o.Close() }()

	if os.Getenv("ORIGIN_DEBUG") != "" {
		debugReqs = t
		defer func() { debugReqs = nil }()
	}
	t.Logf("publish at %s", time.Now().Format("05.000"))
	published := time.Now()
	stop := publish(t, h, 11, st, 5, true) // 30 s, then the publisher leaves
	if err := playertest.Open(bctx, srv.URL+"/test/hls.html?id=11"); err != nil {
		t.Fatal(err)
	}
	last, all, err := playertest.WaitPlaying(bctx, 10*time.Second, 40*time.Second)
	if err != nil {
		t.Fatalf("hls.js did not play: %v (last %+v)", err, last)
	}
	if at, err := playertest.Eval[float64](bctx, "window.edgenode.firstPlayingAt || 0"); err == nil && at > 0 {
		t.Logf("playing %v after the first access unit was published", time.UnixMilli(int64(at)).Sub(published).Round(time.Millisecond))
	}
	for _, s := range all {
		if !testing.Verbose() {
			break
		}
		t.Logf("t=%.2f lat=%.2f lib=%.2f target=%.2f buf=%.2f %dx%d stalls=%d", s.CurrentTime, deref(s.Latency), deref(s.LibLatency), deref(s.TargetLatency), s.Buffer, s.Width, s.Height, s.Stalls)
	}
	checkRun(t, steal, "ramp", all, 0, 3, 1.5, false)
	widths := map[int]bool{}
	for _, s := range all {
		widths[s.Width] = true
	}
	if !widths[320] || !widths[640] || !widths[1280] {
		t.Errorf("played sizes %v, want the whole ramp 320, 640, 1280", widths)
	}
	t.Logf("ramp: latency %v, currentTime %.2f", deref(last.Latency), last.CurrentTime)
	stop()

	// Reconnect: a new session on the same stream continues the playlists.
	before := last.CurrentTime
	stop = publish(t, h, 11, st, 3, true)
	cur, _ := playertest.Read(bctx)
	last, all, err = waitAdvance(bctx, cur.CurrentTime, 14, 30*time.Second)
	if err != nil || last.CurrentTime < before+14 {
		t.Fatalf("after reconnect: %v (currentTime %.2f, was %.2f) %+v", err, last.CurrentTime, before, last)
	}
	checkRun(t, steal, "reconnect", all, cur.CurrentTime, 8, 1.5, false)
	t.Logf("reconnect: latency %v", deref(last.Latency))

	// Restart the node mid-stream: a new origin over the same state behind
	// the same address; the publisher reconnects to it.
	// The node is down: connections fail, as they would through a CDN
	// or with the process gone.
	sw.h.Store(downMux())
	_ = o.Close()
	stop()
	time.Sleep(time.Second)
	h2 := hub.New(0)
	o2, err := New(cfg, Deps{Hub: h2, State: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = o2.Close() }()
	sw.h.Store(newMux(t, o2))
	publish(t, h2, 11, st, 4, true)
	cur, _ = playertest.Read(bctx)
	last, all, err = waitAdvance(bctx, cur.CurrentTime, 14, 40*time.Second)
	if err != nil {
		t.Fatalf("after restart: %v %+v", err, last)
	}
	// Network errors while the node was down are expected; the player
	// must recover by itself (no reload) and settle at low latency again.
	if len(last.Errors) > 0 {
		t.Logf("restart: player saw %v while the node was down", last.Errors)
	}
	checkRun(t, steal, "restart", all, cur.CurrentTime, 8, 1.5, true)
	t.Logf("restart: latency %v, stalls %d", deref(last.Latency), last.Stalls)
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

// waitAdvance polls until currentTime passed from+by seconds.
func waitAdvance(ctx context.Context, from, by float64, timeout time.Duration) (playertest.Status, []playertest.Status, error) {
	var all []playertest.Status
	deadline := time.Now().Add(timeout)
	for {
		s, err := playertest.Read(ctx)
		if err != nil {
			return s, all, err
		}
		all = append(all, s)
		if s.CurrentTime >= from+by {
			return s, all, nil
		}
		if time.Now().After(deadline) {
			return s, all, playertest.ErrNotPlaying
		}
		select {
		case <-ctx.Done():
			return s, all, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
