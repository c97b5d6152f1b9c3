// Package ffenc implements the encoder plugin contract (plugins/shared) by
// driving Debian's ffmpeg 5.1 as subprocesses: per Transcode session one
// decodes the source video once, scales it to every rung and encodes H.264
// per rung, and one encodes the Opus to AAC-LC, so that the audio never
// waits for the video encoders (see Transcode).
//
// Media moves through pipes as MPEG-TS (written and read with mediacommon),
// so ffmpeg carries the source's own timestamps (-copyts) and every output
// frame keeps the PTS of the source frame it came from. Keyframes are forced
// exactly where the source has them (-force_key_frames source, no
// scene-cut or periodic keyframes, no B-frames), so segments of every
// rendition line up with the source's.
//
// The x264, vaapi and nvenc plugins differ only in their Profile.
package ffenc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/substructs"
	"github.com/hashicorp/go-hclog"

	pb "github.com/edgenode/edgenode/plugins/proto"
	"github.com/edgenode/edgenode/plugins/shared"
)

// Profile is what differs between the ffmpeg-driven plugins.
type Profile struct {
	// Name of the plugin ("x264", "vaapi", "nvenc").
	Name     string
	Hardware bool
	// Encoder is ffmpeg's H.264 encoder name.
	Encoder string
	// Check returns why the hardware is missing ("" when present). It runs
	// before the test encode.
	Check func() string
	// InputArgs go before -i (device setup).
	InputArgs []string
	// Scale returns the filter chain that turns a decoded picture into one
	// rung's encoder input of exactly w×h.
	Scale func(w, h int) string
	// VideoArgs returns the encoder options for one rung.
	VideoArgs func(r *pb.Rendition) []string
}

// Plugin is a shared.Encoder driving ffmpeg.
type Plugin struct {
	Profile Profile
	// FFmpeg is the ffmpeg binary ("ffmpeg" from PATH when empty).
	FFmpeg string
	Logger hclog.Logger
	// FailAfter, when > 0, makes every session fail after that many video
	// frames in (fault injection; only set by test builds).
	FailAfter int
	// StallAfter, when > 0, makes every session swallow its input after
	// that many video frames: it stays connected but produces nothing, as a
	// wedged driver does (fault injection; only set by test builds).
	StallAfter int
}

var _ shared.Encoder = (*Plugin)(nil)

func (p *Plugin) ffmpeg() string {
	if p.FFmpeg != "" {
		return p.FFmpeg
	}
	return "ffmpeg"
}

// SoftwareScale is the scale chain for encoders that take system frames:
// keep the aspect ratio, pad to the fixed rung size.
func SoftwareScale(w, h int) string {
	return fmt.Sprintf("scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p", w, h, w, h)
}

