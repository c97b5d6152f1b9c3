package ts

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/mediatest"
)

func benchStream(b *testing.B) *mediatest.Stream {
	return mediatest.Generate(b, mediatest.Options{Pieces: []mediatest.Piece{{Width: 640, Height: 360, Duration: 4 * time.Second}}})
}

func payloadBytes(s *mediatest.Stream) int64 {
	var n int64
	for _, sm := range s.Samples {
		n += int64(sm.AU.Size())
	}
	return n
}

// BenchmarkPackage: the TS packager (segmenting, SPS tracking, window,
// numbering) over 4 s of 640×360 H.264 + Opus, against the bare mpegts
// muxer writing the same access units (baseline): the ratio is the
// packager's overhead.
func BenchmarkPackage(b *testing.B) {
	s := benchStream(b)
	b.Run("baseline-mpegts-writer", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(payloadBytes(s))
		for b.Loop() {
			vt := &mpegts.Track{Codec: &mpegts.CodecH264{}}
			w := &mpegts.Writer{W: io.Discard, Tracks: []*mpegts.Track{vt}}
			if err := w.Initialize(); err != nil {
				b.Fatal(err)
			}
			for _, sm := range s.Samples {
				if sm.AU.Codec == media.CodecH264 {
					if err := w.WriteH264(vt, sm.AU.PTS+tsOffset, sm.AU.DTS+tsOffset, sm.AU.Payload); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
	b.Run("packager", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(payloadBytes(s))
		srv, err := New(Config{}, hub.New(0), nil, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			r := newRendition(srv, hub.Key{Stream: 1, Rendition: hub.Source})
			r.loaded = true
			if err := r.startSession(&hub.Session{Tracks: s.Tracks}); err != nil {
				b.Fatal(err)
			}
			for _, sm := range s.Samples {
				if err := r.writeAU(sm.Track, sm.AU, 0); err != nil {
					b.Fatal(err)
				}
			}
			r.endSession()
		}
	})
}

// BenchmarkServeSegment: a 2 s TS segment served over loopback HTTP to
// parallel clients (b.SetParallelism: 200 goroutines on 2 cores), against
// http.ServeContent of the same bytes from a bare handler (baseline).
func BenchmarkServeSegment(b *testing.B) {
	s := benchStream(b)
	srv, err := New(Config{}, hub.New(0), nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := newRendition(srv, hub.Key{Stream: 1, Rendition: hub.Source})
	r.loaded = true
	if err := r.startSession(&hub.Session{Tracks: s.Tracks}); err != nil {
		b.Fatal(err)
	}
	for _, sm := range s.Samples {
		_ = r.writeAU(sm.Track, sm.AU, 0)
	}
	r.endSession()
	srv.streams[1] = &stream{id: 1, renditions: map[string]*rendition{hub.Source: r}}
	seg := r.segs[0].data
	mux := http.NewServeMux()
	srv.RegisterRoutes(mux)
	mux.HandleFunc("GET /baseline", func(w http.ResponseWriter, req *http.Request) {
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(seg))
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	for _, c := range []struct{ name, path string }{{"baseline-servecontent", "/baseline"}, {"segment", "/hls/1/source/seg0.ts"}} {
		b.Run(c.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 256}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			b.SetBytes(int64(len(seg)))
			b.ReportAllocs()
			b.SetParallelism(100) // × GOMAXPROCS(2) = 200 clients
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := cl.Get(hs.URL + c.path)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if n != int64(len(seg)) {
						b.Errorf("%d bytes", n)
						return
					}
				}
			})
		})
	}
}
