package hwenc_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/plugins/ffenc"
)

// pluginDir holds the real plugin binaries, built once by TestMain with the
// test-only fault-injection switch compiled in.
var pluginDir string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "hwenc-plugins-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-tags", "faultinject", "-o", dir+"/",
			"github.com/edgenode/edgenode/plugins/x264",
			"github.com/edgenode/edgenode/plugins/vaapi",
			"github.com/edgenode/edgenode/plugins/nvenc")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building plugins: %v\n%s", err, out)
			return 1
		}
		pluginDir = dir
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/deps.sh test installs it)")
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type env struct {
	hub *hub.Hub
	m   *hwenc.Manager
	reg *prometheus.Registry
}

func start(t *testing.T, cfg hwenc.Config) *env {
	t.Helper()
	needFFmpeg(t)
	if cfg.PluginDir == "" {
		cfg.PluginDir = pluginDir
	}
	h := hub.New(4096)
	reg := prometheus.NewRegistry()
	m, err := hwenc.New(cfg, hwenc.Deps{Logger: testLogger(t), Metrics: reg, Hub: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{hub: h, m: m, reg: reg}
}

// TestProbeOnThisMachine is acceptance 2: without a GPU the vaapi and nvenc
// plugins say why not, x264 is chosen, Status and /metrics show it.
func TestProbeOnThisMachine(t *testing.T) {
	e := start(t, hwenc.Config{})
	st := e.m.Status()
	t.Logf("chosen %q: %s", st.Chosen, st.Why)
	by := map[string]hwenc.PluginStatus{}
	for _, p := range st.Plugins {
		t.Logf("plugin %s available=%v hardware=%v reason=%q encoder=%q", p.Name, p.Available, p.Hardware, p.Reason, p.Encoder)
		by[p.Name] = p
	}
	if !by["x264"].Available || by["x264"].ProtocolVersion != 1 {
		t.Fatalf("x264: %+v", by["x264"])
	}
	hw := false
	if ffenc.VAAPIDevice() == "" {
		if p := by["vaapi"]; p.Available || !strings.Contains(p.Reason, "/dev/dri") {
			t.Errorf("vaapi: %+v, want unavailable naming /dev/dri", p)
		}
	} else {
		hw = true
	}
	if _, err := os.Stat("/dev/nvidiactl"); err != nil {
		if p := by["nvenc"]; p.Available || !strings.Contains(strings.ToLower(p.Reason), "nvidia") {
			t.Errorf("nvenc: %+v, want unavailable naming NVIDIA", p)
		}
	} else {
		hw = true
	}
	if !hw && st.Chosen != "x264" {
		t.Errorf("chosen %q, want x264", st.Chosen)
	}
	if !strings.Contains(st.Why, "vaapi") || !strings.Contains(st.Why, "nvenc") {
		t.Errorf("why %q does not give the rejection reasons", st.Why)
	}
	g, _ := e.reg.Gather()
	for _, f := range g {
		if f.GetName() != "edgenode_hwenc_plugin_info" {
			continue
		}
		for _, mt := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if p := by[l["plugin"]]; l["reason"] != p.Reason || l["available"] != fmt.Sprint(p.Available) {
				t.Errorf("plugin_info %v does not match status %+v", l, p)
			}
			delete(by, l["plugin"])
		}
	}
	if len(by) != 0 {
		t.Errorf("no plugin_info for %v", by)
	}
	for name, want := range map[string]float64{"x264": 1, "vaapi": 0, "nvenc": 0} {
		if hw {
			break
		}
		g, _ := e.reg.Gather()
		got := metricValue(g, "edgenode_hwenc_plugin_chosen", name)
		if got != want {
			t.Errorf("plugin_chosen{plugin=%s} = %v, want %v", name, got, want)
		}
	}
}

// rendition collects what one rendition of a stream carries.
type rendition struct {
	done  chan struct{}
	sess  *hub.Session
	video []*media.AccessUnit
	audio []*media.AccessUnit
	got   []time.Time  // arrival of each video AU
	agot  []time.Time  // arrival of each audio AU
	n     atomic.Int64 // video AUs so far (readable while running)
}

func watch(t *testing.T, h *hub.Hub, k hub.Key) *rendition {
	r := &rendition{done: make(chan struct{})}
	sub := h.Subscribe(k, "test-"+k.Rendition)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	go func() {
		defer close(r.done)
		defer cancel()
		defer sub.Close()
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				return
			}
			switch ev.Kind {
			case hub.SessionStart:
				r.sess = ev.Session
			case hub.SessionEnd:
				return
			case hub.AccessUnit:
				if ev.Missed > 0 {
					t.Errorf("%s: %d AUs missed", k.Rendition, ev.Missed)
				}
				if ev.AU.Codec.IsVideo() {
					r.video = append(r.video, ev.AU)
					r.got = append(r.got, time.Now())
					r.n.Add(1)
				} else {
					r.audio = append(r.audio, ev.AU)
					r.agot = append(r.agot, time.Now())
				}
			}
		}
	}()
	t.Cleanup(func() { sub.Close(); <-r.done })
	return r
}