// Probe checks the hardware, then encodes a few frames for real.
func (p *Plugin) Probe(ctx context.Context) (*pb.ProbeReply, error) {
	rep := &pb.ProbeReply{Name: p.Profile.Name, Hardware: p.Profile.Hardware}
	path, err := exec.LookPath(p.ffmpeg())
	if err != nil {
		rep.Reason = "ffmpeg not found: " + err.Error()
		return rep, nil
	}
	rep.Encoder = "ffmpeg " + p.Profile.Encoder
	if p.Profile.Check != nil {
		if why := p.Profile.Check(); why != "" {
			rep.Reason = why
			return rep, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r := &pb.Rendition{Name: "probe", Width: 320, Height: 180, Bitrate: 300000}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin"}
	args = append(args, p.Profile.InputArgs...)
	args = append(args, "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
		"-t", "0.2", "-vf", p.Profile.Scale(320, 180), "-map", "0:v", "-map", "1:a")
	args = append(args, p.Profile.VideoArgs(r)...)
	args = append(args, "-c:a", "aac", "-f", "mpegts", "-")
	start := time.Now()
	cmd := exec.CommandContext(ctx, path, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		rep.Reason = fmt.Sprintf("test encode with %s failed: %v: %s", p.Profile.Encoder, err, lastLine(stderr.String()))
		return rep, nil
	}
	if out.Len() == 0 {
		rep.Reason = "test encode produced no output"
		return rep, nil
	}
	rep.TestEncodeMs = float64(time.Since(start).Microseconds()) / 1000
	rep.Available = true
	return rep, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// Args returns the ffmpeg arguments that make every output of cfg in one
// process: MPEG-TS with the video and the Opus on input, one MPEG-TS
// output per rung, then the AAC output. Exported for the bench, which runs
// the ladder's very encoders with a plain ffmpeg, file to file; the plugin
// itself runs them as two processes (see Transcode).
func (p *Plugin) Args(cfg *pb.Config, input string, outputs []string) []string {
	args := inputArgs(p.Profile.InputArgs, input)
	args = append(args, p.rungArgs(cfg, outputs)...)
	if cfg.GetAudio() {
		args = append(args, aacArgs(cfg, outputs[len(cfg.GetRenditions())])...)
	}
	return args
}

// inputArgs read MPEG-TS from input with the source's own timestamps.
func inputArgs(extra []string, input string) []string {
	// FACTS.md "Transcoding with ffmpeg 5.1": these flags keep a real-time
	// feed at ~110 ms; -fflags nobuffer drops frames, so it is not used.
	args := []string{"-hide_banner", "-loglevel", "warning", "-nostdin", "-nostats",
		"-flags", "low_delay", "-probesize", "32", "-analyzeduration", "0", "-copyts"}
	args = append(args, extra...)
	return append(args, "-f", "mpegts", "-i", input)
}

// muxArgs make an MPEG-TS output that writes every frame as it comes.
var muxArgs = []string{"-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1", "-omit_video_pes_length", "0"}

// rungArgs split the decoded video into every rung, one output each.
func (p *Plugin) rungArgs(cfg *pb.Config, outputs []string) []string {
	n := len(cfg.GetRenditions())
	if n == 0 {
		return nil
	}
	var fc strings.Builder
	fmt.Fprintf(&fc, "[0:v:0]split=%d", n)
	for i := range n {
		fmt.Fprintf(&fc, "[s%d]", i)
	}
	for i, r := range cfg.GetRenditions() {
		fmt.Fprintf(&fc, ";[s%d]%s[v%d]", i, p.Profile.Scale(int(r.GetWidth()), int(r.GetHeight())), i)
	}
	args := []string{"-filter_complex", fc.String()}
	for i, r := range cfg.GetRenditions() {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i))
		args = append(args, p.Profile.VideoArgs(r)...)
		// Keyframes exactly where the source has them (issue 6), every
		// frame kept with its own timestamp.
		args = append(args, "-force_key_frames", "source", "-fps_mode", "passthrough")
		args = append(args, muxArgs...)
		args = append(args, outputs[i])
	}
	return args
}

// aacArgs encode the input's audio to AAC-LC into output.
func aacArgs(cfg *pb.Config, output string) []string {
	br := cfg.GetAudioBitrate()
	if br <= 0 {
		br = 128000
	}
	args := []string{"-map", "0:a:0", "-c:a", "aac", "-b:a", strconv.Itoa(int(br)), "-ar", "48000", "-ac", "2"}
	args = append(args, muxArgs...)
	return append(args, output)
}

// X264Args is the libx264 rung: veryfast, zerolatency, main at the
// rung's level, no B-frames, no keyframes of its own (scenecut=0, infinite
// keyint).
//
// x264 is told the rungs' frame rate (fps=): ffmpeg reads its input with
// -probesize 32 and does not learn the source's frame rate from the first
// packets (WebRTC does not signal one, and the H.264 PES carries no
// length, so a frame is held until the next), so the encoder was opened
// at the 90 kHz tick rate and its rate control gave each frame
// 1/90000 s of the bitrate: the rungs came out at ~80-170 kbit/s whatever
// their cap (q=69 in x264's stats). The timestamps stay the source's
// (-fps_mode passthrough); fps only sets the rate control's frame budget.
func X264Args(r *pb.Rendition) []string {
	b := strconv.Itoa(int(r.GetBitrate()))
	return []string{"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main",
		"-level", rungLevel(r), "-bf", "0", "-forced-idr", "1", "-x264-params", "keyint=infinite:scenecut=0:fps=" + strconv.Itoa(RungFrameRate),
		"-b:v", b, "-maxrate", b, "-bufsize", b, "-threads", "1"}
}

// rungLevel is the -level argument for one rung (see Level).
func rungLevel(r *pb.Rendition) string {
	return LevelArg(Level(int(r.GetWidth()), int(r.GetHeight()), RungFrameRate, int(r.GetBitrate())))
}

// Transcode runs the session's encoders: one ffmpeg for the video ladder
// and one for the AAC. ffmpeg 5.1 decodes, filters and encodes every
// output of a process in its one main thread, libx264 (-threads 1)
// included, and reads its input in order: an AAC output in the ladder's
// process came out only as fast as the x264 encodes, as far behind the
// source as the ladder's backlog (the AAC within 15 ms of the 360p rung at
// the reader, both 70 ms behind their PTS on an idle 2-core box, 0.2-1 s
// median and up to 1.4 s p90 next to a browser test, 3.5 s under six busy
// loops). On its own, the AAC is at the reader ~70 ms after the wall time
// of its PTS (p90 < 80 ms) whatever the ladder does: its encoder's frame
// and 1024-sample delay (BenchmarkAudioLag).
func (p *Plugin) Transcode(ctx context.Context, cfg *pb.Config, s shared.Stream) error {
	n := len(cfg.GetRenditions())
	if n == 0 && !cfg.GetAudio() {
		return ErrNothingToEncode
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var video, audio *ffproc
	stop := func() {
		cancel()
		for _, fp := range []*ffproc{video, audio} {
			if fp != nil {
				fp.stdin.Close()
				_ = fp.cmd.Wait()
				closeAll(fp.outs)
			}
		}
	}
	if n > 0 {
		var err error
		video, err = p.start(ctx, n, func(outs []string) []string {
			return append(inputArgs(p.Profile.InputArgs, "pipe:0"), p.rungArgs(cfg, outs)...)
		})
		if err != nil {
			return err
		}
	}
	if cfg.GetAudio() {
		var err error
		audio, err = p.start(ctx, 1, func(outs []string) []string {
			return append(inputArgs(nil, "pipe:0"), aacArgs(cfg, outs[0])...)
		})
		if err != nil {
			stop()
			return err
		}
	}

	var (
		sendMu    sync.Mutex
		framesIn  atomic.Uint64
		framesOut atomic.Uint64
		lastIn    atomic.Int64 // last input video DTS (90 kHz), reference for unwrapping
		lastOut   atomic.Int64
		firstIn   atomic.Int64
		shed      atomic.Uint64 // video frames left out (maxBacklog)
		mark      = newOutMark(n)
	)
	send := func(m *pb.TranscodeOut) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return s.Send(m)
	}

	var wg sync.WaitGroup
	nout := n
	if audio != nil {
		nout++
	}
	readErr := make(chan error, nout)
	read := func(idx int, f *os.File) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			err := p.readOutput(f, idx, idx == n, &lastIn, func(o *pb.Output) error {
				if o.GetAu().GetCodec() == pb.Codec_CODEC_H264 {
					framesOut.Add(1)
					lastOut.Store(o.GetAu().GetPts())
					mark.put(idx, o.GetAu().GetDts())
				}
				return send(&pb.TranscodeOut{Msg: &pb.TranscodeOut_Output{Output: o}})
			})
			if err != nil {
				cancel()
			}
			readErr <- err
		}()
	}
	if video != nil {
		for i, f := range video.outs {
			read(i, f)
		}
	}
	if audio != nil {
		read(n, audio.outs[0])
	}

	// Health every second.
	healthDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		prevOut, prevMedia, prevShed, prev := uint64(0), int64(0), uint64(0), time.Now()
		for {
			select {
			case <-healthDone:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				out := framesOut.Load()
				media := lastOut.Load()
				dt := now.Sub(prev).Seconds()
				h := &pb.Health{FramesIn: framesIn.Load(), FramesOut: out, State: shared.StateRunning}
				if sh := shed.Load(); sh != prevShed {
					h.State, prevShed = shared.StateShedding, sh
				}
				if n > 0 {
					h.Fps = float64(out-prevOut) / float64(n) / dt
				}
				if prevMedia != 0 && media > prevMedia {
					h.Speed = float64(media-prevMedia) / 90000 / dt
				}
				prevOut, prevMedia, prev = out, media, now
				_ = send(&pb.TranscodeOut{Msg: &pb.TranscodeOut_Health{Health: h}})
			}
		}
	}()

	in := feedTo{video: video.input(), audio: audio.input()}
	inErr := p.feed(ctx, cfg, s, in, &wg, &framesIn, &lastIn, &firstIn, &shed, mark)
	if inErr != nil {
		cancel()
	}
	var werr error
	for _, fp := range []*ffproc{video, audio} {
		if fp == nil {
			continue
		}
		fp.stdin.Close()
		if err := fp.cmd.Wait(); err != nil && werr == nil {
			werr = fmt.Errorf("ffenc: ffmpeg: %w: %s", err, lastLine(fp.stderr.String()))
		}
	}
	close(healthDone)
	wg.Wait()
	close(readErr)
	if inErr != nil {
		return inErr
	}
	if werr != nil {
		return werr
	}
	for err := range readErr {
		if err != nil {
			return err
		}
	}
	return nil
}

