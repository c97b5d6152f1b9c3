package dash_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/manifestrules"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/dash"
)

// rulesEnv is the real origin and DASH server of one node, with the
// transcoder's ladder and AAC rendition as the node wires them.
type rulesEnv struct{ *env }

func startRules(t *testing.T, l ladder) *rulesEnv {
	t.Helper()
	return &rulesEnv{startDeps(t, origin.Config{EndGrace: 5 * time.Second}, dash.Config{},
		origin.Deps{Hub: hub.New(4096), Ladders: l, AudioRendition: "aac"})}
}

// play publishes st as rendition r of stream id in real time from start,
// in the background; the returned channel is closed when it has played
// (and, with closeAfter, the publisher has left).
func (e *rulesEnv) play(t *testing.T, ctx context.Context, id uint64, r string, session string, st *mediatest.Stream, start time.Time, loops int) <-chan struct{} {
	return e.playFrom(t, ctx, id, r, session, st, start, loops, 0)
}

// playFrom is play leaving out the media before skip: an encoder that
// starts late on the stream's timeline.
func (e *rulesEnv) playFrom(t *testing.T, ctx context.Context, id uint64, r string, session string, st *mediatest.Stream, start time.Time, loops int, skip time.Duration) <-chan struct{} {
	t.Helper()
	pub, err := e.hub.Publish(hub.Key{Stream: id, Rendition: r}, hub.Session{ID: session, Tracks: st.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = st.Play(ctx, pub, mediatest.PlayOptions{Realtime: true, Start: start, Loops: loops, Skip: skip})
		pub.Close()
	}()
	return done
}

// only keeps the tracks of st of one kind (audio: true), as a publisher
// that sends only a microphone (or the transcoder's AAC rendition).
func only(st *mediatest.Stream, audio bool) *mediatest.Stream {
	out := &mediatest.Stream{Duration: st.Duration}
	idx := map[int]int{}
	for i, tr := range st.Tracks {
		if (tr.Codec == media.CodecOpus) == audio {
			idx[i] = len(out.Tracks)
			out.Tracks = append(out.Tracks, tr)
		}
	}
	for _, s := range st.Samples {
		if j, ok := idx[s.Track]; ok {
			out.Samples = append(out.Samples, mediatest.Sample{Track: j, AU: s.AU})
		}
	}
	return out
}

// checkAll fetches stream id's MPD and multivariant playlist and applies
// every rule to both, failing the test with each broken rule.
func (e *rulesEnv) checkAll(t *testing.T, ctx context.Context, id uint64, exp manifestrules.Expect, when string) {
	t.Helper()
	get := manifestrules.HTTPGet(nil)
	mpdURL := fmt.Sprintf("%s/cmaf/%d/%s", e.url, id, dash.MPDName)
	code, body, err := get(ctx, mpdURL)
	if err != nil || code != 200 {
		t.Fatalf("%s: MPD %d %v %s", when, code, err, body)
	}
	errs := manifestrules.CheckMPD(ctx, mpdURL, body, get, time.Now(), exp)
	errs = append(errs, manifestrules.CheckHLS(ctx, fmt.Sprintf("%s/cmaf/%d/master.m3u8", e.url, id), get, exp)...)
	for _, e := range errs {
		t.Errorf("%s: %s", when, e)
	}
	if len(errs) > 0 {
		t.Logf("%s: MPD\n%s", when, body)
	}
}

// TestManifestRules applies internal/manifestrules to what the origin
// serves for every shape of stream the node makes: passthrough, a
// transcoded ladder (rungs and the AAC audio group), audio only, a
// publisher's mid-stream resolution change, and a publisher who
// reconnects; each is checked live at three moments and after the
// publisher left. The rules' own test (internal/manifestrules) shows
// that each defect the node once had fails them.
func TestManifestRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: 3 * time.Second}}})
	caps := ladder{{Name: hub.Source}, {Name: "360p", Width: 640, Height: 360, Bitrate: 800_000}, {Name: "180p", Width: 320, Height: 180, Bitrate: 300_000}}
	exp := manifestrules.Expect{RateCaps: map[string]int{"360p": 800_000, "180p": 300_000}}

	// Each shape plays ~4-6 s; the checks run while it plays.
	type shape struct {
		name  string
		start func(e *rulesEnv, id uint64) <-chan struct{}
	}
	shapes := []shape{
		{"passthrough", func(e *rulesEnv, id uint64) <-chan struct{} {
			return e.play(t, ctx, id, hub.Source, "a", src, time.Now(), 2)
		}},
		{"ladder", func(e *rulesEnv, id uint64) <-chan struct{} {
			r360 := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: 3 * time.Second}}, NoAudio: true})
			r180 := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 3 * time.Second}}, NoAudio: true})
			at := time.Now()
			done := e.play(t, ctx, id, hub.Source, "a", src, at, 2)
			// The rungs start later than the source, as encoders do (the
			// transcoder's AAC audio group is checked on the real ladder:
			// node's TestTranscodedLadderEndToEnd).
			e.playFrom(t, ctx, id, "360p", "360p", r360, at, 2, time.Second)
			e.playFrom(t, ctx, id, "180p", "180p", r180, at, 2, 2*time.Second)
			return done
		}},
		{"audio-only", func(e *rulesEnv, id uint64) <-chan struct{} {
			return e.play(t, ctx, id, hub.Source, "a", only(src, true), time.Now(), 2)
		}},
		{"resolution-change", func(e *rulesEnv, id uint64) <-chan struct{} {
			ramp := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{
				{Width: 320, Height: 180, Duration: 2 * time.Second}, {Width: 640, Height: 360, Duration: 3 * time.Second}}})
			return e.play(t, ctx, id, hub.Source, "a", ramp, time.Now(), 1)
		}},
		{"reconnect", func(e *rulesEnv, id uint64) <-chan struct{} {
			first := e.play(t, ctx, id, hub.Source, "a", src, time.Now(), 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				<-first
				time.Sleep(time.Second)
				<-e.play(t, ctx, id, hub.Source, "b", src, time.Now(), 1)
			}()
			return done
		}},
	}
	for i, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			e := startRules(t, caps)
			id := uint64(100 + i)
			done := s.start(e, id)
			// Live: whenever the player might look.
			for k, at := range []time.Duration{1500 * time.Millisecond, 3 * time.Second, 4500 * time.Millisecond} {
				time.Sleep(at - []time.Duration{0, 1500 * time.Millisecond, 3 * time.Second}[k])
				e.checkAll(t, ctx, id, exp, fmt.Sprintf("live at %v", at))
			}
			<-done
			e.checkAll(t, ctx, id, exp, "after the publisher left")
		})
	}
}