func wait(t *testing.T, r *rendition, what string) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not end", what)
	}
}

func play(t *testing.T, h *hub.Hub, id uint64, s *mediatest.Stream) {
	t.Helper()
	pub, err := h.Publish(hub.Key{Stream: id, Rendition: hub.Source}, hub.Session{ID: "sess1", Tracks: s.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.Duration+30*time.Second)
	defer cancel()
	if err := s.Play(ctx, pub, mediatest.PlayOptions{Realtime: true}); err != nil {
		t.Fatal(err)
	}
	pub.Close()
}

func ptsOf(aus []*media.AccessUnit, keyOnly bool, from int64) []int64 {
	var out []int64
	for _, au := range aus {
		if au.PTS >= from && (!keyOnly || au.Key) {
			out = append(out, au.PTS)
		}
	}
	return out
}

func checkSize(t *testing.T, name string, aus []*media.AccessUnit, w, h int) {
	t.Helper()
	for _, au := range aus {
		if !au.Key {
			continue
		}
		var sps h264.SPS
		if err := sps.Unmarshal(au.Payload[0]); err != nil {
			t.Fatalf("%s: keyframe without leading SPS: %v", name, err)
		}
		if sps.Width() != w || sps.Height() != h {
			t.Errorf("%s: keyframe at %d is %dx%d, want %dx%d", name, au.PTS, sps.Width(), sps.Height(), w, h)
		}
	}
}

// TestLadderFollowsSource is acceptance 1 at the hub: the publisher ramps
// from 320x180 to 640x360; 180p starts at once, 360p when the source gets
// there, 720p never (no upscaling); every rendition has exactly the
// source's frames and keyframes (so segments and tfdt line up), a fixed
// size, and AAC audio.
func TestLadderFollowsSource(t *testing.T) {
	e := start(t, hwenc.Config{Ladder: []media.Rendition{
		{Name: hub.Source},
		{Name: "720p", Width: 1280, Height: 720, Bitrate: 2_500_000},
		{Name: "360p", Width: 640, Height: 360, Bitrate: 600_000},
		{Name: "180p", Width: 320, Height: 180, Bitrate: 200_000},
	}})
	s := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{
		{Width: 320, Height: 180, Duration: 2 * time.Second},
		{Width: 640, Height: 360, Duration: 3 * time.Second},
	}})
	r360 := watch(t, e.hub, hub.Key{Stream: 7, Rendition: "360p"})
	r180 := watch(t, e.hub, hub.Key{Stream: 7, Rendition: "180p"})
	r720 := watch(t, e.hub, hub.Key{Stream: 7, Rendition: "720p"})
	aac := watch(t, e.hub, hub.Key{Stream: 7, Rendition: hwenc.AudioRendition})
	play(t, e.hub, 7, s)
	wait(t, r360, "360p")
	wait(t, r180, "180p")
	wait(t, aac, "aac")
	if aac.sess == nil || len(aac.sess.Tracks) != 1 || aac.sess.Tracks[0].Codec != media.CodecAAC || len(aac.audio) < len(r180.audio) {
		t.Errorf("aac rendition: session %+v, %d frames (180p has %d)", aac.sess, len(aac.audio), len(r180.audio))
	}
	// Contiguous through the ladder change at the resolution step (one
	// encoder session drains while the next starts).
	checkAACContiguous(t, "aac", aac.audio, 0)
	if len(aac.audio) > 0 {
		// The AAC timeline starts with the first source frame the
		// encoder gets (silence until the encoder's own arrive): at the
		// source's first keyframe, where the encoder starts.
		key0 := s.Video()[0].PTS * 48000 / 90000
		if d := aac.audio[0].PTS - key0; d > 48000/20 || d < -48000/20 {
			t.Errorf("AAC starts %v from the source's first keyframe", time.Duration(d)*time.Second/48000)
		}
	}

	src := s.Video()
	var switchAt int64 = -1
	for _, au := range src {
		if au.Key {
			if w, _, ok := size(au); ok && w == 640 {
				switchAt = au.PTS
				break
			}
		}
	}
	for _, c := range []struct {
		name string
		r    *rendition
		from int64
		w, h int
	}{{"180p", r180, src[0].PTS, 320, 180}, {"360p", r360, switchAt, 640, 360}} {
		if c.r.sess == nil || len(c.r.sess.Tracks) != 2 || c.r.sess.Tracks[0].Width != c.w || c.r.sess.Tracks[1].Codec != media.CodecAAC {
			t.Fatalf("%s: session %+v", c.name, c.r.sess)
		}
		if got, want := ptsOf(c.r.video, true, 0), ptsOf(src, true, c.from); !slices.Equal(got, want) {
			t.Errorf("%s: keyframes at %v, source from %d at %v", c.name, got, c.from, want)
		}
		if got, want := ptsOf(c.r.video, false, 0), ptsOf(src, false, c.from); !slices.Equal(got, want) {
			t.Errorf("%s: %d frames, source has %d from %d", c.name, len(got), len(want), c.from)
		}
		checkSize(t, c.name, c.r.video, c.w, c.h)
		if len(c.r.audio) < 30 {
			t.Errorf("%s: only %d AAC frames", c.name, len(c.r.audio))
		}
		for _, a := range c.r.audio {
			if a.Codec != media.CodecAAC {
				t.Fatalf("%s: audio %v", c.name, a.Codec)
			}
		}
	}
	if r720.sess != nil || len(r720.video) > 0 {
		t.Errorf("720p was published for a 360p source (upscaled)")
	}
}