// ffproc is one running ffmpeg: MPEG-TS in on stdin, outputs on fds 3...
type ffproc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	outs   []*os.File // read ends, in output order
	stderr tailBuffer
}

// input is fp's stdin, nil for no process.
func (fp *ffproc) input() io.Writer {
	if fp == nil {
		return nil
	}
	return fp.stdin
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// start runs ffmpeg with args(outputs) and nout output pipes.
func (p *Plugin) start(ctx context.Context, nout int, args func(outputs []string) []string) (*ffproc, error) {
	var readEnds, writeEnds []*os.File
	outputs := make([]string, nout)
	for i := range nout {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(readEnds)
			closeAll(writeEnds)
			return nil, err
		}
		readEnds, writeEnds = append(readEnds, r), append(writeEnds, w)
		outputs[i] = fmt.Sprintf("pipe:%d", 3+i)
	}
	fp := &ffproc{outs: readEnds}
	fp.cmd = exec.CommandContext(ctx, p.ffmpeg(), args(outputs)...)
	fp.cmd.ExtraFiles = writeEnds
	fp.cmd.Stderr = &fp.stderr
	stdin, err := fp.cmd.StdinPipe()
	if err != nil {
		closeAll(readEnds)
		closeAll(writeEnds)
		return nil, err
	}
	fp.stdin = stdin
	if err := fp.cmd.Start(); err != nil {
		closeAll(readEnds)
		closeAll(writeEnds)
		return nil, fmt.Errorf("ffenc: start ffmpeg: %w", err)
	}
	closeAll(writeEnds)
	return fp, nil
}

