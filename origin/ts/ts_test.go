package ts_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/internal/store/storetest"
	"github.com/edgenode/edgenode/origin/player"
	"github.com/edgenode/edgenode/origin/ts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	hub *hub.Hub
	srv *ts.Server
	url string
}

// start runs the TS server on h, the player page and /time on loopback.
func start(t *testing.T, cfg ts.Config, h *hub.Hub, st ts.State) *env {
	t.Helper()
	s, err := ts.New(cfg, h, st, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	pl, err := player.New(player.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.RegisterRoutes(mux)
	pl.RegisterRoutes(mux) // the player page, for the browser tests
	mux.HandleFunc("GET /time", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		_ = s.Close()
	})
	return &env{hub: h, srv: s, url: hs.URL}
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  ts.Config
		want string
	}{
		{ts.Config{}, ""},
		{ts.Config{SegmentDuration: 4 * time.Second, Window: 12 * time.Second}, ""},
		{ts.Config{SegmentDuration: time.Millisecond}, "'segment_duration'"},
		{ts.Config{Window: 3 * time.Second}, "'window'"},
		{ts.Config{Grace: -1}, "'grace'"},
		{ts.Config{Linger: -1}, "'linger'"},
		{ts.Config{BlockTimeout: time.Hour}, "'block_timeout'"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ts.ErrConfig)) {
			t.Errorf("%+v: got %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// checkTS walks the 188-byte packets of consecutive segments of one
// session: each segment starts with PAT then PMT, its first video PES is
// a random access point, and continuity counters never skip (HLS §3.1.1,
// ISO 13818-1 §2.4.3.3).
func checkTS(t *testing.T, segs [][]byte) {
	t.Helper()
	cc := map[uint16]int{}
	for si, seg := range segs {
		if len(seg)%188 != 0 || len(seg) == 0 {
			t.Fatalf("segment %d: %d bytes, not whole TS packets", si, len(seg))
		}
		var pids []uint16
		for off := 0; off < len(seg); off += 188 {
			p := seg[off : off+188]
			if p[0] != 0x47 {
				t.Fatalf("segment %d packet %d: no sync byte", si, off/188)
			}
			pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
			afc := p[3] >> 4 & 3
			c := int(p[3] & 0xf)
			if len(pids) < 3 {
				pids = append(pids, pid)
			}
			if afc&1 == 1 { // has payload
				if prev, ok := cc[pid]; ok && c != (prev+1)%16 {
					t.Fatalf("segment %d packet %d pid %d: continuity %d after %d", si, off/188, pid, c, prev)
				}
				cc[pid] = c
			}
		}
		if pids[0] != 0 || pids[1] != 4096 {
			t.Fatalf("segment %d starts with pids %v, want PAT (0) then PMT (4096)", si, pids)
		}
		// Third packet: the video PES with random_access_indicator.
		p := seg[2*188:]
		if p[3]>>4&2 == 0 || p[5]&0x40 == 0 {
			t.Fatalf("segment %d: first media packet is not a random access point", si)
		}
	}
}

var extinfRE = regexp.MustCompile(`(?m)^#EXTINF:([0-9.]+),\n(seg\d+\.ts)$`)

func TestSegmentsPlaylistsFFprobe(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed (Debian package ffmpeg); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Chromium-like ramp: a new SPS mid-stream.
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{
		{Width: 320, Height: 180, Duration: 3 * time.Second},
		{Width: 640, Height: 360, Duration: 5 * time.Second},
	}})
	st := storetest.Open(t) // the node's store, in a temp dir

	e := start(t, ts.Config{Grace: 300 * time.Millisecond}, hub.New(4096), st) // Play is not paced: room for all AUs

	// Unknown stream: 404 with a short cache lifetime.
	res, _ := get(t, e.url+"/hls/7/master.m3u8")
	if res.StatusCode != 404 || res.Header.Get("Cache-Control") == "" {
		t.Fatalf("unknown stream: %d %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}

	pub, err := e.hub.Publish(hub.Key{Stream: 7, Rendition: hub.Source}, hub.Session{ID: "s1", Tracks: stream.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Play(ctx, pub, mediatest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	pub.Close()

	// The media playlist ends after the grace period.
	var media string
	for {
		res, b := get(t, e.url+"/hls/7/source/index.m3u8")
		if res.StatusCode == 200 && strings.Contains(string(b), "#EXT-X-ENDLIST") {
			media = string(b)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no ENDLIST: %d\n%s", res.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("media playlist:\n%s", media)
	for _, want := range []string{"#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0",
		"#EXT-X-DISCONTINUITY-SEQUENCE:0", "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-DISCONTINUITY\n"} {
		if !strings.Contains(media, want) {
			t.Errorf("media playlist lacks %q", want)
		}
	}
	m := extinfRE.FindAllStringSubmatch(media, -1)
	if len(m) < 4 {
		t.Fatalf("only %d segments", len(m))
	}
	var total float64
	var segs [][]byte
	for i, sm := range m {
		d, _ := strconv.ParseFloat(sm[1], 64)
		total += d
		if sm[2] != fmt.Sprintf("seg%d.ts", i) {
			t.Errorf("segment %d named %s", i, sm[2])
		}
		if i < len(m)-1 && (d < 1.9 || d > 2.1) && i != 1 {
			// segment 1 ends early at the SPS change (3 s into the stream)
			t.Errorf("segment %d lasts %.3f s, want 2 s (cut at the IDR at or after 2 s)", i, d)
		}
		res, b := get(t, e.url+"/hls/7/source/"+sm[2])
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "video/mp2t" ||
			!strings.Contains(res.Header.Get("Cache-Control"), "immutable") || res.Header.Get("ETag") == "" {
			t.Fatalf("%s: %d %v", sm[2], res.StatusCode, res.Header)
		}
		segs = append(segs, b)
	}
	if total < 7.8 || total > 8.2 {
		t.Errorf("segments total %.3f s, stream is 8 s", total)
	}
	// The SPS change split the session: check each side on its own
	// (a discontinuity may restart continuity counters).
	checkTS(t, segs)

	// Range and HEAD on a segment.
	res, b := get(t, e.url+"/hls/7/source/seg0.ts", "Range", "bytes=188-375")
	if res.StatusCode != 206 || len(b) != 188 || !bytes.Equal(b, segs[0][188:376]) {
		t.Errorf("range: %d, %d bytes", res.StatusCode, len(b))
	}
	if res, _ := get(t, e.url+"/hls/7/source/seg999.ts"); res.StatusCode != 404 {
		t.Errorf("unknown segment: %d", res.StatusCode)
	}
	if res, _ := get(t, e.url+"/hls/7/source/seg01.ts"); res.StatusCode != 404 {
		t.Errorf("non-canonical name: %d", res.StatusCode)
	}

	// Master playlist: full attributes; gzip when asked.
	res, b = get(t, e.url+"/hls/7/master.m3u8")
	master := string(b)
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("master: %d %v", res.StatusCode, res.Header)
	}
	if !regexp.MustCompile(`#EXT-X-STREAM-INF:BANDWIDTH=\d+,AVERAGE-BANDWIDTH=\d+,CODECS="avc1\.42[0-9a-f]{4}",RESOLUTION=640x360,FRAME-RATE=30\.000\nsource/index\.m3u8`).MatchString(master) {
		t.Errorf("master:\n%s", master)
	}
	res, _ = get(t, e.url+"/hls/7/master.m3u8", "Accept-Encoding", "gzip")
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("master not gzipped")
	}

	// ffprobe reads the whole thing through the master playlist.
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries",
		"stream=codec_name,width,height:format=duration,nb_streams", "-of", "json", e.url+"/hls/7/master.m3u8").CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	var probe struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	if len(probe.Streams) == 0 || probe.Streams[0].CodecName != "h264" {
		t.Fatalf("ffprobe: %s", out)
	}
	// Every packet decodes without a complaint.
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", e.url+"/hls/7/master.m3u8", "-f", "null", "-")
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg decode: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(media))
	for sc.Scan() {
		_ = sc.Text()
	}
}

func tsConfigShortGrace() ts.Config { return ts.Config{Grace: 500 * time.Millisecond} }

// TestOpusOption: with `opus: true` the segments carry the publisher's
// Opus track next to the video, and ffprobe reads both.
func TestOpusOption(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed (Debian package ffmpeg); CI installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 3 * time.Second}}})
	e := start(t, ts.Config{Opus: true, Grace: 300 * time.Millisecond}, hub.New(4096), nil)
	pub, err := e.hub.Publish(hub.Key{Stream: 8, Rendition: hub.Source}, hub.Session{ID: "o", Tracks: stream.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Play(ctx, pub, mediatest.PlayOptions{}); err != nil {
		t.Fatal(err)
	}
	pub.Close()
	waitPlaylist(t, ctx, e.url+"/hls/8/source/index.m3u8", func(s string) bool { return strings.Contains(s, "#EXT-X-ENDLIST") })
	_, b := get(t, e.url+"/hls/8/master.m3u8")
	if !strings.Contains(string(b), `,opus"`) {
		t.Errorf("master CODECS lacks opus:\n%s", b)
	}
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
		e.url+"/hls/8/source/seg0.ts").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "h264") || !strings.Contains(string(out), "opus") {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
}
