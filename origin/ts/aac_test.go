package ts_test

import (
	"context"
	"os/exec"
	"sort"
	"strings"
	"sync"
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

// TestEarlyPlayerGetsAudio: with the transcoder on, the source variant's
// audio in TS is the AAC rendition (an EXT-X-MEDIA group), whose first
// 2 s segment completes after the source's when the encoder's audio lags
// (as the plugin's does). A player that asks for master.m3u8 the moment
// the publisher starts must get a variant whose video and audio are both
// playable: ffprobe started then finds H.264 and AAC.
func TestEarlyPlayerGetsAudio(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed (Debian package ffmpeg); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const lag = 1200 * time.Millisecond // the AAC rendition starts this much after the source
	src := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 10 * time.Second}}})
	frames := aacFrames(t, ctx, 10*time.Second)
	e := start(t, ts.Config{Grace: 300 * time.Millisecond}, hub.New(0), nil)

	t0 := time.Now()
	src.PlayLive(t, ctx, e.hub, hub.Key{Stream: 5, Rendition: hub.Source}, mediatest.PlayOptions{Start: t0})
	pctx, pcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { pcancel(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-pctx.Done():
			return
		case <-time.After(lag):
		}
		apub, err := e.hub.Publish(hub.Key{Stream: 5, Rendition: "aac"}, hub.Session{ID: "s/aac",
			Tracks: []media.Track{{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2}}})
		if err != nil {
			t.Error(err)
			return
		}
		defer apub.Close()
		for i, f := range frames {
			d := time.Duration(i) * 1024 * time.Second / 48000
			if w := time.Until(t0.Add(lag + d)); w > 0 {
				select {
				case <-pctx.Done():
					return
				case <-time.After(w):
				}
			}
			apub.WriteAU(0, &media.AccessUnit{Codec: media.CodecAAC, PTS: int64(i) * 1024, DTS: int64(i) * 1024,
				Key: true, Payload: [][]byte{f}, Time: t0.Add(d)})
		}
	}()

	probe := make(chan []byte, 1)
	go func() {
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
			"-of", "csv=p=0", e.url+"/hls/5/master.m3u8").CombinedOutput()
		if err != nil {
			out = append(out, []byte("\nffprobe: "+err.Error())...)
		}
		probe <- out
	}()
	res, b := get(t, e.url+"/hls/5/master.m3u8")
	master := string(b)
	waited := time.Since(t0)
	if res.StatusCode != 200 {
		t.Fatalf("early master: %d %s", res.StatusCode, b)
	}
	// Whatever it lists must be playable now: the audio group's first
	// segment exists (a segment request does not wait for one).
	sres, _ := get(t, e.url+"/hls/5/aac/seg0.ts")
	t.Logf("master after %v:\n%s", waited.Round(time.Millisecond), master)
	if !strings.Contains(master, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac"`) || !strings.Contains(master, `AUDIO="aac"`+"\nsource/index.m3u8") {
		t.Errorf("early master lists the source without its AAC audio group:\n%s", master)
	}
	if sres.StatusCode != 200 {
		t.Errorf("master listed before the audio group had a segment: aac/seg0.ts %d", sres.StatusCode)
	}
	out := string(<-probe)
	if !strings.Contains(out, "h264") || !strings.Contains(out, "aac") {
		t.Errorf("ffprobe started with the publisher: want h264 and aac, got:\n%s", out)
	}
}

// TestMasterStatus: an unknown stream gets its 404 at once; a known stream
// that is not live, or one with nothing playable, gets one after
// BlockTimeout, saying what it waits for; all cached 1 s, as LL-HLS's
// multivariant playlist.
func TestMasterStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const block = 3 * time.Second
	src := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 3 * time.Second}}})
	frames := aacFrames(t, ctx, 3*time.Second)
	e := start(t, ts.Config{Grace: 300 * time.Millisecond, BlockTimeout: block}, hub.New(4096), nil)

	check := func(id, want string, wait bool) {
		t.Helper()
		t0 := time.Now()
		res, b := get(t, e.url+"/hls/"+id+"/master.m3u8")
		took := time.Since(t0)
		if res.StatusCode != 404 || res.Header.Get("Cache-Control") != "max-age=1" ||
			res.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %q %q, want 404 saying %q", id, res.StatusCode, res.Header.Get("Cache-Control"), b, want)
		}
		if !wait && took >= block {
			t.Errorf("%s: 404 after %v, want it at once", id, took)
		}
		if wait && took < block {
			t.Errorf("%s: 404 after %v, want it after BlockTimeout %v", id, took, block)
		}
	}
	check("6", "stream 6", false)
	check("x", `stream "x"`, false)
	// A stream the node knows but that is not live is held, as LL-HLS's.
	e.srv.SetKnown(func(id uint64) bool { return id == 6 })
	check("6", "stream 6 is not live", true)
	check("7", "stream 7", false)

	spub, err := e.hub.Publish(hub.Key{Stream: 6, Rendition: hub.Source}, hub.Session{ID: "s", Tracks: src.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	defer spub.Close()
	apub, err := e.hub.Publish(hub.Key{Stream: 6, Rendition: "aac"}, hub.Session{ID: "s/aac",
		Tracks: []media.Track{{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	defer apub.Close()
	check("6", "no rendition has a complete segment yet", true)

	// The source has segments, its audio has none: still not playable.
	if err := src.Play(ctx, spub, mediatest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPlaylist(t, ctx, e.url+"/hls/6/source/index.m3u8", func(s string) bool { return strings.Contains(s, "seg0.ts") })
	check("6", "the audio rendition has no complete segment yet", true)

	now := time.Now()
	for i, f := range frames {
		apub.WriteAU(0, &media.AccessUnit{Codec: media.CodecAAC, PTS: int64(i) * 1024, DTS: int64(i) * 1024,
			Key: true, Payload: [][]byte{f}, Time: now.Add(time.Duration(i) * 1024 * time.Second / 48000)})
	}
	res, b := get(t, e.url+"/hls/6/master.m3u8")
	if res.StatusCode != 200 || !strings.Contains(string(b), `AUDIO="aac"`+"\nsource/index.m3u8") {
		t.Errorf("master once the audio has a segment: %d\n%s", res.StatusCode, b)
	}
}