func size(au *media.AccessUnit) (int, int, bool) {
	for _, n := range au.Payload {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			var sps h264.SPS
			if sps.Unmarshal(n) == nil {
				return sps.Width(), sps.Height(), true
			}
		}
	}
	return 0, 0, false
}

func playAsync(t *testing.T, h *hub.Hub, id uint64, s *mediatest.Stream) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		play(t, h, id, s)
	}()
	t.Cleanup(func() { <-done })
	return done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ladder360() []media.Rendition {
	return []media.Rendition{{Name: hub.Source}, {Name: "360p", Width: 640, Height: 360, Bitrate: 600_000}}
}

// maxGap is the largest PTS step between consecutive frames.
func maxGap(aus []*media.AccessUnit) int64 {
	var g int64
	for i := 1; i < len(aus); i++ {
		g = max(g, aus[i].PTS-aus[i-1].PTS)
	}
	return g
}

// runningPlugin waits until rung r of stream id has n frames and returns
// the pid of the plugin encoding it.
func runningPlugin(t *testing.T, e *env, id uint64, r *rendition, n int64) int {
	t.Helper()
	var pid int
	waitFor(t, fmt.Sprintf("%d frames of the rung", n), func() bool {
		st, ok := e.m.StreamStatus(id)
		pid = st.PID
		return ok && pid != 0 && r.n.Load() >= n
	})
	return pid
}

