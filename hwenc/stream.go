package hwenc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	pb "github.com/edgenode/edgenode/plugins/proto"
	"github.com/edgenode/edgenode/plugins/shared"
)

// healthyAfter: a session that ran this long resets the failure count.
const healthyAfter = 30 * time.Second

// worker transcodes one stream. It lives as long as its Subscription
// (across publisher sessions) and is owned by its run goroutine; the
// fields under mu are shared with the sessions' receive goroutines.
type worker struct {
	m   *Manager
	id  uint64
	sub *hub.Subscription
	log *slog.Logger

	// owned by run
	session    *hub.Session
	videoTrack int
	audioTrack int
	maxW, maxH int
	plugin     string
	failures   int
	retryAt    time.Time
	needKey    bool
	ts         *tsess
	starting   *starting // a plugin being launched (ts is nil then)
	startCh    chan started
	launches   sync.WaitGroup // launch goroutines, and the teardown of what ended while launching
	lastFed    time.Time

	mu       sync.Mutex
	outs     map[string]*rendOut
	rungs    []media.Rendition
	restarts int
	fellBack string
	lastErr  string
	fps      float64
	speed    float64
	state    string // the plugin's last Health state
	inflight map[int64]*inflight
	anchor   struct {
		pts int64
		t   time.Time
	}
	lastAudio int64 // PTS of the last AAC frame written (valid when audioSet)
	audioSet  bool
	lastReal  time.Time // when the encoder's last AAC frame was written
	silent    int       // silent AAC frames written (the encoder could not)
	hasAudio  bool
	audioOut  *hub.Publisher

	running  atomic.Pointer[runningInfo]
	retiring sync.WaitGroup // sessions draining in the background
}

type runningInfo struct {
	name string
	pid  int
}

type inflight struct {
	fed, src time.Time
	left     int
}

// rendOut is one rung published into the hub for the current session.
type rendOut struct {
	r       media.Rendition
	pub     *hub.Publisher
	lastDTS int64
}

func newWorker(m *Manager, id uint64, sub *hub.Subscription) *worker {
	return &worker{
		m: m, id: id, sub: sub, log: m.log.With("stream", id),
		videoTrack: -1, audioTrack: -1,
		outs: map[string]*rendOut{}, inflight: map[int64]*inflight{},
		startCh: make(chan started),
	}
}

// pendingMax bounds what waits for a plugin being launched: ~6 s of a
// 30 fps source and its audio, longer than a launch takes.
const pendingMax = 512

// starting is a plugin being launched and its session opened off the run
// loop. A launch takes 0.05-1 s, more on a loaded box, and run goes on
// handling the source meanwhile: silence keeps the AAC rendition's edge
// moving (with the launch on the loop, a fresh clone's kill -9 test had
// no AAC for 0.9 s and hls.js on the source variant ran dry), and what
// the new session must encode waits in pending, from a keyframe on.
type starting struct {
	rungs   []media.Rendition
	plugin  string
	cancel  context.CancelFunc
	pending []*pb.AccessUnit
}

// started is how a launch ended: a session, or why not.
type started struct {
	st  *starting
	ts  *tsess
	err error
}