// feedTo are the ffmpeg inputs of a session; nil when it has none.
type feedTo struct{ video, audio io.Writer }

// videoQueue bounds the video frames waiting for the ladder's ffmpeg
// (10 s at 30 fps); a frame that finds it full is shed with the rest of
// its GOP (see maxBacklog), so the audio is never held back.
const videoQueue = 300

// maxBacklog is how far (90 kHz) the ladder's output may be behind its
// input when a GOP starts: while the last frame queued for the ladder's
// ffmpeg is more than this ahead of the last frame its slowest rung put
// out, a GOP that starts is left out whole. A ladder that cannot keep real time
// (ffmpeg 5.1 encodes every rung in one thread; a loaded box gives it less
// than it needs) then stays within about a second of the source, its
// rungs missing the GOPs it could not encode (the origin lists them as gap
// segments, RFC 8216bis §4.4.4.7), instead of falling further behind the
// live edge with every second (10-17 s seen). Whole GOPs: the decoder
// restarts at a keyframe and each rung segment the ladder makes is the
// source's whole segment.
//
// Measured at the output, not at ffmpeg's stdin: the pipe and ffmpeg's
// own demuxer, decoder and filter queues hold ~0.7 s more of a 720p
// source, so a bound of 1 s on what waited before stdin let the rungs run
// 1.3-3.3 s behind their source on a loaded 2-core box (TestStockPlayers'
// listed edges; hwenc output_lag_seconds p90 1.8 s with two busy loops),
// past the 1 s a DASH player is told to play behind (origin/dash
// TargetLatency): Shaka stalled 12 times in a minute on them. An idle
// ladder's output is ~0.1 s behind its input.
//
// Not from the start: ffmpeg takes a while to start, and what waited
// meanwhile comes out behind by that much, so until outputGrace after
// every rung's first frame the bound is startBacklog on what waits before
// ffmpeg's stdin, as before (at 0.5 s on the output from the first frame,
// the Chromium ramp under the race detector lost its second GOP).
const (
	maxBacklog   = 90000 / 2
	startBacklog = 90000
	outputGrace  = 2 * time.Second
)