// TestKill9PluginMidStream is acceptance 3a: kill -9 of the plugin process
// mid-stream; the source rendition loses nothing, the transcoded rendition
// comes back (keyframe first, on the source's keyframes) with a hole of at
// most 2 s of media time, and the AAC audio (the source variant's audio in
// HLS) has no hole at all: silence stands in while the plugin restarts.
func TestKill9PluginMidStream(t *testing.T) {
	e := start(t, hwenc.Config{Ladder: ladder360(), RestartBackoff: 100 * time.Millisecond})
	s := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: 7 * time.Second}}})
	src := watch(t, e.hub, hub.Key{Stream: 3, Rendition: hub.Source})
	r := watch(t, e.hub, hub.Key{Stream: 3, Rendition: "360p"})
	aac := watch(t, e.hub, hub.Key{Stream: 3, Rendition: hwenc.AudioRendition})
	done := playAsync(t, e.hub, 3, s)

	pid := runningPlugin(t, e, 3, r, 45)
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	before := r.n.Load()
	var newPID int
	waitFor(t, "a new plugin process", func() bool {
		st, _ := e.m.StreamStatus(3)
		newPID = st.PID
		return newPID != 0 && newPID != pid && st.Restarts >= 1
	})
	<-done
	wait(t, r, "360p")
	wait(t, src, "source")
	wait(t, aac, "aac")

	checkAACContiguous(t, "aac", aac.audio, 5)
	checkAACContiguous(t, "360p audio", r.audio, 5)
	// The AAC rendition's edge keeps moving across the kill and the
	// restarted encoder's catch-up: a player about 2 s behind the live
	// edge with a second of audio buffered must never run dry.
	var freeze time.Duration
	for i := 1; i < len(aac.agot); i++ {
		freeze = max(freeze, aac.agot[i].Sub(aac.agot[i-1]))
	}
	decodeAAC(t, "aac", aac.audio)
	t.Logf("aac: longest wait between frames %v", freeze.Round(time.Millisecond))
	if freeze > 1500*time.Millisecond {
		t.Errorf("aac: no frame for %v", freeze.Round(time.Millisecond))
	}
	if len(src.audio) > 0 && len(aac.audio) > 0 {
		// The AAC timeline reaches the source's last audio (within the
		// encoder's flush at the end, a few frames).
		srcEnd, aacEnd := src.audio[len(src.audio)-1].PTS, aac.audio[len(aac.audio)-1].PTS
		t.Logf("source audio ends at %d, AAC at %d (48 kHz)", srcEnd, aacEnd)
		if srcEnd-aacEnd > 48000/4 {
			t.Errorf("AAC ends %v before the source audio", time.Duration(srcEnd-aacEnd)*time.Second/48000)
		}
	}

	if len(src.video) != len(s.Video()) {
		t.Errorf("source rendition: %d video AUs arrived, %d published", len(src.video), len(s.Video()))
	}
	if int64(len(r.video)) <= before+30 {
		t.Fatalf("360p did not come back: %d frames before the kill, %d in all", before, len(r.video))
	}
	for i, au := range r.got {
		if au.After(killedAt) && int64(i) >= before {
			t.Logf("first 360p frame after kill -9 arrived %v later (pid %d -> %d)", au.Sub(killedAt).Round(time.Millisecond), pid, newPID)
			break
		}
	}
	gap := maxGap(r.video)
	t.Logf("largest hole in 360p: %v of media time", time.Duration(gap)*time.Second/90000)
	if gap > 2*90000 {
		t.Errorf("360p hole of %v, want at most 2 s", time.Duration(gap)*time.Second/90000)
	}
	if gap < 90000/10 {
		t.Errorf("no hole at all in 360p: was the plugin really killed?")
	}
	keys := map[int64]bool{}
	for _, au := range s.Video() {
		keys[au.PTS] = au.Key
	}
	for i, au := range r.video {
		if au.Key != keys[au.PTS] {
			t.Errorf("360p frame %d (pts %d): key=%v, source key=%v", i, au.PTS, au.Key, keys[au.PTS])
		}
		if i > 0 && au.PTS-r.video[i-1].PTS > 90000/10 && !au.Key {
			t.Errorf("360p resumes at pts %d with a non-keyframe", au.PTS)
		}
	}
}