func (w *worker) run(ctx context.Context) {
	evCh := make(chan hub.Event)
	var pump sync.WaitGroup
	pump.Add(1)
	go func() {
		defer pump.Done()
		defer close(evCh)
		for {
			ev, err := w.sub.Next(ctx)
			if err != nil {
				return
			}
			select {
			case evCh <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		w.endSession(false)
		w.launches.Wait()
		w.sub.Close()
		pump.Wait()
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var done <-chan error
		if w.ts != nil && !w.ts.ended {
			done = w.ts.done
		}
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-evCh:
			if !ok {
				return
			}
			w.handle(ev)
		case r := <-w.startCh:
			w.onStarted(r)
		case err := <-done:
			w.ts.ended = true
			if err == nil {
				err = errors.New("encoder ended the session")
			}
			w.fail(err)
		case <-tick.C:
			w.checkStall()
		}
	}
}

func (w *worker) handle(ev hub.Event) {
	switch ev.Kind {
	case hub.SessionStart:
		w.endSession(true)
		w.startSession(ev.Session)
	case hub.SessionEnd:
		w.endSession(true)
	case hub.AccessUnit:
		if w.session == nil || ev.AU == nil {
			return
		}
		if ev.Missed > 0 {
			w.needKey = true // the hub dropped for us: resume at a keyframe
			if w.starting != nil {
				w.starting.pending = nil
			}
		}
		switch ev.Track {
		case w.videoTrack:
			w.onVideo(ev.AU)
		case w.audioTrack:
			w.onAudio(ev.AU)
		}
	}
}

func (w *worker) startSession(s *hub.Session) {
	w.mu.Lock()
	w.session = s
	w.mu.Unlock()
	w.videoTrack, w.audioTrack = -1, -1
	w.maxW, w.maxH = 0, 0
	for i, t := range s.Tracks {
		switch {
		case t.Codec == media.CodecH264 && w.videoTrack < 0:
			w.videoTrack = i
			w.maxW, w.maxH = t.Width, t.Height
		case t.Codec == media.CodecOpus && w.audioTrack < 0:
			w.audioTrack = i
		}
	}
	w.m.mu.Lock()
	w.plugin = w.m.chosen
	w.m.mu.Unlock()
	w.failures, w.retryAt, w.needKey = 0, time.Time{}, true
	w.mu.Lock()
	w.hasAudio = w.audioTrack >= 0
	w.fellBack, w.lastErr, w.lastAudio, w.audioSet = "", "", 0, false
	w.mu.Unlock()
	w.log.Info("transcoding stream", "session", s.ID, "plugin", w.plugin, "video", w.videoTrack >= 0, "audio", w.audioTrack >= 0)
}

// endSession stops the encoder (letting it flush when graceful) and closes
// the renditions.
func (w *worker) endSession(graceful bool) {
	w.stopTranscode(graceful)
	w.retiring.Wait() // sessions draining after a ladder change
	w.mu.Lock()
	w.session = nil
	for n, o := range w.outs {
		o.pub.Close()
		delete(w.outs, n)
	}
	if w.audioOut != nil {
		w.audioOut.Close()
		w.audioOut = nil
	}
	w.rungs = nil
	clear(w.inflight)
	w.mu.Unlock()
}

// desired is the ladder of this stream without the source and without
// rungs taller than the tallest picture seen (never upscale).
func (w *worker) desired() []media.Rendition {
	var out []media.Rendition
	for _, r := range w.m.Ladder(w.id) {
		if r.Name == hub.Source || r.Height > w.maxH {
			continue
		}
		out = append(out, r)
	}
	return out
}

func (w *worker) onVideo(au *media.AccessUnit) {
	if au.Codec != media.CodecH264 {
		return
	}
	now := time.Now()
	if au.Key {
		var gate <-chan struct{}
		if wd, ht, ok := spsSize(au.Payload); ok && ht > w.maxH {
			w.maxW, w.maxH = wd, ht
		}
		w.needKey = false
		want := w.desired()
		if w.ts != nil && !slices.Equal(w.ts.rungs, want) {
			w.log.Info("ladder changes at keyframe", "pts", au.PTS, "from", names(w.ts.rungs), "to", names(want))
			gate = w.retire(want)
		}
		if w.ts == nil && w.starting == nil && (len(want) > 0 || w.audioTrack >= 0) && w.plugin != "" && !now.Before(w.retryAt) {
			if err := w.startTranscode(want, gate); err != nil {
				w.fail(err)
				return
			}
		}
		w.mu.Lock()
		for pts, f := range w.inflight {
			if now.Sub(f.fed) > 10*time.Second {
				delete(w.inflight, pts)
			}
		}
		w.mu.Unlock()
	}
	if w.needKey || !w.encoding() {
		return
	}
	rungs := 0
	if w.ts != nil {
		rungs = len(w.ts.rungs)
	} else {
		rungs = len(w.starting.rungs)
	}
	w.mu.Lock()
	w.inflight[au.PTS] = &inflight{fed: now, src: au.Time, left: rungs}
	w.mu.Unlock()
	w.feed(au)
}

func (w *worker) onAudio(au *media.AccessUnit) {
	if au.Codec != media.CodecOpus {
		return
	}
	// The source audio is the clock of the AAC timeline: while the
	// encoder cannot deliver (failed, waiting for its retry, restarting
	// without output yet), silence keeps the AAC rendition and the rungs'
	// audio free of holes up to the source's latest frame, so a player of
	// the source variant (whose audio is the AAC rendition) plays on. A
	// restarted encoder's frames that overlap the silence are dropped in
	// publish.
	w.mu.Lock()
	w.anchor.pts, w.anchor.t = au.PTS, au.Time
	if !w.audioSet && w.encoding() && !w.needKey && w.session != nil {
		// The first frame fed to the encoder starts the AAC timeline
		// (the encoder's own first frame is its priming, one frame
		// earlier): the source variant has audio from its first
		// segment although the encoder's process takes a while to start
		// (over a second on a loaded box). What the encoder makes of the
		// frames silence already covered is dropped.
		w.lastAudio, w.audioSet = au.PTS-aacFrame, true
		w.openAudioLocked()
	}
	if end, ok := w.silenceTarget(au.PTS + opusFrame(au)); ok {
		w.fillSilenceLocked(end)
	}
	w.mu.Unlock()
	if !w.encoding() || w.needKey {
		return
	}
	w.feed(au)
}

// opusFrame is the duration of an Opus packet in 48 kHz ticks (RFC 6716
// §3.1: the TOC byte's config and frame count code), 20 ms when it cannot
// be read.
func opusFrame(au *media.AccessUnit) int64 {
	if len(au.Payload) == 0 || len(au.Payload[0]) == 0 {
		return 960
	}
	p := au.Payload[0]
	toc := p[0]
	cfg := toc >> 3
	var per int64 // one frame, in 48 kHz ticks
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		per = []int64{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		per = []int64{480, 960}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		per = []int64{120, 240, 480, 960}[cfg&3]
	}
	switch toc & 3 {
	case 0:
		return per
	case 1, 2:
		return 2 * per
	default:
		if len(p) < 2 || p[1]&0x3f == 0 {
			return per
		}
		return per * int64(p[1]&0x3f)
	}
}

// encoding reports whether a session runs or is being launched: what
// the source sends goes to it.
func (w *worker) encoding() bool { return w.ts != nil || w.starting != nil }

// feed hands au to the session, or keeps it for the one being launched.
func (w *worker) feed(au *media.AccessUnit) {
	if st := w.starting; st != nil {
		if len(st.pending) >= pendingMax {
			st.pending, w.needKey = nil, true // start it over at a keyframe
			return
		}
		st.pending = append(st.pending, shared.FromMedia(au))
		return
	}
	w.send(shared.FromMedia(au))
}

func (w *worker) send(au *pb.AccessUnit) {
	w.lastFed = time.Now()
	select {
	case w.ts.in <- au:
	default:
		w.fail(fmt.Errorf("%w: input queue full", ErrStalled))
	}
}

func (w *worker) checkStall() {
	if w.ts != nil && !w.ts.ended {
		h := w.ts.health.Load()
		w.mu.Lock()
		if h != nil {
			w.fps, w.speed = h.GetFps(), h.GetSpeed()
			if st := h.GetState(); st != w.state {
				if st == shared.StateShedding {
					w.log.Warn("encoder behind real time: leaving out whole GOPs (the rungs get gap segments); the box lacks the CPU for this ladder",
						"plugin", w.plugin, "speed", h.GetSpeed())
				}
				w.state = st
			}
		}
		w.mu.Unlock()
		now := time.Now()
		to := w.m.cfg.StallTimeout
		last := time.Unix(0, w.ts.lastOut.Load())
		if since := time.Unix(0, w.ts.since.Load()); last.Before(since) {
			// Nothing out yet: starting a plugin and its ffmpeg on a busy
			// box takes a while (and a gated session waits for the one
			// before it), so the first output gets longer.
			last = since
			to = max(3*to, 5*time.Second)
		}
		if now.Sub(w.lastFed) < to && now.Sub(last) > to {
			w.fail(fmt.Errorf("%w: no output for %v", ErrStalled, now.Sub(last).Round(time.Millisecond)))
		}
	}
}

// fail tears the session down and schedules a restart (at a keyframe after
// the back-off), falling back to x264 when a hardware plugin keeps failing.
func (w *worker) fail(err error) {
	ran := time.Duration(0)
	if w.ts != nil {
		ran = time.Since(w.ts.started)
	}
	failed := w.plugin
	w.stopTranscode(false)
	if ran > healthyAfter {
		w.failures = 0
	}
	w.failures++
	w.m.mets.restarts.WithLabelValues(failed).Inc()
	w.mu.Lock()
	w.restarts++
	w.lastErr = err.Error()
	w.mu.Unlock()
	w.log.Warn("encoder failed", "plugin", failed, "err", err, "consecutive", w.failures)
	if failed != ModeX264 && w.failures >= w.m.cfg.FallbackAfter {
		w.m.mu.Lock()
		x, ok := w.m.plugins[ModeX264]
		w.m.mu.Unlock()
		if ok && x.Available {
			w.log.Warn("falling back to x264 mid-stream", "from", failed, "failures", w.failures)
			w.m.mets.fallbacks.WithLabelValues(failed).Inc()
			w.plugin, w.failures = ModeX264, 0
			w.mu.Lock()
			w.fellBack = failed
			w.mu.Unlock()
		}
	}
	back := w.m.cfg.RestartBackoff
	for i := 1; i < w.failures && back < w.m.cfg.RestartBackoffMax; i++ {
		back *= 2
	}
	back = min(back, w.m.cfg.RestartBackoffMax)
	if w.failures == 0 {
		back = 0
	}
	w.retryAt = time.Now().Add(back)
	w.needKey = true
}

// tsess is one plugin process with one Transcode session.
type tsess struct {
	proc    *proc
	sess    *shared.Session
	cancel  context.CancelFunc
	in      chan *pb.AccessUnit
	done    chan error
	ended   bool
	rungs   []media.Rendition
	started time.Time
	lastOut atomic.Int64
	since   atomic.Int64 // when outputs could start flowing (unix ns)
	// AAC of this session (under worker.mu): when its first frame
	// arrived (zero: none yet) and where its latest one ends (48 kHz).
	firstAAC time.Time
	aacEnd   int64
	health   atomic.Pointer[pb.Health]
	wg       sync.WaitGroup
}

// startTranscode launches a plugin process and opens a session for
// rungs off the run loop (see starting); onStarted puts it to work. When
// gate is not nil the session's outputs are held back until it closes
// (the session before it has drained), so each rendition stays in order.
func (w *worker) startTranscode(rungs []media.Rendition, gate <-chan struct{}) error {
	w.m.mu.Lock()
	ps, ok := w.m.plugins[w.plugin]
	w.m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoPlugin, w.plugin)
	}
	cfg := &pb.Config{Audio: w.audioTrack >= 0, AudioSampleRate: 48000, AudioChannels: 2, AudioBitrate: int32(w.m.cfg.AudioBitrate)}
	if w.audioTrack >= 0 {
		if t := w.session.Tracks[w.audioTrack]; t.Channels > 0 {
			cfg.AudioChannels = int32(t.Channels)
		}
	}
	for _, r := range rungs {
		cfg.Renditions = append(cfg.Renditions, &pb.Rendition{Name: r.Name, Width: int32(r.Width), Height: int32(r.Height), Bitrate: int32(r.Bitrate)})
	}
	ctx, cancel := context.WithCancel(w.m.ctx)
	st := &starting{rungs: rungs, plugin: w.plugin, cancel: cancel}
	w.starting = st
	w.launches.Add(1)
	go func() {
		defer w.launches.Done()
		ts, err := w.open(ctx, cancel, st.plugin, ps.Path, cfg, rungs, gate)
		select {
		case w.startCh <- started{st: st, ts: ts, err: err}:
		case <-ctx.Done():
			if ts != nil {
				ts.discard()
			}
		}
	}()
	return nil
}

