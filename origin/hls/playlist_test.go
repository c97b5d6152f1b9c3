package hls

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/edgenode/edgenode/origin/cmaf"
)

// snapshot builds a track window of n one-second segments of five parts,
// the last one in progress, with a new init at segment newInit.
func snapshot(n int, newInit int) cmaf.Snapshot {
	s := cmaf.Snapshot{Info: cmaf.TrackInfo{
		Kind: cmaf.Video, Codec: "avc1.42c01f", Timescale: 90000,
		PartTarget: 200 * time.Millisecond, SegmentTarget: time.Second,
	}}
	wall := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	init := uint64(1)
	for i := range n {
		sg := cmaf.Segment{MSN: uint64(100 + i), InitID: init, Wall: wall.Add(time.Duration(i) * time.Second), DiscontinuitySeq: 7}
		if i == newInit {
			init++
			sg.InitID, sg.Discontinuity = init, true
		}
		if i > newInit && newInit >= 0 {
			sg.DiscontinuitySeq = 8
		}
		if i == newInit {
			sg.DiscontinuitySeq = 8
		}
		parts := 5
		if i == n-1 {
			parts = 2
		}
		for p := range parts {
			sg.Parts = append(sg.Parts, cmaf.Part{Index: p, Duration: 200 * time.Millisecond, Independent: p == 0})
			sg.Duration += 200 * time.Millisecond
		}
		sg.Complete = i < n-1
		s.Segments = append(s.Segments, sg)
	}
	s.NextMSN, s.NextPart = uint64(100+n-1), 2
	return s
}

func TestMediaPlaylist(t *testing.T) {
	s := snapshot(12, 8)
	body := MediaPlaylist(s, MediaOptions{Prefix: "video/", Reports: []Report{{URI: "../low/video.m3u8", LastMSN: 111, LastPart: 1}}})
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	txt := string(body)
	for _, want := range []string{
		"#EXT-X-MEDIA-SEQUENCE:100\n",
		"#EXT-X-DISCONTINUITY-SEQUENCE:7\n",
		"#EXT-X-TARGETDURATION:1\n",
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=0.601\n",
		"#EXT-X-PART-INF:PART-TARGET=0.200001\n",
		"#EXT-X-MAP:URI=\"video/init1.mp4\"\n",
		"#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"video/init2.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-01-02T03:04:13.000Z\n",
		"#EXT-X-PART:DURATION=0.200001,URI=\"video/part111.1.m4s\"\n",
		"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video/part111.2.m4s\"\n",
		"#EXT-X-RENDITION-REPORT:URI=\"../low/video.m3u8\",LAST-MSN=111,LAST-PART=1\n",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("missing %q in\n%s", want, txt)
		}
	}
	// Parts only for the last 3 target durations.
	if strings.Contains(txt, "part100.") || !strings.Contains(txt, "part109.0") {
		t.Errorf("parts listed for the wrong segments:\n%s", txt)
	}
	if strings.Count(txt, "#EXTINF:") != 11 || strings.Contains(txt, "ENDLIST") {
		t.Errorf("want 11 complete segments and no ENDLIST:\n%s", txt)
	}

	// §6.2.5.1 delta update: segments older than CAN-SKIP-UNTIL (6 s)
	// from the end are skipped; the MAP is restated.
	d := string(MediaPlaylist(s, MediaOptions{Prefix: "video/", Skip: true}))
	if !strings.Contains(d, "#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n") {
		t.Errorf("delta:\n%s", d)
	}
	if strings.Contains(d, "video/seg104.m4s") || !strings.Contains(d, "video/seg105.m4s") {
		t.Errorf("delta keeps the wrong segments:\n%s", d)
	}
	if !strings.HasPrefix(d[strings.Index(d, "#EXT-X-SKIP"):], "#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n#EXT-X-MAP:URI=\"video/init1.mp4\"") {
		t.Errorf("delta does not restate the map:\n%s", d)
	}

	s.Ended = true
	e := string(MediaPlaylist(s, MediaOptions{Prefix: "video/"}))
	if !strings.HasSuffix(e, "#EXT-X-ENDLIST\n") || strings.Contains(e, "PRELOAD-HINT") {
		t.Errorf("ended playlist:\n%s", e)
	}
}