// TestSilenceWhileAPluginStarts: a plugin killed mid-stream is launched
// again at the next keyframe, and a launch takes a while (up to a second
// on a loaded box; here 3 s, EDGENODE_FAULT_X264_START_DELAY). Meanwhile
// the host goes on writing silence into the AAC rendition, whose edge a
// player of the source variant follows: with the launch on the worker's
// loop, the AAC stood still for the whole launch (a fresh clone's
// TestTranscodedLadderEndToEnd stalled hls.js 1.2 s after its kill -9).
func TestSilenceWhileAPluginStarts(t *testing.T) {
	const delay = 3 * time.Second
	e := start(t, hwenc.Config{Mode: hwenc.ModeX264, Ladder: ladder360(), RestartBackoff: 100 * time.Millisecond})
	s := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: 10 * time.Second}}})
	r := watch(t, e.hub, hub.Key{Stream: 6, Rendition: "360p"})
	aac := watch(t, e.hub, hub.Key{Stream: 6, Rendition: hwenc.AudioRendition})
	done := playAsync(t, e.hub, 6, s)
	pid := runningPlugin(t, e, 6, r, 30)
	// Only the launches from now on are slow (the environment is read
	// when a plugin process starts).
	t.Setenv("EDGENODE_FAULT_X264_START_DELAY", delay.String())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	waitFor(t, "a new plugin process", func() bool {
		st, _ := e.m.StreamStatus(6)
		return st.PID != 0 && st.PID != pid
	})
	upAt := time.Now()
	<-done
	wait(t, aac, "aac")
	wait(t, r, "360p")
	if upAt.Sub(killedAt) < delay {
		t.Fatalf("the plugin was back %v after the kill: the start delay did not apply", upAt.Sub(killedAt))
	}
	// The longest the AAC rendition went without a frame while the
	// plugin was down and starting.
	var freeze time.Duration
	frames, prev := 0, killedAt
	for _, at := range aac.agot {
		if at.Before(killedAt) {
			continue
		}
		if at.After(upAt) {
			break
		}
		freeze = max(freeze, at.Sub(prev))
		prev = at
		frames++
	}
	freeze = max(freeze, upAt.Sub(prev))
	t.Logf("kill -9 → new plugin up: %v; %d AAC frames meanwhile, longest wait %v", upAt.Sub(killedAt).Round(time.Millisecond), frames, freeze.Round(time.Millisecond))
	if freeze > 1500*time.Millisecond {
		t.Errorf("aac: no frame for %v while the plugin was starting", freeze.Round(time.Millisecond))
	}
	checkAACContiguous(t, "aac", aac.audio, 5)
}

