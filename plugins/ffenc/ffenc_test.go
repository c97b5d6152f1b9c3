package ffenc_test

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/hashicorp/go-plugin"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/plugins/ffenc"
	pb "github.com/edgenode/edgenode/plugins/proto"
	"github.com/edgenode/edgenode/plugins/shared"
)

func needFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/deps.sh test installs it)")
	}
}

// source is secs seconds of H.264 baseline (IDR every second) + Opus from
// mediatest; with change the second half is 320x180 instead of 640x360: a
// new SPS at an IDR, as a publisher's resolution steps are.
func source(t testing.TB, secs int, change bool) []*media.AccessUnit {
	t.Helper()
	d := time.Duration(secs) * time.Second
	pieces := []mediatest.Piece{{Width: 640, Height: 360, Duration: d}}
	if change {
		pieces = []mediatest.Piece{{Width: 640, Height: 360, Duration: d / 2}, {Width: 320, Height: 180, Duration: d - d/2}}
	}
	s := mediatest.Generate(t, mediatest.Options{Pieces: pieces})
	aus := make([]*media.AccessUnit, len(s.Samples))
	for i, smp := range s.Samples {
		aus[i] = smp.AU
	}
	return aus
}

func inProcess(t *testing.T, p shared.Encoder) *shared.Client {
	t.Helper()
	c, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{shared.PluginName: &shared.EncoderPlugin{Impl: p}})
	t.Cleanup(func() { c.Close() })
	raw, err := c.Dispense(shared.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*shared.Client)
}

func TestProbeOnThisMachine(t *testing.T) {
	needFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		prof ffenc.Profile
		want string // substring of the reason when unavailable here
		have func() bool
	}{
		{ffenc.X264(), "", func() bool { return true }},
		{ffenc.VAAPI(), "/dev/dri", func() bool { return ffenc.VAAPIDevice() != "" }},
		{ffenc.NVENC(), "nvidia", func() bool { _, err := exec.LookPath("nvidia-smi"); return err == nil }},
	} {
		c := inProcess(t, &ffenc.Plugin{Profile: tc.prof})
		rep, err := c.Probe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: available=%v reason=%q encoder=%q test=%.0fms", rep.GetName(), rep.GetAvailable(), rep.GetReason(), rep.GetEncoder(), rep.GetTestEncodeMs())
		if rep.GetName() != tc.prof.Name {
			t.Errorf("name %q, want %q", rep.GetName(), tc.prof.Name)
		}
		if tc.want == "" {
			if !rep.GetAvailable() {
				t.Errorf("%s unavailable: %s", tc.prof.Name, rep.GetReason())
			}
			continue
		}
		if tc.have() {
			t.Logf("%s hardware present here; not checking the unavailability reason", tc.prof.Name)
			continue
		}
		if rep.GetAvailable() || !strings.Contains(strings.ToLower(rep.GetReason()), tc.want) {
			t.Errorf("%s: available=%v reason %q, want unavailable mentioning %q", tc.prof.Name, rep.GetAvailable(), rep.GetReason(), tc.want)
		}
	}
}

type result struct {
	video [][]*pb.AccessUnit // per rendition
	audio []*pb.AccessUnit
	err   error
}

// run plays in through a session in real time, as a publisher does (a
// plugin fed faster than real time sheds GOPs: it takes its input for a
// live one), and collects the outputs.
func run(ctx context.Context, c *shared.Client, cfg *pb.Config, in []*media.AccessUnit) result {
	s, err := c.Transcode(ctx, cfg)
	if err != nil {
		return result{err: err}
	}
	errc := make(chan error, 1)
	go func() {
		start := time.Now()
		for _, au := range in {
			time.Sleep(time.Until(start.Add(time.Duration(au.DTS) * time.Second / time.Duration(au.Codec.ClockRate()))))
			if err := s.Send(shared.FromMedia(au)); err != nil {
				errc <- err
				return
			}
		}
		errc <- s.CloseSend()
	}()
	res := result{video: make([][]*pb.AccessUnit, len(cfg.GetRenditions()))}
	for {
		m, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			res.err = err
			break
		}
		if o := m.GetOutput(); o != nil {
			if o.GetRendition() < 0 {
				res.audio = append(res.audio, o.GetAu())
			} else {
				res.video[o.GetRendition()] = append(res.video[o.GetRendition()], o.GetAu())
			}
		}
	}
	if err := <-errc; err != nil && res.err == nil {
		res.err = err
	}
	return res
}