// feed writes the session's access units into the ffmpegs' stdins as
// MPEG-TS: the video from a goroutine of its own (added to wg), so that a
// ladder behind real time never holds the audio back.
func (p *Plugin) feed(ctx context.Context, cfg *pb.Config, s shared.Stream, in feedTo, wg *sync.WaitGroup,
	framesIn *atomic.Uint64, lastIn, firstIn *atomic.Int64, shed *atomic.Uint64, out *outMark,
) error {
	var (
		vq    chan *pb.AccessUnit
		vdone chan struct{}
		vErr  error
		// written is the DTS of the last frame handed to ffmpeg, queued
		// that of the last frame queued for it, out's that of the last
		// frame a rung put out: the ladder holds what lies between queued
		// and out (between queued and written until the first output).
		// (Measured from the last frame put out or written alone, a
		// ladder that shed a GOP never caught up: nothing more came.)
		written   atomic.Int64
		queued    int64
		queuedAny bool
		shedGOP   bool // the current GOP is left out
	)
	if in.video != nil {
		vq, vdone = make(chan *pb.AccessUnit, videoQueue), make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(vdone)
			vErr = writeVideo(ctx, in.video, vq, func(dts int64) { written.Store(dts) })
		}()
	}
	var aw *tsWriter
	if in.audio != nil {
		ch := cfg.GetAudioChannels()
		if ch <= 0 {
			ch = 2
		}
		var err error
		aw, err = newTSWriter(in.audio, &codecs.Opus{Desc: &substructs.OpusAudioDescriptor{ChannelConfigCode: uint8(ch)}})
		if err != nil {
			return err
		}
	}
	started := false
	for {
		au, err := s.Recv()
		if err == io.EOF {
			if vq != nil {
				close(vq)
				<-vdone
				if vErr != nil {
					return vErr
				}
			}
			return nil
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch au.GetCodec() {
		case pb.Codec_CODEC_H264:
			if !started && !au.GetKey() {
				continue // the decoder needs an IDR first
			}
			started = true
			if len(au.GetPayload()) == 0 {
				continue
			}
			lastIn.Store(au.GetDts())
			if framesIn.Add(1) == 1 {
				firstIn.Store(au.GetPts())
			}
			if p.FailAfter > 0 && framesIn.Load() > uint64(p.FailAfter) {
				return fmt.Errorf("%w after %d frames", ErrFaultInjected, p.FailAfter)
			}
			if vq == nil || (p.StallAfter > 0 && framesIn.Load() > uint64(p.StallAfter)) {
				continue
			}
			if au.GetKey() {
				done, bound := written.Load(), int64(startBacklog)
				if o, ok := out.last(); ok && out.since() >= outputGrace {
					done, bound = o, maxBacklog
				}
				shedGOP = queuedAny && queued-done > bound
			}
			if !queuedAny {
				written.Store(au.GetDts()) // nothing waits yet
			}
			if !shedGOP {
				select {
				case vq <- au:
					queued, queuedAny = au.GetDts(), true
				case <-vdone:
					return vErr
				case <-ctx.Done():
					return ctx.Err()
				default:
					shedGOP = true // full: the rest of this GOP goes too
				}
			}
			if shedGOP {
				shed.Add(1)
			}
		case pb.Codec_CODEC_OPUS:
			// Audio before the first IDR is left out as the video is: both
			// outputs start at the same point of the source.
			if aw == nil || !started || len(au.GetPayload()) == 0 || (p.StallAfter > 0 && framesIn.Load() > uint64(p.StallAfter)) {
				continue
			}
			if err := aw.write(func(w *mpegts.Writer, t *mpegts.Track) error {
				return w.WriteOpus(t, (au.GetPts()*15/8)&tsMask, au.GetPayload())
			}); err != nil {
				return err
			}
		}
	}
}

// outMark keeps the DTS of the last frame each rung put out.
type outMark struct {
	mu    sync.Mutex
	dts   []int64
	seen  []bool
	ready time.Time // when every rung had put a frame out
}

func newOutMark(rungs int) *outMark {
	return &outMark{dts: make([]int64, rungs), seen: make([]bool, rungs)}
}

func (m *outMark) put(rung int, dts int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rung < len(m.dts) {
		m.dts[rung], m.seen[rung] = dts, true
		if m.ready.IsZero() && !slices.Contains(m.seen, false) {
			m.ready = time.Now()
		}
	}
}

