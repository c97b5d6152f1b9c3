package ffenc

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/substructs"

	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
	pb "github.com/edgenode/edgenode/plugins/proto"
	"github.com/edgenode/edgenode/plugins/shared"
)

// arrival is one output access unit as the reader handed it on.
type arrival struct {
	at   time.Time
	rend int32
	pts  time.Duration // media time
}

// paceStream is a shared.Stream fed from a channel, recording when each
// output arrives.
type paceStream struct {
	in  chan *pb.AccessUnit
	mu  sync.Mutex
	out []arrival
}

func (s *paceStream) Recv() (*pb.AccessUnit, error) {
	au, ok := <-s.in
	if !ok {
		return nil, io.EOF
	}
	return au, nil
}

func (s *paceStream) Send(m *pb.TranscodeOut) error {
	o := m.GetOutput()
	if o == nil {
		return nil
	}
	now := time.Now()
	rate := int64(90000)
	if o.GetAu().GetCodec() == pb.Codec_CODEC_AAC {
		rate = 48000
	}
	s.mu.Lock()
	s.out = append(s.out, arrival{at: now, rend: o.GetRendition(), pts: time.Duration(o.GetAu().GetPts()) * time.Second / time.Duration(rate)})
	s.mu.Unlock()
	return nil
}

// lagRun plays in at wall-clock pace through transcode and returns every
// output's arrival and the wall time of media time 0.
func lagRun(tb testing.TB, transcode func(context.Context, *pb.Config, shared.Stream) error, cfg *pb.Config,
	in []*media.AccessUnit, loops int, span time.Duration,
) ([]arrival, time.Time) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(loops)*span+time.Minute)
	defer cancel()
	s := &paceStream{in: make(chan *pb.AccessUnit, 4096)}
	start := time.Now().Add(200 * time.Millisecond)
	go func() {
		defer close(s.in)
		for l := range loops {
			shift := time.Duration(l) * span
			for _, au := range in {
				a := shared.FromMedia(au)
				rate := int64(au.Codec.ClockRate())
				off := int64(shift) * rate / int64(time.Second)
				a.Pts += off
				a.Dts += off
				at := start.Add(time.Duration(a.Dts) * time.Second / time.Duration(rate))
				if d := time.Until(at); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				s.in <- a
			}
		}
	}()
	if err := transcode(ctx, cfg, s); err != nil {
		tb.Fatal(err)
	}
	return s.out, start
}

// oneProcess is the baseline: the plugin as it was until the AAC got an
// ffmpeg of its own, every output in one process (Args), fed one MPEG-TS
// with both tracks.
func (p *Plugin) oneProcess(ctx context.Context, cfg *pb.Config, s shared.Stream) error {
	n := len(cfg.GetRenditions())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fp, err := p.start(ctx, n+1, func(outs []string) []string { return p.Args(cfg, "pipe:0", outs) })
	if err != nil {
		return err
	}
	var lastIn atomic.Int64
	var wg sync.WaitGroup
	var sendMu sync.Mutex
	for i, f := range fp.outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			_ = p.readOutput(f, i, i == n, &lastIn, func(o *pb.Output) error {
				sendMu.Lock()
				defer sendMu.Unlock()
				return s.Send(&pb.TranscodeOut{Msg: &pb.TranscodeOut_Output{Output: o}})
			})
		}()
	}
	bw := bufio.NewWriterSize(fp.stdin, 256<<10)
	video := &mpegts.Track{Codec: &codecs.H264{}}
	audio := &mpegts.Track{Codec: &codecs.Opus{Desc: &substructs.OpusAudioDescriptor{ChannelConfigCode: 2}}}
	w := &mpegts.Writer{W: bw, Tracks: []*mpegts.Track{video, audio}}
	err = w.Initialize()
	for err == nil {
		var au *pb.AccessUnit
		if au, err = s.Recv(); err != nil {
			break
		}
		switch au.GetCodec() {
		case pb.Codec_CODEC_H264:
			lastIn.Store(au.GetDts())
			err = w.WriteH264(video, au.GetPts()&tsMask, au.GetDts()&tsMask, au.GetPayload())
		case pb.Codec_CODEC_OPUS:
			err = w.WriteOpus(audio, (au.GetPts()*15/8)&tsMask, au.GetPayload())
		}
		if err == nil {
			err = bw.Flush()
		}
	}
	fp.stdin.Close()
	werr := fp.cmd.Wait()
	wg.Wait()
	if err != io.EOF {
		return err
	}
	return werr
}

// lagFigures are, in the steady state (media time ≥ from), the median
// and p90 latency from the wall time of an access unit's media time to its
// arrival at the reader, for rendition 0 and for the AAC.
type lagFigures struct {
	video, audio       time.Duration
	videoP90, audioP90 time.Duration
}