// open launches the plugin at path and opens its session. cancel ends
// ctx, which the session runs under.
func (w *worker) open(ctx context.Context, cancel context.CancelFunc, plugin, path string, cfg *pb.Config, rungs []media.Rendition, gate <-chan struct{}) (*tsess, error) {
	p, err := w.m.launch(path)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start plugin %s: %w", plugin, err)
	}
	sess, err := p.enc.Transcode(ctx, cfg)
	if err != nil {
		cancel()
		p.kill()
		return nil, fmt.Errorf("open transcode session on %s: %w", plugin, err)
	}
	ts := &tsess{proc: p, sess: sess, cancel: cancel, in: make(chan *pb.AccessUnit, 512),
		done: make(chan error, 1), rungs: rungs, started: time.Now()}
	ts.since.Store(ts.started.UnixNano())
	ts.wg.Add(2)
	go func() { // sender
		defer ts.wg.Done()
		var failed bool
		for au := range ts.in {
			if !failed && sess.Send(au) != nil {
				failed = true // the receiver reports the stream's error
			}
		}
		if !failed {
			_ = sess.CloseSend()
		}
	}()
	go func() { // receiver
		defer ts.wg.Done()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
			}
			ts.since.Store(time.Now().UnixNano())
		}
		for {
			m, err := sess.Recv()
			if err != nil {
				if errors.Is(err, context.Canceled) || ctx.Err() != nil {
					err = context.Canceled
				} else if errors.Is(err, io.EOF) {
					err = nil
				}
				ts.done <- err
				return
			}
			if o := m.GetOutput(); o != nil {
				ts.lastOut.Store(time.Now().UnixNano())
				w.publish(ts, o)
			} else if h := m.GetHealth(); h != nil {
				ts.health.Store(h)
			}
		}
	}()
	return ts, nil
}

