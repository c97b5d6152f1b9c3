// Package mediatest makes real media for tests: ffmpeg encodes a test
// pattern and a tone (H.264 + Opus, the codecs WHIP publishers send), the
// result is demuxed into media.AccessUnits on the node's timelines, and Play
// replays them into a hub.Publisher, in real time or as fast as possible.
//
// Generate skips the test when ffmpeg is not installed; `make test` installs
// it, so in CI these tests always run.
package mediatest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

// Piece is one stretch of the generated stream at one picture size.
type Piece struct {
	Width, Height int
	// Duration of the piece (default 2 s).
	Duration time.Duration
}

// Options select what Generate makes. The zero value gives 2 s of 640×360
// at 30 fps with a key frame every second and Opus stereo audio.
type Options struct {
	// Pieces are encoded one after another on one timeline; each starts
	// with a new SPS and IDR, as a browser's resolution ramp does. Default:
	// one piece of 640×360 for 2 s.
	Pieces []Piece
	// FPS of the video (default 30).
	FPS int
	// GOP is the key-frame interval (default 1 s).
	GOP time.Duration
	// Profile is the x264 profile: baseline (default) or main.
	Profile string
	// BFrames sets the number of B-frames (default 0; needs Profile main).
	BFrames int
	// NoAudio leaves the Opus track out.
	NoAudio bool
}

func (o Options) withDefaults() Options {
	if len(o.Pieces) == 0 {
		o.Pieces = []Piece{{}}
	}
	for i := range o.Pieces {
		if o.Pieces[i].Width == 0 {
			o.Pieces[i].Width, o.Pieces[i].Height = 640, 360
		}
		if o.Pieces[i].Duration == 0 {
			o.Pieces[i].Duration = 2 * time.Second
		}
	}
	if o.FPS == 0 {
		o.FPS = 30
	}
	if o.GOP == 0 {
		o.GOP = time.Second
	}
	if o.Profile == "" {
		o.Profile = "baseline"
	}
	return o
}

// Sample is one access unit of one track.
type Sample struct {
	// Track indexes Stream.Tracks.
	Track int
	AU    *media.AccessUnit
}

// Stream is a generated stream: its tracks (video first, then audio) and
// its samples in decoding order, audio and video interleaved by time.
type Stream struct {
	Tracks  []media.Track
	Samples []Sample
	// Duration is the length of the whole stream.
	Duration time.Duration
}

// Video returns the video samples only.
func (s *Stream) Video() []*media.AccessUnit {
	var out []*media.AccessUnit
	for _, smp := range s.Samples {
		if smp.AU.Codec.IsVideo() {
			out = append(out, smp.AU)
		}
	}
	return out
}

var cache sync.Map // option key → *Stream

