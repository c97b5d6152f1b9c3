package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/ingest/internal/whipclient"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
)

var key42 = hub.Key{Stream: 42, Rendition: hub.Source}

// TestPionPublisher publishes the multi-slice clip from a pion peer in the
// ways real encoders do and checks what reaches the hub: whole access
// units with parameter sets in front of every IDR, 90 kHz / 48 kHz
// timestamps, wall-clock times, and video that decodes.
func TestPionPublisher(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts whipclient.Options
	}{
		// OBS-like: SPS and PPS in packets of their own, no sender reports.
		{"separate parameter sets no SR", whipclient.Options{Params: whipclient.ParamsSeparate}},
		// Chromium-like: STAP-A, sender reports, small MTU (more FU-A).
		{"STAP-A with SR", whipclient.Options{Params: whipclient.ParamsSTAPA, SenderReports: true, MTU: 500}},
		// Key as a Bearer token on /whip/<id> (RFC 9725 §4.7).
		{"bearer token", whipclient.Options{Bearer: "secret"}},
		// Trickle ICE: offer without candidates, candidates via PATCH.
		{"trickle", whipclient.Options{Trickle: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testConfig())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sub := e.hub.Subscribe(key42, "test")
			defer sub.Close()
			o := tc.opts
			o.URL = e.base + "/whip/42_secret"
			if o.Bearer != "" {
				o.URL = e.base + "/whip/42"
			}
			p, err := whipclient.Publish(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if !strings.Contains(p.Answer, "x-google-start-bitrate=2500") {
				t.Errorf("answer lacks x-google-start-bitrate:\n%s", p.Answer)
			}
			// 75 frames: more than one loop of the 60-frame clip.
			c := collect(ctx, t, sub, func(c *collected) bool { return len(c.video) >= 75 && len(c.audio) >= 50 })
			if o.Trickle {
				if err := p.TrickleErr(); err != nil {
					t.Errorf("trickle PATCH: %v", err)
				}
			}
			// PLI at the start and every pli_interval (1 s) since.
			if n := p.PLIs(); n < 2 {
				t.Errorf("publisher got %d PLIs in %d frames; want one at start and one per second", n, len(c.video))
			}
			checkVideo(t, c.video)
			checkAudio(t, c.audio)
			if len(c.session.Tracks) != 2 || c.session.Tracks[0].Codec != media.CodecH264 || c.session.Tracks[1].Codec != media.CodecOpus {
				t.Errorf("session tracks %+v", c.session.Tracks)
			}
			decode(t, c.video, whipclient.Slices4Width, whipclient.Slices4Height)

			m := e.metrics(t)
			for _, s := range []string{`edgenode_ingest_publisher_connected{stream="42"} 1`, `edgenode_ingest_plis_sent_total{stream="42"}`,
				`edgenode_ingest_sessions 1`, `edgenode_ingest_rtt_seconds{stream="42"}`, `edgenode_ingest_video_width_pixels{stream="42"} 320`,
				`edgenode_ingest_frames_total{kind="audio",stream="42"}`} {
				if !strings.Contains(m, s) {
					t.Errorf("/metrics lacks %q", s)
				}
			}
			if st, err := p.Delete(ctx); err != nil || st != 200 {
				t.Fatalf("DELETE: %d %v", st, err)
			}
			end := collect(ctx, t, sub, func(c *collected) bool { return c.ended })
			if !end.ended || e.srv.Sessions() != 0 {
				t.Errorf("session not ended after DELETE (sessions %d)", e.srv.Sessions())
			}
		})
	}
}

func checkVideo(t *testing.T, aus []*media.AccessUnit) {
	t.Helper()
	first := aus[0]
	types := nalTypes(first)
	// rtpau starts on an IDR; the clip has 4 slices per picture.
	if !first.Key || len(types) < 6 || types[0] != 7 || types[1] != 8 || count(types, 5) != 4 {
		t.Fatalf("first AU: key %v NAL types %v; want SPS, PPS, 4 IDR slices", first.Key, types)
	}
	keys := 0
	for i, au := range aus {
		tt := nalTypes(au)
		if au.Key {
			keys++
			if tt[0] != 7 || tt[1] != 8 {
				t.Errorf("IDR %d without SPS/PPS in front: %v", i, tt)
			}
		}
		if n := count(tt, 1) + count(tt, 5); n != 4 {
			t.Errorf("AU %d has %d slices, want 4 (%v)", i, n, tt)
		}
		if i > 0 {
			if d := au.PTS - aus[i-1].PTS; d != 3000 {
				t.Errorf("AU %d PTS step %d, want 3000 (30 fps at 90 kHz)", i, d)
			}
			if au.DTS != au.PTS {
				t.Errorf("AU %d DTS %d != PTS %d without B-frames", i, au.DTS, au.PTS)
			}
		}
		if au.Time.IsZero() || time.Since(au.Time).Abs() > 10*time.Second {
			t.Errorf("AU %d wall time %v not near now", i, au.Time)
		}
	}
	if keys < 2 {
		t.Errorf("%d keyframes in %d AUs; want the clip's 1 s GOP", keys, len(aus))
	}
}

func checkAudio(t *testing.T, aus []*media.AccessUnit) {
	t.Helper()
	for i, au := range aus {
		if au.Codec != media.CodecOpus || !au.Key || len(au.Payload) != 1 || !bytes.Equal(au.Payload[0], []byte{0xf8, 0xff, 0xfe}) {
			t.Fatalf("audio AU %d: %+v", i, au)
		}
		if i > 0 && au.PTS-aus[i-1].PTS != 960 {
			t.Errorf("audio AU %d PTS step %d, want 960 (20 ms at 48 kHz)", i, au.PTS-aus[i-1].PTS)
		}
	}
}

// decode writes aus as Annex-B and decodes it with ffmpeg: no errors, and
// ffprobe sees the expected size. Skips only when ffmpeg is missing.
func decode(t *testing.T, aus []*media.AccessUnit, width, height int) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/deps.sh test installs it): cannot decode the received video")
	}
	b, err := mediatest.AnnexB(aus)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "rx.h264")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", f, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg decode: %v\n%s", err, out)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=width,height,nb_read_frames", "-of", "csv=p=0", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, probe)
	}
	fields := strings.Split(strings.TrimSpace(string(probe)), ",")
	if len(fields) != 3 || fields[0] != itoa(width) || fields[1] != itoa(height) || fields[2] != itoa(len(aus)) {
		t.Errorf("ffprobe: %q, want %dx%d with %d frames", probe, width, height, len(aus))
	}
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

var _ = errors.Is
var _ = ingest.ErrBusy