// onStarted puts a launched session to work, with what waited for it.
func (w *worker) onStarted(r started) {
	if r.st != w.starting {
		// The stream ended or the session was stopped while launching.
		if r.ts != nil {
			w.launches.Add(1)
			go func() {
				defer w.launches.Done()
				r.ts.discard()
			}()
		}
		return
	}
	w.starting = nil
	if r.err != nil {
		w.fail(r.err)
		return
	}
	ts := r.ts
	w.ts = ts
	w.running.Store(&runningInfo{name: r.st.plugin, pid: ts.proc.pid})
	w.m.mets.sessions.Inc()
	w.mu.Lock()
	w.rungs = ts.rungs
	w.mu.Unlock()
	w.log.Info("encoder session started", "plugin", r.st.plugin, "pid", ts.proc.pid, "renditions", names(ts.rungs), "waited", len(r.st.pending))
	for _, au := range r.st.pending {
		if w.ts == nil {
			break // failed: its input queue was full
		}
		w.send(au)
	}
}

// discard ends a session that never got to work.
func (ts *tsess) discard() {
	close(ts.in)
	ts.cancel()
	ts.proc.kill()
	ts.wg.Wait()
}

// drainMax bounds how long an ending session may take to flush.
const drainMax = 5 * time.Second

// retire ends the running session without waiting for it: it drains in
// the background (at most drainMax) while its successor starts; the
// returned channel closes when it is gone. Rungs not in keep are closed
// then.
func (w *worker) retire(keep []media.Rendition) <-chan struct{} {
	ts := w.ts
	w.ts = nil
	w.running.Store(nil)
	close(ts.in)
	gone := make(chan struct{})
	w.retiring.Add(1)
	go func() {
		defer w.retiring.Done()
		defer close(gone)
		select {
		case <-ts.done:
		case <-time.After(drainMax):
			w.log.Warn("encoder did not drain in time", "max", drainMax)
		}
		ts.cancel()
		ts.proc.kill()
		ts.wg.Wait()
		w.m.mets.sessions.Dec()
		w.mu.Lock()
		defer w.mu.Unlock()
		for n, o := range w.outs {
			if !slices.ContainsFunc(keep, func(r media.Rendition) bool { return r.Name == n }) {
				o.pub.Close() // rung dropped by a ladder override
				delete(w.outs, n)
			}
		}
	}()
	return gone
}