// since is how long every rung has been putting frames out (0 before).
func (m *outMark) since() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready.IsZero() {
		return 0
	}
	return time.Since(m.ready)
}

// last is the slowest rung's last output DTS, false until every rung put
// one out.
func (m *outMark) last() (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var min int64
	for i, d := range m.dts {
		if !m.seen[i] {
			return 0, false
		}
		if i == 0 || d < min {
			min = d
		}
	}
	return min, len(m.dts) > 0
}

// writeVideo writes the H.264 access units from q into w until q closes,
// calling wrote with the DTS of each after it is written.
func writeVideo(ctx context.Context, w io.Writer, q <-chan *pb.AccessUnit, wrote func(dts int64)) error {
	vw, err := newTSWriter(w, &codecs.H264{})
	if err != nil {
		return err
	}
	for {
		var au *pb.AccessUnit
		select {
		case <-ctx.Done():
			return ctx.Err()
		case a, ok := <-q:
			if !ok {
				return nil
			}
			au = a
		}
		if err := vw.write(func(w *mpegts.Writer, t *mpegts.Track) error {
			return w.WriteH264(t, au.GetPts()&tsMask, au.GetDts()&tsMask, au.GetPayload())
		}); err != nil {
			return err
		}
		wrote(au.GetDts())
	}
}

// tsWriter is a one-track MPEG-TS stream into an ffmpeg's stdin, flushed
// after every access unit.
type tsWriter struct {
	bw    *bufio.Writer
	w     *mpegts.Writer
	track *mpegts.Track
}

func newTSWriter(w io.Writer, c mpegts.Codec) (*tsWriter, error) {
	t := &tsWriter{bw: bufio.NewWriterSize(w, 256<<10), track: &mpegts.Track{Codec: c}}
	t.w = &mpegts.Writer{W: t.bw, Tracks: []*mpegts.Track{t.track}}
	if err := t.w.Initialize(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *tsWriter) write(f func(*mpegts.Writer, *mpegts.Track) error) error {
	err := f(t.w, t.track)
	if err == nil {
		err = t.bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("ffenc: write to ffmpeg: %w", err)
	}
	return nil
}

const tsMask = 1<<33 - 1

// unwrap maps a 33-bit MPEG-TS timestamp to the int64 nearest ref.
func unwrap(ts, ref int64) int64 {
	d := (ts - ref) & tsMask
	if d >= 1<<32 {
		d -= 1 << 33
	}
	return ref + d
}

// readOutput reads one ffmpeg output and hands each access unit on.
func (p *Plugin) readOutput(f io.Reader, idx int, isAudio bool, lastIn *atomic.Int64, emit func(*pb.Output) error) error {
	r := &mpegts.Reader{R: bufio.NewReaderSize(f, 64<<10)}
	if err := r.Initialize(); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil // ffmpeg ended before writing anything
		}
		return fmt.Errorf("ffenc: output %d: %w", idx, err)
	}
	r.OnDecodeError(func(error) {})
	for _, t := range r.Tracks() {
		switch t.Codec.(type) {
		case *codecs.H264:
			if isAudio {
				continue
			}
			r.OnDataH264(t, func(pts, dts int64, au [][]byte) error {
				ref := lastIn.Load()
				return emit(&pb.Output{Rendition: int32(idx), Au: &pb.AccessUnit{
					Codec: pb.Codec_CODEC_H264, Pts: unwrap(pts, ref), Dts: unwrap(dts, ref),
					Key: h264.IsRandomAccess(au), Payload: au,
				}})
			})
		case *codecs.MPEG4Audio:
			if !isAudio {
				continue
			}
			r.OnDataMPEG4Audio(t, func(pts int64, aus [][]byte) error {
				base := unwrap(pts, lastIn.Load())
				// 90 kHz → 48 kHz, rounded.
				base48 := (base*16 + 15) / 30
				for i, a := range aus {
					err := emit(&pb.Output{Rendition: -1, Au: &pb.AccessUnit{
						Codec: pb.Codec_CODEC_AAC, Pts: base48 + int64(i)*1024, Dts: base48 + int64(i)*1024,
						Key: true, Payload: [][]byte{a},
					}})
					if err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("ffenc: output %d: %w", idx, err)
		}
	}
}

// tailBuffer keeps the last 4 KiB of ffmpeg's stderr.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
