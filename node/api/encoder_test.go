package api_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/node/api"
)

// encoderFunc is an api.EncoderSource from a function (the real one is the
// node's adapter over hwenc.Manager, exercised by node's transcode e2e).
type encoderFunc func(id uint64) (api.Encoder, bool)

func (f encoderFunc) StreamEncoder(id uint64) (api.Encoder, bool) { return f(id) }

func TestStreamEncoderObject(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/streaming/streams", `{"name":"enc"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := r.stream(t).ID

	// Without a source the shape is unchanged: no "encoder" key at all.
	r = e.call("GET", "/streaming/streams/1", "")
	if r.status != http.StatusOK || strings.Contains(string(r.body), `"encoder"`) {
		t.Fatalf("get without encoders: %d %s", r.status, r.body)
	}

	want := api.Encoder{
		Mode: "auto", Chosen: "x264", Why: "no hardware encoder available", Plugin: "x264", Live: true,
		Ladder:     []media.Rendition{{Name: "source"}, {Name: "360p", Width: 640, Height: 360, Bitrate: 600000}},
		Renditions: []media.Rendition{{Name: "360p", Width: 640, Height: 360, Bitrate: 600000}},
		Plugins: []api.EncoderPlugin{
			{Name: "nvenc", Hardware: true, Reason: "no NVIDIA device"},
			{Name: "x264", Available: true},
		},
	}
	var asked []uint64
	e.apiSetEncoders(encoderFunc(func(got uint64) (api.Encoder, bool) {
		asked = append(asked, got)
		return want, got == id
	}))
	r = e.call("GET", "/streaming/streams/1", "")
	if r.status != http.StatusOK {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	s := r.stream(t) // strict decode: the object is part of api.Stream
	if s.Encoder == nil || !reflect.DeepEqual(*s.Encoder, want) {
		t.Fatalf("encoder %+v, want %+v (body %s)", s.Encoder, want, r.body)
	}
	if len(asked) != 1 || asked[0] != id {
		t.Fatalf("source asked for %v, want [%d]", asked, id)
	}
	// The list keeps its shape (one lookup per stream would not scale).
	r = e.call("GET", "/streaming/streams", "")
	if r.status != http.StatusOK || strings.Contains(string(r.body), `"encoder"`) {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	// Unknown to the source: no object.
	r = e.call("POST", "/streaming/streams", `{"name":"enc2"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = e.call("GET", "/streaming/streams/2", "")
	if r.status != http.StatusOK || strings.Contains(string(r.body), `"encoder"`) {
		t.Fatalf("get of a stream the source does not know: %d %s", r.status, r.body)
	}
}