// stopTranscode ends the running session. Graceful: no more input, wait
// for the encoder to flush what it has (at most 3 s).
func (w *worker) stopTranscode(graceful bool) {
	if st := w.starting; st != nil {
		st.cancel() // its launch goroutine discards what it made
		w.starting = nil
	}
	ts := w.ts
	if ts == nil {
		return
	}
	w.ts = nil
	w.running.Store(nil)
	close(ts.in)
	if graceful && !ts.ended {
		select {
		case <-ts.done:
			ts.ended = true
		case <-time.After(drainMax):
		}
	}
	ts.cancel()
	ts.proc.kill()
	ts.wg.Wait()
	w.m.mets.sessions.Dec()
}

// publish hands one encoded access unit to its rendition in the hub.
// Called from a session's receive goroutine.
func (w *worker) publish(ts *tsess, o *pb.Output) {
	au := shared.ToMedia(o.GetAu())
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.session == nil {
		return
	}
	if o.GetRendition() < 0 {
		if au.Codec != media.CodecAAC {
			return
		}
		if ts.firstAAC.IsZero() {
			ts.firstAAC = time.Now()
		}
		ts.aacEnd = au.PTS + aacFrame
		if w.audioSet {
			// A restarted encoder's first frame is mostly priming and
			// overlaps what the last one (or the silence standing in
			// for it) sent: drop overlaps, snap frames that are within
			// half a frame of contiguous, fill a hole with silence
			// (the frame then snaps onto the silence's grid).
			next := w.lastAudio + aacFrame
			d := au.PTS - next
			if d > aacFrame/2 && d <= maxFill {
				w.fillSilenceLocked(au.PTS + aacFrame/2)
				next = w.lastAudio + aacFrame
				d = au.PTS - next
			}
			switch {
			case d < -aacFrame/2:
				return
			case d <= aacFrame/2:
				au.PTS, au.DTS = next, next
			}
		}
		w.lastReal = time.Now()
		w.openAudioLocked()
		w.writeAudioLocked(au)
		if !au.Time.IsZero() {
			w.m.mets.outLag.WithLabelValues("audio").Observe(time.Since(au.Time).Seconds())
		}
		return
	}
	idx := int(o.GetRendition())
	if idx >= len(ts.rungs) || au.Codec != media.CodecH264 {
		return
	}
	r := ts.rungs[idx]
	ro := w.outs[r.Name]
	if ro != nil && ro.r != r {
		ro.pub.Close() // the rung itself changed: a new rendition session
		delete(w.outs, r.Name)
		ro = nil
	}
	if ro == nil {
		if !au.Key {
			return
		}
		pub, err := w.openRendition(r, au)
		if err != nil {
			w.log.Warn("cannot publish rendition", "rendition", r.Name, "err", err)
			return
		}
		ro = &rendOut{r: r, pub: pub, lastDTS: au.DTS - 1}
		w.outs[r.Name] = ro
	}
	if au.DTS <= ro.lastDTS {
		return
	}
	ro.lastDTS = au.DTS
	if f := w.inflight[au.PTS]; f != nil {
		au.Time = f.src
		w.m.mets.latency.Observe(time.Since(f.fed).Seconds())
		w.m.mets.outLag.WithLabelValues("video").Observe(time.Since(f.src).Seconds())
		if f.left--; f.left <= 0 {
			delete(w.inflight, au.PTS)
		}
	}
	ro.pub.WriteAU(0, au)
	w.m.mets.frames.WithLabelValues(r.Name).Inc()
}