func TestMultivariant(t *testing.T) {
	a := cmaf.TrackInfo{Kind: cmaf.Audio, Codec: "opus", Channels: 2}
	body := Multivariant([]Variant{
		{Name: "source", URI: "source/video.m3u8", Video: cmaf.TrackInfo{Codec: "avc1.42c01f", Width: 1280, Height: 720, FrameRate: 30}, Audio: &a, AudioURI: "source/audio.m3u8", AudioGroup: "a-source", Bandwidth: 2500000, AverageBandwidth: 2000000},
		{Name: "360p", URI: "360p/video.m3u8", Video: cmaf.TrackInfo{Codec: "avc1.42c01e", Width: 640, Height: 360}, Bandwidth: 800000, AverageBandwidth: 700000},
	})
	var mv playlist.Multivariant
	if err := mv.Unmarshal(body); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(mv.Variants) != 2 || len(mv.Renditions) != 1 {
		t.Fatalf("%s", body)
	}
	v := mv.Variants[0]
	if v.Bandwidth != 2500000 || *v.AverageBandwidth != 2000000 || v.Resolution != "1280x720" || *v.FrameRate != 30 || v.Audio != "a-source" || len(v.Codecs) != 2 {
		t.Errorf("variant %+v", v)
	}
	if *mv.Variants[1].FrameRate != 30 {
		t.Error("FRAME-RATE must be on every variant (default 30)")
	}
}

func TestParseQuery(t *testing.T) {
	for _, c := range []struct {
		q    string
		ok   bool
		want query
	}{
		{"", true, query{part: -1}},
		{"_HLS_msn=5", true, query{msn: 5, part: -1, blocking: true}},
		{"_HLS_msn=5&_HLS_part=2", true, query{msn: 5, part: 2, blocking: true}},
		{"_HLS_msn=5&_HLS_part=2&_HLS_skip=YES", true, query{msn: 5, part: 2, blocking: true, skip: true}},
		{"_HLS_skip=v2", true, query{part: -1, skip: true}},
		{"_HLS_part=2", false, query{}},
		{"_HLS_msn=-1", false, query{}},
		{"_HLS_msn=x", false, query{}},
		{"_HLS_msn=1&_HLS_part=-1", false, query{}},
		{"_HLS_skip=NO", false, query{}},
	} {
		got, err := parseQuery(httptest.NewRequest("GET", "/x?"+c.q, nil))
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("%q: %+v, %v", c.q, got, err)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	f.Add("_HLS_msn=5&_HLS_part=2&_HLS_skip=YES")
	f.Add("_HLS_part=1")
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.URL.RawQuery = q
		got, err := parseQuery(r)
		if err == nil && got.part >= 0 && !got.blocking {
			t.Fatalf("%q: part without msn accepted", q)
		}
	})
}

// TestMultivariantSharedAudio: the source variant takes the transcoder's
// AAC group; a group shared by variants is listed once; rungs keep theirs.
func TestMultivariantSharedAudio(t *testing.T) {
	aac := cmaf.TrackInfo{Kind: cmaf.Audio, Codec: "mp4a.40.2", Channels: 2}
	body := Multivariant([]Variant{
		{Name: "source", URI: "source/video.m3u8", Video: cmaf.TrackInfo{Codec: "avc1.42e01f", Width: 1280, Height: 720, FrameRate: 20}, Audio: &aac, AudioURI: "aac/audio.m3u8", AudioGroup: "a-aac", AudioName: "aac", Bandwidth: 3000000, AverageBandwidth: 2000000},
		{Name: "other", URI: "other/video.m3u8", Video: cmaf.TrackInfo{Codec: "avc1.42e01f", Width: 1280, Height: 720}, Audio: &aac, AudioURI: "aac/audio.m3u8", AudioGroup: "a-aac", AudioName: "aac", Bandwidth: 2000000, AverageBandwidth: 2000000},
		{Name: "360p", URI: "360p/video.m3u8", Video: cmaf.TrackInfo{Codec: "avc1.42c01e", Width: 640, Height: 360}, Audio: &aac, AudioURI: "360p/audio.m3u8", AudioGroup: "a-360p", Bandwidth: 800000, AverageBandwidth: 700000},
	})
	var mv playlist.Multivariant
	if err := mv.Unmarshal(body); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(mv.Variants) != 3 || len(mv.Renditions) != 2 {
		t.Fatalf("want 3 variants, 2 audio groups:\n%s", body)
	}
	if r := mv.Renditions[0]; r.GroupID != "a-aac" || r.Name != "aac" || *r.URI != "aac/audio.m3u8" {
		t.Errorf("shared group %+v", r)
	}
	if v := mv.Variants[0]; v.Audio != "a-aac" || v.Codecs[1] != "mp4a.40.2" || *v.FrameRate != 20 {
		t.Errorf("source %+v", v)
	}
}

