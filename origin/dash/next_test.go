package dash_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/cmaf"
	"github.com/edgenode/edgenode/origin/dash"
)

// newest returns, per AdaptationSet content type of the last Period, the
// number ($Number$) of the newest segment its first Representation lists.
func newest(m *mpd.MPD) map[string]uint64 {
	out := map[string]uint64{}
	p := m.Periods[len(m.Periods)-1]
	for _, as := range p.AdaptationSets {
		st := as.Representations[0].SegmentTemplate
		if st == nil || st.SegmentTimeline == nil || st.StartNumber == nil {
			continue
		}
		n := uint64(*st.StartNumber)
		for _, s := range st.SegmentTimeline.S {
			n += uint64(1 + s.R)
		}
		out[string(as.ContentType)] = n - 1
	}
	return out
}

// TestMPDUpdateURL: every live MPD names its next version in Location
// (index.mpd?next=N, N the segment after its newest), and a request for
// it is held until every track lists segment N, so that a player that
// reloads it through a cache learns of each segment as it starts (dash.js
// through nginx reloading the one plain URL, cached a second, stalled ten
// times a minute); a malformed number is a 400 saying so; once the
// stream has ended the URL answers at once with the static MPD.
func TestMPDUpdateURL(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 6 * time.Second}}})
	e := start(t, origin.Config{}, dash.Config{}, 4096)
	pub, err := e.hub.Publish(hub.Key{Stream: 9, Rendition: hub.Source}, hub.Session{ID: "a", Tracks: stream.Tracks})
	if err != nil {
		t.Fatal(err)
	}
	playDone := make(chan error, 1)
	go func() { playDone <- stream.Play(ctx, pub, mediatest.PlayOptions{Realtime: true}) }()
	var tr *cmaf.Track
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var ok bool
		if tr, ok = e.reg.Lookup(9, hub.Source, cmaf.Video); ok && len(tr.Snapshot().Segments) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no video segment")
		}
	}
	// Past the start-up hold: the second segment is being written.
	for tr.Snapshot().Segments[len(tr.Snapshot().Segments)-1].MSN == tr.Snapshot().Segments[0].MSN {
		time.Sleep(20 * time.Millisecond)
	}

	url := e.url + "/cmaf/9/index.mpd"
	for range 3 {
		_, m, body := getMPD(t, url)
		if m == nil || len(m.Location) != 1 {
			t.Fatalf("live MPD without one Location:\n%s", body)
		}
		n := newest(m)
		want := "index.mpd?next=" + strconv.FormatUint(n["video"]+1, 10)
		if m.Location[0].Value != want {
			t.Fatalf("Location %q, want %q (newest listed: %v)", m.Location[0].Value, want, n)
		}
		url = e.url + "/cmaf/9/" + m.Location[0].Value
		asked := time.Now()
		_, m, body = getMPD(t, url)
		if m == nil {
			t.Fatalf("%s: %s", url, body)
		}
		got := newest(m)
		t.Logf("%s: held %v, lists %v", url, time.Since(asked).Round(time.Millisecond), got)
		for kind, k := range got {
			if k < n["video"]+1 {
				t.Errorf("%s: the %s timeline ends at %d, want the requested segment %d listed\n%s", url, kind, k, n["video"]+1, body)
			}
		}
		if sg, ok := tr.Segment(n["video"] + 1); ok && asked.After(sg.Wall) {
			t.Logf("(asked %v after segment %d started)", asked.Sub(sg.Wall), sg.MSN)
		}
	}

	res, err := http.Get(e.url + "/cmaf/9/index.mpd?next=x1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "next") {
		t.Errorf("?next=x1: %d %q, want 400 naming the parameter", res.StatusCode, b)
	}

	if err := <-playDone; err != nil {
		t.Fatal(err)
	}
	pub.Close()
	for !tr.Snapshot().Ended {
		time.Sleep(20 * time.Millisecond)
	}
	asked := time.Now()
	_, m, body := getMPD(t, e.url+"/cmaf/9/index.mpd?next=100000")
	if m == nil || m.Type == nil || *m.Type != mpd.STATIC_TYPE || len(m.Location) != 0 || time.Since(asked) > time.Second {
		t.Errorf("update URL of an ended stream, after %v: want the static MPD without Location at once:\n%s", time.Since(asked), body)
	}
}