// openAudioLocked publishes the AAC-only rendition if it is not yet.
// w.mu is held.
func (w *worker) openAudioLocked() {
	if w.audioOut != nil {
		return
	}
	pub, err := w.m.hub.Publish(hub.Key{Stream: w.id, Rendition: AudioRendition}, hub.Session{
		ID: w.session.ID + "/" + AudioRendition, Tracks: []media.Track{{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2}},
	})
	if err != nil {
		w.log.Warn("cannot publish the AAC rendition", "err", err)
		return
	}
	w.audioOut = pub
}

func (w *worker) openRendition(r media.Rendition, key *media.AccessUnit) (*hub.Publisher, error) {
	vt := media.Track{Codec: media.CodecH264, Width: r.Width, Height: r.Height}
	for _, n := range key.Payload {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			vt.SPS = n
		case h264.NALUTypePPS:
			vt.PPS = n
		}
	}
	tracks := []media.Track{vt}
	if w.hasAudio {
		tracks = append(tracks, media.Track{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2})
	}
	pub, err := w.m.hub.Publish(hub.Key{Stream: w.id, Rendition: r.Name}, hub.Session{
		ID: w.session.ID + "/" + r.Name, Tracks: tracks,
	})
	if err == nil {
		w.log.Info("rendition published", "rendition", r.Name, "width", r.Width, "height", r.Height, "bitrate", r.Bitrate)
	}
	return pub, err
}

func (w *worker) status() StreamStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := StreamStatus{Stream: w.id, Renditions: slices.Clone(w.rungs), Restarts: w.restarts,
		FellBackFrom: w.fellBack, FPS: w.fps, Speed: w.speed, State: w.state, LastError: w.lastErr}
	if p := w.running.Load(); p != nil {
		st.Plugin, st.PID = p.name, p.pid
	}
	return st
}

func spsSize(nalus [][]byte) (int, int, bool) {
	for _, n := range nalus {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			var sps h264.SPS
			if sps.Unmarshal(n) == nil {
				return sps.Width(), sps.Height(), true
			}
		}
	}
	return 0, 0, false
}

func names(rs []media.Rendition) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}