func ladder() *pb.Config {
	return &pb.Config{
		Renditions: []*pb.Rendition{
			{Name: "360p", Width: 640, Height: 360, Bitrate: 600000},
			{Name: "180p", Width: 320, Height: 180, Bitrate: 200000},
		},
		Audio: true, AudioSampleRate: 48000, AudioChannels: 2,
	}
}

// TestTranscodeAlignsWithSource: every rendition has exactly the source's
// frames, keyframes at exactly the source's keyframe PTS, a fixed size
// through the source's resolution change, and AAC audio.
func TestTranscodeAlignsWithSource(t *testing.T) {
	needFFmpeg(t)
	in := source(t, 4, true)
	var srcPTS, srcKeys []int64
	for _, au := range in {
		if au.Codec == media.CodecH264 {
			srcPTS = append(srcPTS, au.PTS)
			if au.Key {
				srcKeys = append(srcKeys, au.PTS)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := inProcess(t, &ffenc.Plugin{Profile: ffenc.X264()})
	cfg := ladder()
	// H.264 Table A-1 at 30 fps: 640x360 is 920 MBs, 27600 MB/s (> 2.2's
	// 20250) → 3.0; 320x180 is 240 MBs, 7200 MB/s, 200 kbit/s → 1.3.
	wantLevel := map[string]int{"360p": 30, "180p": 13}
	res := run(ctx, c, cfg, in)
	if res.err != nil {
		t.Fatal(res.err)
	}
	for i, r := range cfg.GetRenditions() {
		var pts, keys []int64
		for _, au := range res.video[i] {
			pts = append(pts, au.GetPts())
			if au.GetKey() {
				keys = append(keys, au.GetPts())
				var sps h264.SPS
				if err := sps.Unmarshal(au.GetPayload()[0]); err != nil {
					t.Fatalf("%s: keyframe does not start with an SPS: %v", r.GetName(), err)
				}
				if sps.Width() != int(r.GetWidth()) || sps.Height() != int(r.GetHeight()) {
					t.Errorf("%s: keyframe at %d is %dx%d", r.GetName(), au.GetPts(), sps.Width(), sps.Height())
				}
				if want := wantLevel[r.GetName()]; int(sps.LevelIdc) != want || sps.ProfileIdc != 77 {
					t.Errorf("%s: SPS profile_idc %d level_idc %d, want Main (77) at %d", r.GetName(), sps.ProfileIdc, sps.LevelIdc, want)
				}
			}
			if au.GetDts() != au.GetPts() {
				t.Fatalf("%s: PTS %d != DTS %d (B-frames?)", r.GetName(), au.GetPts(), au.GetDts())
			}
		}
		if !slices.Equal(pts, srcPTS) {
			t.Errorf("%s: %d frames, source %d; first %v vs %v", r.GetName(), len(pts), len(srcPTS), head(pts), head(srcPTS))
		}
		if !slices.Equal(keys, srcKeys) {
			t.Errorf("%s: keyframes %v, source %v", r.GetName(), keys, srcKeys)
		}
	}
	if len(res.audio) < 4*48000/1024-5 {
		t.Fatalf("only %d AAC frames for 4 s", len(res.audio))
	}
	first, last := res.audio[0].GetPts(), res.audio[len(res.audio)-1].GetPts()
	if d := first - srcPTS[0]*48000/90000; d < -4800 || d > 4800 {
		t.Errorf("AAC starts %d ticks away from the source", d)
	}
	if last-first < 3*48000 {
		t.Errorf("AAC covers only %d ticks", last-first)
	}
}

// TestLevel is the rung level from ITU-T H.264 Table A-1.
func TestLevel(t *testing.T) {
	for _, c := range []struct {
		w, h    int
		fps     float64
		bitrate int
		want    int
		arg     string
	}{
		{1280, 720, 30, 2_500_000, 31, "3.1"}, // 3600 MBs = 3.1's MaxFS, 108000 MB/s = its MaxMBPS
		{1280, 720, 60, 2_500_000, 32, "3.2"},
		{854, 480, 30, 1_200_000, 31, "3.1"}, // 1620 MBs but 48600 MB/s > 3.0's 40500
		{720, 480, 30, 1_200_000, 30, "3"},   // 1350 MBs, 40500 MB/s: exactly 3.0
		{640, 360, 30, 600_000, 30, "3"},
		{320, 180, 30, 200_000, 13, "1.3"},
		{320, 180, 30, 1_000_000, 20, "2"}, // 1.3 allows only 768 kbit/s
		{176, 144, 15, 64_000, 10, "1"},
		{1920, 1080, 30, 6_000_000, 40, "4"},
		{1920, 1080, 60, 6_000_000, 42, "4.2"},
		{3840, 2160, 30, 20_000_000, 51, "5.1"},
		{1280, 720, 30, 30_000_000, 41, "4.1"}, // bit rate above 4.0's 20 Mbit/s
		{4000, 16, 1, 10_000, 40, "4"},         // 250 MBs wide: √(8·MaxFS) ≥ 250 first at 4.0 (3.2 allows 202)
	} {
		got := ffenc.Level(c.w, c.h, c.fps, c.bitrate)
		if got != c.want || ffenc.LevelArg(got) != c.arg {
			t.Errorf("Level(%dx%d@%v, %d) = %d (%q), want %d (%q)", c.w, c.h, c.fps, c.bitrate, got, ffenc.LevelArg(got), c.want, c.arg)
		}
	}
}

func head(s []int64) []int64 { return s[:min(5, len(s))] }

// TestAudioDoesNotWaitForTheLadder: a ladder far behind real time (each
// rung's filter chain held to 1/20 of real time by ffmpeg's realtime
// filter, as an overloaded box holds x264) does not hold the AAC back:
// all of it is out while most video frames are still to come. In one
// ffmpeg process the AAC came out only as fast as the video (ffmpeg 5.1
// runs every output's filters and encoder in its one main thread).
func TestAudioDoesNotWaitForTheLadder(t *testing.T) {
	needFFmpeg(t)
	in := source(t, 2, false)
	var frames int
	var audioEnd int64 // 48 kHz
	for _, au := range in {
		switch au.Codec {
		case media.CodecH264:
			frames++
		case media.CodecOpus:
			audioEnd = au.PTS + 960
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	slow := ffenc.X264()
	slow.Scale = func(w, h int) string { return ffenc.SoftwareScale(w, h) + ",realtime=speed=0.05" }
	c := inProcess(t, &ffenc.Plugin{Profile: slow})
	cfg := ladder()
	s, err := c.Transcode(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for _, au := range in {
			if s.Send(shared.FromMedia(au)) != nil {
				return
			}
		}
		_ = s.CloseSend()
	}()
	// The AAC is complete but for its last frames: the encoder's one
	// frame of delay and the partial frame at the end wait for the end of
	// its input, which comes after the video's.
	var video, aac int
	var aacEnd int64
	for aacEnd < audioEnd-4*1024 {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("after %d video frames and %d AAC frames (to %d of %d): %v", video, aac, aacEnd, audioEnd, err)
		}
		if o := m.GetOutput(); o != nil {
			if o.GetRendition() < 0 {
				aac++
				aacEnd = o.GetAu().GetPts() + 1024
			} else {
				video++
			}
		}
	}
	t.Logf("all %d AAC frames out with %d of %d video frames", aac, video, frames*len(cfg.GetRenditions()))
	if video >= frames*len(cfg.GetRenditions())/2 {
		t.Errorf("the AAC was complete only after %d of %d video frames", video, frames*len(cfg.GetRenditions()))
	}
	cancel()
	for {
		if _, err := s.Recv(); err != nil {
			break
		}
	}
}

func TestFaultInjectionFails(t *testing.T) {
	needFFmpeg(t)
	in := source(t, 2, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := inProcess(t, &ffenc.Plugin{Profile: ffenc.X264(), FailAfter: 10})
	res := run(ctx, c, ladder(), in)
	if res.err == nil || !strings.Contains(res.err.Error(), "fault injected") {
		t.Fatalf("err = %v, want the injected fault", res.err)
	}
	_ = errors.Is
}

// TestMain checks for leaked goroutines once every test's cleanup ran (the
// in-process gRPC servers stop in t.Cleanup).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