// TestMediaPlaylistGap: a gap segment (cmaf.Segment.Gap: a rung whose
// encoder restarted) is listed with EXT-X-GAP before its EXTINF and URI
// (RFC 8216bis §4.4.4.7), with no parts, and the numbering around it is
// unchanged.
func TestMediaPlaylistGap(t *testing.T) {
	s := snapshot(9, -1)
	for _, i := range []int{5, 6} {
		sg := &s.Segments[i]
		sg.Gap, sg.Parts, sg.Size = true, nil, 0
	}
	body := MediaPlaylist(s, MediaOptions{Prefix: "video/"})
	txt := string(body)
	for _, want := range []string{
		"#EXT-X-MEDIA-SEQUENCE:100\n",
		"#EXT-X-GAP\n#EXTINF:1.000001,\nvideo/seg105.m4s\n",
		"#EXT-X-GAP\n#EXTINF:1.000001,\nvideo/seg106.m4s\n",
		"#EXTINF:1.000001,\nvideo/seg107.m4s\n",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("playlist lacks %q:\n%s", want, txt)
		}
	}
	if n := strings.Count(txt, "#EXT-X-GAP"); n != 2 {
		t.Errorf("%d EXT-X-GAP tags, want 2:\n%s", n, txt)
	}
	for _, bad := range []string{"part105.", "part106.", "#EXT-X-GAP\n#EXTINF:1.000001,\nvideo/seg107.m4s"} {
		if strings.Contains(txt, bad) {
			t.Errorf("playlist has %q:\n%s", bad, txt)
		}
	}
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(pl.Segments) != 8 || pl.Segments[5].URI != "video/seg105.m4s" {
		t.Errorf("parsed %d segments", len(pl.Segments))
	}
}

// TestMultivariantClosedCaptions: §4.4.6.2 CLOSED-CAPTIONS is NONE on every
// variant while no video carries captions (Shaka Player otherwise probes
// segments for them and picks the open LL-HLS segment, which has no URI),
// and a CLOSED-CAPTIONS group (§4.4.6.1, INSTREAM-ID) once one does.
func TestMultivariantClosedCaptions(t *testing.T) {
	v := func(name string, cc bool) Variant {
		return Variant{Name: name, URI: name + "/video.m3u8", Video: cmaf.TrackInfo{Codec: "avc1.42c01f", Width: 640, Height: 360, Captions: cc}, Bandwidth: 800000, AverageBandwidth: 700000}
	}
	for _, tc := range []struct {
		name string
		vs   []Variant
		want []string // each variant's CLOSED-CAPTIONS
	}{
		{"none", []Variant{v("source", false), v("360p", false)}, []string{"NONE", "NONE"}},
		{"source has captions", []Variant{v("source", true), v("360p", false)}, []string{"cc", ""}},
	} {
		body := Multivariant(tc.vs)
		var mv playlist.Multivariant
		if err := mv.Unmarshal(body); err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, body)
		}
		for i, want := range tc.want {
			if got := mv.Variants[i].ClosedCaptions; got != want {
				t.Errorf("%s: variant %d CLOSED-CAPTIONS %q, want %q\n%s", tc.name, i, got, want, body)
			}
		}
		hasGroup := false
		for _, r := range mv.Renditions {
			hasGroup = hasGroup || (r.Type == playlist.MultivariantRenditionTypeClosedCaptions && r.GroupID == "cc" && r.InStreamID != nil && *r.InStreamID == "CC1")
		}
		if hasGroup != (tc.want[0] == "cc") {
			t.Errorf("%s: CLOSED-CAPTIONS group listed %v\n%s", tc.name, hasGroup, body)
		}
	}
}

// TestMediaSecs: listed durations are never shorter than the media and at
// most 2 µs longer (Shaka Player 5.2.12 dropped parts after a duration
// listed a hair short, mediaSecs).
func TestMediaSecs(t *testing.T) {
	for _, ticks := range []int64{18000, 18003, 17997, 90000, 90090, 6000, 1} {
		d := time.Duration(ticks) * time.Second / 90000
		v, err := strconv.ParseFloat(mediaSecs(d), 64)
		if err != nil {
			t.Fatal(err)
		}
		exact := float64(ticks) / 90000
		if v < exact+1e-6-1e-12 || v > exact+2e-6+1e-12 {
			t.Errorf("%d ticks at 90 kHz (%.9f s): listed %s, want 1-2 µs longer", ticks, exact, mediaSecs(d))
		}
	}
	for _, samples := range []int64{1024 * 47, 960 * 50} {
		d := time.Duration(samples) * time.Second / 48000
		v, _ := strconv.ParseFloat(mediaSecs(d), 64)
		if exact := float64(samples) / 48000; v < exact+1e-6-1e-12 || v > exact+2e-6+1e-12 {
			t.Errorf("%d samples at 48 kHz: listed %s", samples, mediaSecs(d))
		}
	}
}
