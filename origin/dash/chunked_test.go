package dash_test

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/mediatest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/dash"
)

// TestInProgressSegmentChunked: the newest segment the live MPD lists
// (announced availabilityTimeOffset early) is requestable at once and
// arrives with chunked transfer as a complete CMAF segment: styp, then
// moof+mdat chunks (DASH-IF IOP v5 low latency; SPECS.md § LL-DASH).
func TestInProgressSegmentChunked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream := mediatest.Generate(t, mediatest.Options{Pieces: []mediatest.Piece{{Width: 320, Height: 180, Duration: 8 * time.Second}}})
	e := start(t, origin.Config{}, dash.Config{}, 0)
	stream.PlayLive(t, ctx, e.hub, hub.Key{Stream: 12, Rendition: hub.Source}, mediatest.PlayOptions{})

	// Wait for a live MPD listing at least two video segments.
	var number, media string
	for number == "" {
		_, m, _ := getMPD(t, e.url+"/cmaf/12/index.mpd")
		if m != nil && m.GetType() == "dynamic" {
			st := m.Periods[len(m.Periods)-1].AdaptationSets[0].Representations[0].SegmentTemplate
			if n := videoSegments(m.Periods[len(m.Periods)-1]); n >= 2 {
				number = strconv.Itoa(int(*st.StartNumber) + n - 1) // the newest: in progress
				media = strings.ReplaceAll(st.Media, "$Number$", number)
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no live MPD with two segments")
		}
		time.Sleep(100 * time.Millisecond)
	}
	res, err := http.Get(e.url + "/cmaf/12/" + media)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
		t.Fatalf("%s: %d, transfer encoding %v, want 200 chunked", media, res.StatusCode, res.TransferEncoding)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Walk the top-level boxes: styp, then moof/mdat pairs.
	var boxes []string
	for off := 0; off+8 <= len(body); {
		size := int(binary.BigEndian.Uint32(body[off:]))
		if size < 8 || off+size > len(body) {
			t.Fatalf("bad box at %d (size %d of %d)", off, size, len(body))
		}
		boxes = append(boxes, string(body[off+4:off+8]))
		off += size
	}
	if len(boxes) < 3 || boxes[0] != "styp" || boxes[1] != "moof" || boxes[2] != "mdat" {
		t.Fatalf("segment %s boxes %v", number, boxes)
	}
	chunks := strings.Count(strings.Join(boxes, ","), "moof")
	if chunks < 2 {
		t.Errorf("segment %s has %d chunk(s), want several parts", number, chunks)
	}
	t.Logf("segment %s: %d bytes in %d CMAF chunks, sent chunked", number, len(body), chunks)
}
