package ts_test

import (
	"context"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin/ts"
)

// aacFrames encodes d of a tone as AAC-LC 48 kHz stereo with ffmpeg (what
// the transcoder's renditions carry) and returns the raw frames.
func aacFrames(t *testing.T, ctx context.Context, d time.Duration) [][]byte {
	t.Helper()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-f", "lavfi", "-i",
		"sine=frequency=440:sample_rate=48000", "-ac", "2", "-t", strings.TrimSuffix(d.String(), "s"),
		"-c:a", "aac", "-b:a", "96k", "-f", "adts", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg aac: %v", err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(out); err != nil {
		t.Fatal(err)
	}
	frames := make([][]byte, len(pkts))
	for i, p := range pkts {
		frames[i] = p.AU
	}
	return frames
}

// TestAACRendition: a rendition with AAC audio (the transcoder's) gets
// it in its TS segments; the master announces mp4a.40.2; ffmpeg decodes
// both streams without an error.
func TestAACRendition(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (Debian package ffmpeg); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vs := mediatest.Generate(t, mediatest.Options{NoAudio: true, Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 4 * time.Second}}})
	frames := aacFrames(t, ctx, 4*time.Second)

	type sample struct {
		track int
		au    *media.AccessUnit
	}
	var samples []sample
	for _, s := range vs.Samples {
		samples = append(samples, sample{0, s.AU})
	}
	for i, f := range frames {
		samples = append(samples, sample{1, &media.AccessUnit{Codec: media.CodecAAC, PTS: int64(i) * 1024, DTS: int64(i) * 1024, Key: true, Payload: [][]byte{f}}})
	}
	at := func(s sample) time.Duration { return s.au.Duration(s.au.DTS) }
	sort.SliceStable(samples, func(i, j int) bool { return at(samples[i]) < at(samples[j]) })

	e := start(t, ts.Config{Grace: 300 * time.Millisecond}, hub.New(4096), nil)
	tracks := []media.Track{vs.Tracks[0], {Codec: media.CodecAAC, SampleRate: 48000, Channels: 2}}
	pub, err := e.hub.Publish(hub.Key{Stream: 4, Rendition: "360p"}, hub.Session{ID: "t", Tracks: tracks})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, s := range samples {
		au := *s.au
		au.Time = now.Add(at(s))
		pub.WriteAU(s.track, &au)
	}
	pub.Close()
	waitPlaylist(t, ctx, e.url+"/hls/4/360p/index.m3u8", func(s string) bool { return strings.Contains(s, "#EXT-X-ENDLIST") })
	_, b := get(t, e.url+"/hls/4/master.m3u8")
	if !strings.Contains(string(b), `,mp4a.40.2"`) || !strings.Contains(string(b), "360p/index.m3u8") {
		t.Errorf("master:\n%s", b)
	}
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels",
		"-of", "csv=p=0", e.url+"/hls/4/master.m3u8").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "h264") || !strings.Contains(string(out), "aac,48000,2") {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", e.url+"/hls/4/master.m3u8", "-f", "null", "-").CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("ffmpeg decode: %v\n%s", err, out)
	}
}