// Generate encodes the stream described by opts with ffmpeg, or returns the
// one already made in this process for the same options. The returned
// Stream is shared: do not modify it. The AccessUnits' Time fields are zero;
// Play stamps them.
func Generate(tb testing.TB, opts Options) *Stream {
	tb.Helper()
	opts = opts.withDefaults()
	key := fmt.Sprintf("%+v", opts)
	if s, ok := cache.Load(key); ok {
		return s.(*Stream)
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		tb.Skip("ffmpeg not installed (make test installs it)")
	}
	dir := filepath.Join(os.TempDir(), "edgenode-mediatest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256([]byte(key))
	base := filepath.Join(dir, hex.EncodeToString(sum[:8]))

	s := &Stream{}
	var offset time.Duration
	for i, p := range opts.Pieces {
		file := base + "-" + strconv.Itoa(i) + ".ts"
		if _, err := os.Stat(file); err != nil {
			if err := encode(file, p, opts); err != nil {
				tb.Fatalf("mediatest: %v", err)
			}
		}
		data, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.appendTS(data, offset, p, opts); err != nil {
			tb.Fatalf("mediatest: piece %d: %v", i, err)
		}
		offset += p.Duration
	}
	s.Duration = offset
	sort.SliceStable(s.Samples, func(a, b int) bool {
		return wall(s.Samples[a].AU) < wall(s.Samples[b].AU)
	})
	cache.Store(key, s)
	return s
}

func wall(au *media.AccessUnit) time.Duration { return au.Duration(au.DTS) }

func encode(file string, p Piece, o Options) error {
	gop := int(o.GOP.Seconds() * float64(o.FPS))
	if gop < 1 {
		gop = 1
	}
	secs := strconv.FormatFloat(p.Duration.Seconds(), 'f', 3, 64)
	args := []string{"-hide_banner", "-v", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", p.Width, p.Height, o.FPS)}
	if !o.NoAudio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	args = append(args, "-t", secs,
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", o.Profile, "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0",
		"-bf", strconv.Itoa(o.BFrames), "-b:v", "1M")
	if o.BFrames == 0 {
		args = append(args, "-tune", "zerolatency")
	}
	if !o.NoAudio {
		args = append(args, "-c:a", "libopus", "-b:a", "64k", "-ac", "2", "-frame_duration", "20")
	}
	args = append(args, "-f", "mpegts", file+".tmp")
	cmd := exec.Command("ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg: %v: %s", err, stderr.String())
	}
	return os.Rename(file+".tmp", file)
}

// appendTS demuxes one piece and appends its samples, shifted by offset.
// MPEG-TS timestamps start near 1.4 s; each piece is rebased to 0.
func (s *Stream) appendTS(data []byte, offset time.Duration, p Piece, o Options) error {
	r := &mpegts.Reader{R: bytes.NewReader(data)}
	if err := r.Initialize(); err != nil {
		return err
	}
	var firstDTS *int64 // 90 kHz, over both tracks
	base := func(ts int64) int64 {
		if firstDTS == nil {
			v := ts
			firstDTS = &v
		}
		return ts - *firstDTS
	}
	offVideo := int64(offset) * 90000 / int64(time.Second)
	offAudio := int64(offset) * 48000 / int64(time.Second)
	var errs []error
	r.OnDecodeError(func(err error) { errs = append(errs, err) })

	for _, tr := range r.Tracks() {
		switch tr.Codec.(type) {
		case *mpegts.CodecH264:
			if len(s.Tracks) == 0 || s.Tracks[0].Codec != media.CodecH264 {
				s.Tracks = append([]media.Track{{Codec: media.CodecH264}}, s.Tracks...)
			}
			r.OnDataH264(tr, func(pts, dts int64, au [][]byte) error {
				a := &media.AccessUnit{Codec: media.CodecH264, Key: h264.IsRandomAccess(au)}
				a.DTS = base(dts) + offVideo
				a.PTS = a.DTS + (pts - dts)
				for _, n := range au {
					if len(n) == 0 {
						continue
					}
					switch h264.NALUType(n[0] & 0x1f) {
					case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSEI:
						continue
					case h264.NALUTypeSPS:
						if s.Tracks[0].SPS == nil { // the track describes the first piece
							s.Tracks[0].SPS = n
							var sps h264.SPS
							if err := sps.Unmarshal(n); err == nil {
								s.Tracks[0].Width, s.Tracks[0].Height = sps.Width(), sps.Height()
							}
						}
					case h264.NALUTypePPS:
						if s.Tracks[0].PPS == nil {
							s.Tracks[0].PPS = n
						}
					}
					a.Payload = append(a.Payload, n)
				}
				s.Samples = append(s.Samples, Sample{Track: 0, AU: a})
				return nil
			})
		case *mpegts.CodecOpus:
			if o.NoAudio {
				continue
			}
			if len(s.Tracks) < 2 {
				s.Tracks = append(s.Tracks, media.Track{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2})
			}
			r.OnDataOpus(tr, func(pts int64, packets [][]byte) error {
				t := base(pts)*48000/90000 + offAudio
				for _, pkt := range packets {
					a := &media.AccessUnit{Codec: media.CodecOpus, PTS: t, DTS: t, Key: true, Payload: [][]byte{pkt}}
					s.Samples = append(s.Samples, Sample{Track: 1, AU: a})
					t += 960 // 20 ms frames (encode sets -frame_duration 20)
				}
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			break // io.EOF or a truncated tail
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("demux: %v", errs[0])
	}
	return nil
}

// PlayOptions tune Play.
type PlayOptions struct {
	// Realtime paces samples by their timestamps; otherwise they are
	// written as fast as possible.
	Realtime bool
	// Loops repeats the stream (default 1), continuing the timeline.
	Loops int
	// Start is the wall-clock time of timestamp 0 (default: now).
	Start time.Time
	// Skip leaves out what comes before this media time (video from the
	// first key frame at or after it), as an encoder that starts late
	// on the same timeline does.
	Skip time.Duration
}

// Play writes the stream's samples into pub, stamping each AccessUnit's
// Time. Every written AccessUnit is a fresh copy (the hub's subscribers may
// keep them). It returns when done or when ctx ends.
func (s *Stream) Play(ctx context.Context, pub *hub.Publisher, o PlayOptions) error {
	if o.Loops <= 0 {
		o.Loops = 1
	}
	start := o.Start
	if start.IsZero() {
		start = time.Now()
	}
	started := map[int]bool{}
	for loop := 0; loop < o.Loops; loop++ {
		shift := time.Duration(loop) * s.Duration
		for _, smp := range s.Samples {
			if o.Skip > 0 && !started[smp.Track] {
				if shift+smp.AU.Duration(smp.AU.DTS) < o.Skip || (smp.AU.Codec.IsVideo() && !smp.AU.Key) {
					continue
				}
				started[smp.Track] = true
			}
			au := *smp.AU
			au.PTS += int64(shift) * int64(au.Codec.ClockRate()) / int64(time.Second)
			au.DTS += int64(shift) * int64(au.Codec.ClockRate()) / int64(time.Second)
			au.Time = start.Add(au.Duration(au.PTS))
			if o.Realtime {
				at := start.Add(au.Duration(au.DTS))
				if d := time.Until(at); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-ctx.Done():
						t.Stop()
						return ctx.Err()
					case <-t.C:
					}
				}
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			pub.WriteAU(smp.Track, &au)
		}
	}
	return nil
}

// AnnexB writes video access units as an H.264 Annex-B byte stream, for
// feeding ffmpeg/ffprobe.
func AnnexB(aus []*media.AccessUnit) ([]byte, error) {
	var out []byte
	for _, au := range aus {
		b, err := h264.AnnexB(au.Payload).Marshal()
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}