// checkAACContiguous checks that every AAC frame follows the one before
// it by exactly one frame (1024 samples): no hole, no overlap. When
// minSilent > 0 it also wants a run of at least that many silent frames
// (standing in for an encoder that was down) between real ones.
func checkAACContiguous(t *testing.T, name string, aus []*media.AccessUnit, minSilent int) {
	t.Helper()
	if len(aus) < 50 {
		t.Fatalf("%s: only %d AAC frames", name, len(aus))
	}
	holes := 0
	for i := 1; i < len(aus); i++ {
		if d := aus[i].PTS - aus[i-1].PTS; d != 1024 {
			holes++
			if holes <= 5 {
				t.Errorf("%s: frame %d at %d follows %d: step %d, want 1024", name, i, aus[i].PTS, aus[i-1].PTS, d)
			}
		}
	}
	if holes > 0 {
		t.Errorf("%s: %d steps other than one frame in %d frames", name, holes, len(aus))
	}
	// Runs of silent frames [from, to).
	type run struct{ from, to int }
	var runs []run
	for i := 0; i < len(aus); i++ {
		if !isSilent(aus[i]) {
			continue
		}
		j := i
		for j < len(aus) && isSilent(aus[j]) {
			j++
		}
		runs = append(runs, run{i, j})
		i = j
	}
	t.Logf("%s: %d AAC frames, silent runs %v", name, len(aus), runs)
	if minSilent == 0 {
		return
	}
	for _, r := range runs {
		if r.from > 0 && r.to < len(aus) && r.to-r.from >= minSilent {
			t.Logf("%s: %v of silence between the encoder's frames %d and %d", name,
				time.Duration(r.to-r.from)*1024*time.Second/48000, r.from-1, r.to)
			return
		}
	}
	t.Errorf("%s: no run of ≥ %d silent frames between the encoder's own (runs %v of %d frames)", name, minSilent, runs, len(aus))
}

// decodeAAC decodes a rendition's AAC frames, the encoder's and the
// silence between them, as one 2-channel 48 kHz ADTS stream with ffmpeg,
// as a player would: no decoder error, 1024 samples per frame. Every
// frame's audio element is a channel pair (ISO/IEC 14496-3 §4.5.2.1,
// channel_configuration 2: one CPE): ffmpeg would upmix a mono (SCE)
// silent frame without a word, a stricter decoder might not.
func decodeAAC(t *testing.T, name string, aus []*media.AccessUnit) {
	t.Helper()
	const idCPE, idFIL = 1, 6
	var in bytes.Buffer
	for i, au := range aus {
		f := au.Payload[0]
		if id := f[0] >> 5; id != idCPE && id != idFIL {
			t.Errorf("%s: frame %d (silent %v) starts with syntax element %d, want a CPE", name, i, isSilent(au), id)
		}
		l := len(f) + 7
		const profile, freqIdx, channels = 1, 3, 2 // AAC LC, 48 kHz, stereo
		in.Write([]byte{0xff, 0xf1, profile<<6 | freqIdx<<2 | channels>>2, byte((channels&3)<<6 | l>>11),
			byte(l >> 3), byte((l&7)<<5 | 0x1f), 0xfc})
		in.Write(f)
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "warning", "-xerror", "-f", "aac", "-i", "-", "-f", "s16le", "-")
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil || strings.TrimSpace(stderr.String()) != "" {
		t.Fatalf("%s: decoding the AAC frames: %v: %s", name, err, stderr.String())
	}
	if want := len(aus) * 1024 * 2 * 2; out.Len() != want {
		t.Errorf("%s: %d bytes of s16 stereo decoded from %d frames, want %d", name, out.Len(), len(aus), want)
	}
}

func isSilent(au *media.AccessUnit) bool {
	return len(au.Payload) == 1 && bytes.Equal(au.Payload[0], silentAAC)
}

// silentAAC is the steady-state AAC-LC frame ffmpeg's native encoder
// makes of stereo digital silence (the host's own copy is checked by
// TestSilentAACDecodesToZeros).
var silentAAC = []byte{0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}