// TestManifestRulesCatchDefects puts back, into what the origin really
// serves for a ladder, each manifest defect the node once had, and
// checks the rules name each one (a rule that cannot fail is no rule).
func TestManifestRulesCatchDefects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: 3 * time.Second}}})
	r180 := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 3 * time.Second}}, NoAudio: true})
	e := startRules(t, ladder{{Name: hub.Source}, {Name: "180p", Width: 320, Height: 180, Bitrate: 300_000}})
	exp := manifestrules.Expect{RateCaps: map[string]int{"180p": 300_000}}
	at := time.Now()
	done := e.play(t, ctx, 1, hub.Source, "a", src, at, 3)
	e.playFrom(t, ctx, 1, "180p", "180p", r180, at, 3, 2*time.Second)
	defer func() { <-done }()
	time.Sleep(4 * time.Second)

	get := manifestrules.HTTPGet(nil)
	mpdURL := e.url + "/cmaf/1/" + dash.MPDName
	master := e.url + "/cmaf/1/master.m3u8"
	_, mpdBody, _ := get(ctx, mpdURL)
	if errs := manifestrules.CheckMPD(ctx, mpdURL, mpdBody, get, time.Now(), exp); len(errs) > 0 {
		t.Fatalf("the served MPD already breaks rules: %v\n%s", errs, mpdBody)
	}
	if errs := manifestrules.CheckHLS(ctx, master, get, exp); len(errs) > 0 {
		t.Fatalf("the served playlists already break rules: %v", errs)
	}
	mpdText := string(mpdBody)
	rung := regexp.MustCompile(`(?s)<Representation id="180p-video".*?</Representation>`).FindString(mpdText)
	if rung == "" {
		t.Fatalf("no 180p rung in\n%s", mpdText)
	}
	sub := func(s, old, new string) string {
		t.Helper()
		if !strings.Contains(s, old) {
			t.Fatalf("%q not in %q", old, s)
		}
		return strings.Replace(s, old, new, 1)
	}
	// The rung numbered as it was before the clock, from its own start
	// (number 1): numbers the rung never had, at the times it has. (From
	// t=0 as well, every such segment of this young stream ends before
	// the window that timeShiftBufferDepth keeps, which is the rung's:
	// nothing left to fetch.)
	early := regexp.MustCompile(`startNumber="\d+"`).ReplaceAllString(rung, `startNumber="1"`)
	for _, c := range []struct {
		name, mpd, want string
	}{
		{"frame rate is the timescale", regexp.MustCompile(`(id="180p-video"[^>]*?)frameRate="[^"]*"`).ReplaceAllString(mpdText, `${1}frameRate="90000"`), "§5.3.12.2"},
		{"bandwidth of easy content", regexp.MustCompile(`(id="180p-video" bandwidth=)"\d+"`).ReplaceAllString(mpdText, `${1}"37000"`), "§5.3.5.2"},
		{"rung timeline from t=0", strings.Replace(mpdText, rung, early, 1), "every segment the MPD implies is served"},
		{"a Period where nothing changed", func() string {
			p := regexp.MustCompile(`(?s)<Period .*?</Period>`).FindString(mpdText)
			dup := sub(p, `id="p`, `id="x`)
			return strings.Replace(mpdText, p, p+dup, 1)
		}(), "a Period boundary where nothing changed"},
		{"no UTCTiming", regexp.MustCompile(`(?s)</Period>\s*<UTCTiming[^>]*></UTCTiming>`).ReplaceAllString(mpdText, "</Period>"), "UTCTiming"},
	} {
		if c.mpd == mpdText {
			t.Errorf("%s: the mutation did not apply", c.name)
			continue
		}
		errs := manifestrules.CheckMPD(ctx, mpdURL, []byte(c.mpd), get, time.Now(), exp)
		if !strings.Contains(strings.Join(errs, "\n"), c.want) {
			t.Errorf("%s: the rules did not say %q; they said %v", c.name, c.want, errs)
		}
	}

	_, masterBody, _ := get(ctx, master)
	video := e.url + "/cmaf/1/180p/video.m3u8"
	_, videoBody, _ := get(ctx, video)
	for _, c := range []struct {
		name, url, body, want string
	}{
		{"no CLOSED-CAPTIONS", master, strings.ReplaceAll(string(masterBody), ",CLOSED-CAPTIONS=NONE", ""), "CLOSED-CAPTIONS"},
		{"FRAME-RATE is the timescale", master, regexp.MustCompile(`FRAME-RATE=[0-9.]+`).ReplaceAllString(string(masterBody), "FRAME-RATE=90000.000"), "FRAME-RATE"},
		{"BANDWIDTH of easy content", master, regexp.MustCompile(`BANDWIDTH=\d+(,AVERAGE-BANDWIDTH=)\d+(,CODECS="avc1\.[0-9a-fA-F]+",RESOLUTION=320x180)`).ReplaceAllString(string(masterBody), "BANDWIDTH=39000${1}37000${2}"), "rate cap"},
		{"a part past PART-TARGET", video, regexp.MustCompile(`#EXT-X-PART:DURATION=[0-9.]+`).ReplaceAllString(string(videoBody), "#EXT-X-PART:DURATION=0.30000"), "§4.4.4.9"},
		{"a short part where one more frame fit", video, regexp.MustCompile(`#EXT-X-PART:DURATION=[0-9.]+`).ReplaceAllString(string(videoBody), "#EXT-X-PART:DURATION=0.10000"), "and its next frame"},
		{"a segment listed before it exists", video, regexp.MustCompile(`(?m)^180p/video/seg(\d+)\.m4s$|^video/seg(\d+)\.m4s$`).ReplaceAllString(string(videoBody), "video/seg999999.m4s"), "a listed segment is served"},
	} {
		if c.body == string(masterBody) || c.body == string(videoBody) {
			t.Errorf("%s: the mutation did not apply", c.name)
			continue
		}
		mut := func(ctx context.Context, u string) (int, []byte, error) {
			if u == c.url {
				return 200, []byte(c.body), nil
			}
			return get(ctx, u)
		}
		errs := manifestrules.CheckHLS(ctx, master, mut, exp)
		if !strings.Contains(strings.Join(errs, "\n"), c.want) {
			t.Errorf("%s: the rules did not say %q; they said %v", c.name, c.want, errs)
		}
	}
}