func lagOf(out []arrival, start time.Time, from time.Duration) lagFigures {
	var v, a []time.Duration
	for _, o := range out {
		if o.pts < from {
			continue
		}
		switch lat := o.at.Sub(start.Add(o.pts)); o.rend {
		case 0:
			v = append(v, lat)
		case -1:
			a = append(a, lat)
		}
	}
	q := func(d []time.Duration, f float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[int(f*float64(len(d)-1))]
	}
	return lagFigures{video: q(v, .5), audio: q(a, .5), videoP90: q(v, .9), audioP90: q(a, .9)}
}

// BenchmarkAudioLag plays a 720p30 H.264 + Opus source in real time
// through the x264 plugin with the 360p/540p/720p ladder + AAC, and
// through the baseline (one_process: every output in one ffmpeg, as the
// plugin ran before), alternately, and reports for each after the first
// 4 s:
//
//   - vlat_ms, alat_ms: the median latency of the 360p rung's and of the
//     AAC's access units at the reader (arrival minus the wall time of
//     their PTS), and their p90;
//   - alag_ms = alat_ms - vlat_ms: how far the AAC is behind the video
//     (negative: ahead);
//   - cpu_s/stream_s: ffmpeg's CPU seconds per second of stream.
//
// FFENC_LAG_LOAD=N runs N busy loops alongside, the load a publisher's
// browser and players put on a 2-core box (N=4..6 there puts the ladder
// behind real time). One iteration takes ~80 s.
func BenchmarkAudioLag(b *testing.B) {
	needFFmpeg(b)
	const secs = 10
	src := mediatest.Generate(b, mediatest.Options{Pieces: []mediatest.Piece{{Width: 1280, Height: 720, Duration: secs * time.Second}}})
	var in []*media.AccessUnit
	for _, smp := range src.Samples {
		in = append(in, smp.AU)
	}
	cfg := &pb.Config{
		Renditions: []*pb.Rendition{
			{Name: "360p", Width: 640, Height: 360, Bitrate: 600_000},
			{Name: "540p", Width: 960, Height: 540, Bitrate: 1_200_000},
			{Name: "720p", Width: 1280, Height: 720, Bitrate: 2_500_000},
		},
		Audio: true, AudioSampleRate: 48000, AudioChannels: 2, AudioBitrate: 128000,
	}
	load, _ := strconv.Atoi(os.Getenv("FFENC_LAG_LOAD"))
	// x264 is told the rungs' frame rate: ffmpeg 5.1 probes the input
	// with -probesize 32, and whether that finds the source's frame rate
	// depends on what comes first (in one process, the Opus: the H.264 PES
	// has no length and waits for the next one). Without it the encoder
	// runs at the 90 kHz tick rate and its rate control starves the rungs
	// (~80 kbit/s, q=69 in its stats, two thirds of the CPU), making the
	// two ways unequal in the very work they share.
	prof := X264()
	prof.VideoArgs = func(r *pb.Rendition) []string {
		a := X264Args(r)
		for i := range a {
			if strings.HasPrefix(a[i], "keyint=") {
				a[i] += ":fps=" + strconv.Itoa(RungFrameRate)
			}
		}
		return a
	}
	p := &Plugin{Profile: prof}
	for b.Loop() {
		for _, m := range []struct {
			name string
			run  func(context.Context, *pb.Config, shared.Stream) error
		}{{"one_process", p.oneProcess}, {"plugin", p.Transcode}} {
			stop := busy(b, load)
			c0 := childCPU()
			out, start := lagRun(b, m.run, cfg, in, 2, secs*time.Second)
			cpu := childCPU() - c0
			stop()
			f := lagOf(out, start, 4*time.Second)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(f.video), m.name+"_vlat_ms")
			b.ReportMetric(ms(f.audio), m.name+"_alat_ms")
			b.ReportMetric(ms(f.videoP90), m.name+"_vlat_p90_ms")
			b.ReportMetric(ms(f.audioP90), m.name+"_alat_p90_ms")
			b.ReportMetric(ms(f.audio-f.video), m.name+"_alag_ms")
			b.ReportMetric(cpu.Seconds()/(2*secs), m.name+"_cpu_s/stream_s")
		}
	}
}

// busy starts n CPU-bound processes; stop ends them.
func busy(tb testing.TB, n int) (stop func()) {
	var cmds []*exec.Cmd
	for range n {
		c := exec.Command("sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			tb.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	return func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
}

// childCPU is the CPU time of the waited-for children so far.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func needFFmpeg(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		tb.Skip("ffmpeg not installed (scripts/deps.sh test installs it)")
	}
}
