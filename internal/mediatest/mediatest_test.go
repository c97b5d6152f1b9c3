package mediatest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

func TestGenerateDecodes(t *testing.T) {
	s := Generate(t, Options{Pieces: []Piece{{Width: 320, Height: 180, Duration: time.Second}, {Width: 640, Height: 360, Duration: 2 * time.Second}}})
	if len(s.Tracks) != 2 || s.Tracks[0].Codec != media.CodecH264 || s.Tracks[1].Codec != media.CodecOpus {
		t.Fatalf("tracks = %+v", s.Tracks)
	}
	if s.Tracks[0].Width != 320 || s.Tracks[0].Height != 180 {
		t.Fatalf("first piece size %dx%d", s.Tracks[0].Width, s.Tracks[0].Height)
	}
	video := s.Video()
	if got, want := len(video), 90; got != want {
		t.Errorf("video frames = %d, want %d", got, want)
	}
	keys := 0
	var lastDTS int64 = -1
	for _, au := range video {
		if au.Key {
			keys++
			if len(au.Payload) < 3 {
				t.Errorf("IDR at %d carries %d NAL units, want SPS+PPS+slice", au.DTS, len(au.Payload))
			}
		}
		if au.DTS <= lastDTS {
			t.Fatalf("video DTS not increasing: %d after %d", au.DTS, lastDTS)
		}
		lastDTS = au.DTS
	}
	if keys != 3 {
		t.Errorf("key frames = %d, want 3 (one per second)", keys)
	}
	audio := len(s.Samples) - len(video)
	if audio < 140 || audio > 160 {
		t.Errorf("audio frames = %d, want about 150 (3 s of 20 ms)", audio)
	}

	// The video must decode cleanly and switch size mid-stream.
	b, err := AnnexB(video)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "v.h264")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", f, "-f", "null", "-").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("ffmpeg decode: %v: %s", err, out)
	}
}

func TestPlayIntoHub(t *testing.T) {
	s := Generate(t, Options{Pieces: []Piece{{Duration: time.Second}}})
	h := hub.New(0)
	key := hub.Key{Stream: 1, Rendition: hub.Source}
	sub := h.Subscribe(key, "test")
	defer sub.Close()
	pub, err := h.Publish(key, hub.Session{ID: "s", Tracks: s.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Play(ctx, pub, PlayOptions{Loops: 2}); err != nil {
		t.Fatal(err)
	}
	pub.Close()
	ev, err := sub.Next(ctx)
	if err != nil || ev.Kind != hub.SessionStart {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	n := 0
	var last int64 = -1
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == hub.SessionEnd {
			break
		}
		if ev.AU.Codec.IsVideo() {
			if ev.AU.DTS <= last {
				t.Fatalf("looped DTS went back: %d after %d", ev.AU.DTS, last)
			}
			last = ev.AU.DTS
			if ev.AU.Time.IsZero() {
				t.Fatal("Play did not stamp Time")
			}
		}
		n++
	}
	if n != 2*len(s.Samples) {
		t.Fatalf("got %d events, want %d", n, 2*len(s.Samples))
	}
}
