package dash_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/cmaf"
	"github.com/edgenode/edgenode/origin/dash"
)

// ladder is a fixed transcoding ladder for every stream (origin.Ladders).
type ladder []media.Rendition

func (l ladder) Ladder(uint64) []media.Rendition { return l }

// Rungs: every rung but the source, as if its encoder made them all.
func (l ladder) Rungs(uint64) []string {
	var names []string
	for _, r := range l {
		if r.Name != hub.Source {
			names = append(names, r.Name)
		}
	}
	return names
}

// TestMPDBandwidthMatchesHLS: through the real origin, with a ladder
// whose rung is capped far above what the test content needs, each
// rendition's @bandwidth in the MPD (video plus its audio) is the
// multivariant playlist's BANDWIDTH for it and the rung's video is never
// below its cap (ISO/IEC 23009-1 §5.3.5.2; SPECS.md § LL-DASH: the same
// figures as the HLS BANDWIDTH); every @frameRate is an integer or N/D
// fps (§5.3.12.2), here the 30 the content plays at.
func TestMPDBandwidthMatchesHLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const rateCap = 2_500_000
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 3 * time.Second}}})
	e := startDeps(t, origin.Config{}, dash.Config{}, origin.Deps{Hub: hub.New(4096),
		Ladders: ladder{{Name: hub.Source}, {Name: "720p", Width: 1280, Height: 720, Bitrate: rateCap}}})
	h, base := e.hub, e.url

	for _, r := range []string{hub.Source, "720p"} {
		pub, err := h.Publish(hub.Key{Stream: 7, Rendition: r}, hub.Session{ID: r, Tracks: stream.Tracks})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		if err := stream.Play(ctx, pub, mediatest.PlayOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the packagers have worked through the queued access
	// units (no track changes for 300 ms), so both documents describe
	// the same window.
	var last uint64
	for stable := time.Now(); time.Since(stable) < 300*time.Millisecond; time.Sleep(20 * time.Millisecond) {
		st, ok := e.reg.Stream(7)
		if ok && len(st.Renditions()) == 2 {
			if v := st.Version(); v != last {
				last, stable = v, time.Now()
			}
		} else {
			stable = time.Now()
		}
		if ctx.Err() != nil {
			t.Fatal("stream never settled")
		}
	}

	res, err := http.Get(base + "/cmaf/7/master.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	master, _ := io.ReadAll(res.Body)
	res.Body.Close()
	hlsBW := map[string]int{}
	for _, m := range regexp.MustCompile(`#EXT-X-STREAM-INF:BANDWIDTH=(\d+)[^\n]*\n([^/\n]+)/video\.m3u8`).FindAllStringSubmatch(string(master), -1) {
		hlsBW[m[2]], _ = strconv.Atoi(m[1])
	}
	if len(hlsBW) != 2 {
		t.Fatalf("multivariant playlist lists %v:\n%s", hlsBW, master)
	}
	_, m, raw := getMPD(t, base+"/cmaf/7/index.mpd")
	if m == nil {
		t.Fatalf("MPD: %s", raw)
	}
	dashBW := map[string]int{}
	for _, p := range m.Periods {
		for _, as := range p.AdaptationSets {
			for _, rep := range as.Representations {
				t1, err := cmafKind(rep.Id)
				if err != nil {
					t.Fatal(err)
				}
				if t1.kind == cmaf.Video {
					if _, err := dash.ParseFrameRate(rep.FrameRate); err != nil || rep.FrameRate != "30" {
						t.Errorf("%s: frameRate %q (%v), the content is 30 fps", rep.Id, rep.FrameRate, err)
					}
					if t1.rendition == "720p" && rep.Bandwidth < rateCap {
						t.Errorf("%s: bandwidth %d below the rung's cap %d", rep.Id, rep.Bandwidth, rateCap)
					}
					// The source tops the ladder: above every rung, or
					// ABR players rank a re-encode over it.
					if t1.rendition == hub.Source && rep.Bandwidth <= rateCap {
						t.Errorf("%s: bandwidth %d not above the top rung's %d", rep.Id, rep.Bandwidth, rateCap)
					}
				}
				dashBW[t1.rendition] += int(rep.Bandwidth)
			}
		}
	}
	for r, bw := range hlsBW {
		if dashBW[r] != bw {
			t.Errorf("%s: MPD video+audio @bandwidth %d, HLS BANDWIDTH %d", r, dashBW[r], bw)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("master:\n%s\nMPD:\n%s", master, raw)
	}
}

type repName struct {
	rendition string
	kind      cmaf.Kind
}

// cmafKind splits a Representation id ("720p-video").
func cmafKind(id string) (repName, error) {
	for _, k := range []cmaf.Kind{cmaf.Video, cmaf.Audio} {
		if s := "-" + k.String(); len(id) > len(s) && id[len(id)-len(s):] == s {
			return repName{id[:len(id)-len(s)], k}, nil
		}
	}
	return repName{}, fmt.Errorf("representation id %q names no track kind", id)
}

// TestFirstManifestsListTheRungs: a player that asks for the MPD or the
// multivariant playlist before the stream goes live gets one that lists
// the rungs the encoder makes, not the source alone, although the rung's
// first segment comes a GOP after the source's (cmaf.Registry.WaitRungs).
// Stock dash.js that started on the source alone and saw the rungs join
// on its next MPD update never loaded another video segment; hls.js loads
// the multivariant playlist once and would never see them.
func TestFirstManifestsListTheRungs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{GOP: 500 * time.Millisecond,
		Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 4 * time.Second}}})
	e := startDeps(t, origin.Config{}, dash.Config{}, origin.Deps{Hub: hub.New(4096),
		Ladders: ladder{{Name: hub.Source}, {Name: "180p", Width: 320, Height: 180, Bitrate: 300_000}}})

	// The players first.
	get := func(u string, got chan<- string) {
		res, err := http.Get(u)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(b)
	}
	mpdc, masterc := make(chan string, 1), make(chan string, 1)
	go get(e.url+"/cmaf/7/index.mpd", mpdc)
	go get(e.url+"/cmaf/7/master.m3u8", masterc)
	time.Sleep(200 * time.Millisecond) // their requests are held for the stream
	start := time.Now()
	errs := make(chan error, 2)
	for r, skip := range map[string]time.Duration{hub.Source: 0, "180p": 600 * time.Millisecond} {
		// The rung's rendition is published with its first frame, as
		// hwenc does.
		go func() {
			time.Sleep(time.Until(start.Add(skip)))
			pub, err := e.hub.Publish(hub.Key{Stream: 7, Rendition: r}, hub.Session{ID: r, Tracks: stream.Tracks})
			if err != nil {
				errs <- err
				return
			}
			defer pub.Close()
			errs <- stream.Play(ctx, pub, mediatest.PlayOptions{Realtime: true, Start: start, Skip: skip})
		}()
	}
	for _, c := range []struct {
		what string
		got  chan string
		want []string
	}{
		{"MPD", mpdc, []string{`id="source-video"`, `id="180p-video"`}},
		{"multivariant playlist", masterc, []string{"source/video.m3u8", "180p/video.m3u8"}},
	} {
		var first string
		select {
		case first = <-c.got:
		case <-ctx.Done():
			t.Fatalf("no %s", c.what)
		}
		for _, w := range c.want {
			if !strings.Contains(first, w) {
				t.Errorf("the first %s has no %s:\n%s", c.what, w, first)
			}
		}
	}
	cancel()
	for range 2 {
		<-errs
	}
}