// TestFallbackToX264MidStream is acceptance 3b: a (pretend) VAAPI plugin
// that fails after 10 frames every time is replaced by x264 mid-stream; the
// rendition stays one publisher session and plays to the end.
func TestFallbackToX264MidStream(t *testing.T) {
	t.Setenv("EDGENODE_FAULT_VAAPI_PRETEND", "1")
	t.Setenv("EDGENODE_FAULT_VAAPI_FAIL_AFTER", "10")
	e := start(t, hwenc.Config{Ladder: ladder360(), FallbackAfter: 2, RestartBackoff: 50 * time.Millisecond})
	if st := e.m.Status(); st.Chosen != "vaapi" {
		t.Fatalf("chosen %q (%s), want the pretend vaapi", st.Chosen, st.Why)
	}
	s := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: 10 * time.Second}}})
	r := watch(t, e.hub, hub.Key{Stream: 4, Rendition: "360p"})
	done := playAsync(t, e.hub, 4, s)
	waitFor(t, "fallback", func() bool {
		st, _ := e.m.StreamStatus(4)
		return st.FellBackFrom == "vaapi" && st.Plugin == "x264"
	})
	<-done
	wait(t, r, "360p")
	st, _ := e.m.StreamStatus(4)
	t.Logf("after fallback: %+v", st)
	if st.Restarts < 2 {
		t.Errorf("restarts %d, want >= 2", st.Restarts)
	}
	g, _ := e.reg.Gather()
	if v := metricValue(g, "edgenode_hwenc_fallbacks_total", "vaapi"); v != 1 {
		t.Errorf("fallbacks_total{from=vaapi} = %v, want 1", v)
	}
	// After the last hole (the switch to x264) the rendition has every
	// source frame, for at least 2 s, up to (near) the end.
	src := s.Video()
	last := 0
	for i := 1; i < len(r.video); i++ {
		if r.video[i].PTS-r.video[i-1].PTS > 90000/10 {
			last = i
		}
	}
	if len(r.video) == 0 || !r.video[last].Key {
		t.Fatalf("360p after the fallback does not start with a keyframe")
	}
	tail := ptsOf(r.video[last:], false, 0)
	want := ptsOf(src, false, tail[0])
	want = want[:min(len(want), len(tail))]
	if !slices.Equal(tail[:len(want)], want) {
		t.Errorf("360p after the fallback is not every source frame")
	}
	if d := tail[len(tail)-1] - tail[0]; d < 2*90000 {
		t.Errorf("x264 ran for only %v of media time", time.Duration(d)*time.Second/90000)
	}
	if end := src[len(src)-1].PTS - tail[len(tail)-1]; end > 90000 {
		t.Errorf("360p stops %v before the source's end", time.Duration(end)*time.Second/90000)
	}
	checkSize(t, "360p", r.video, 640, 360)
	checkAACContiguous(t, "360p audio", r.audio, 0)
}

// TestStalledEncoderIsRestarted: an encoder that stays connected but stops
// producing (a wedged driver) is restarted after stall_timeout, and the
// rendition carries on in the same publisher session.
func TestStalledEncoderIsRestarted(t *testing.T) {
	t.Setenv("EDGENODE_FAULT_X264_STALL_AFTER", "30")
	e := start(t, hwenc.Config{Mode: hwenc.ModeX264, Ladder: ladder360(), StallTimeout: time.Second, RestartBackoff: 50 * time.Millisecond})
	s := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: 6 * time.Second}}})
	r := watch(t, e.hub, hub.Key{Stream: 5, Rendition: "360p"})
	done := playAsync(t, e.hub, 5, s)
	var st hwenc.StreamStatus
	waitFor(t, "a stall restart", func() bool {
		st, _ = e.m.StreamStatus(5)
		return st.Restarts >= 1 && strings.Contains(st.LastError, "stalled")
	})
	<-done
	wait(t, r, "360p")
	t.Logf("status %+v", st)
	// Frames from after the first restart prove the session came back.
	var keysAfterHole int
	for i := 1; i < len(r.video); i++ {
		if r.video[i].PTS-r.video[i-1].PTS > 90000/10 && r.video[i].Key {
			keysAfterHole++
		}
	}
	if keysAfterHole == 0 {
		t.Errorf("360p never resumed after the stall (%d frames)", len(r.video))
	}
}
