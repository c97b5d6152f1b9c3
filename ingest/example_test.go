package ingest_test

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/internal/hub"
)

// storeStreams stands for the node's stream store.
type storeStreams map[uint64]string

func (s storeStreams) LookupStream(id uint64) (string, bool, bool, error) {
	key, ok := s[id]
	return key, true, ok, nil
}

// Example wires the ingest into a node: a hub that the origin and the
// transcoder subscribe to, the stream store, and an HTTP mux that serves
// /whip/<id>_<key> and the Go Live page /live/<id>_<key>.
func Example() {
	h := hub.New(0)
	srv, err := ingest.New(ingest.Config{UDPPort: 8189, TCPPort: 8189}, ingest.Deps{
		Logger:  slog.Default(),
		Metrics: prometheus.NewRegistry(),
		Hub:     h,
		Streams: storeStreams{42: "secret"},
	})
	if err != nil {
		return
	}
	if err := srv.Start(context.Background()); err != nil {
		return
	}
	defer srv.Close()
	mux := http.NewServeMux()
	srv.RegisterRoutes(mux)
	// http.ListenAndServe(":8080", mux), and on stream deactivation:
	srv.Kick(42)
}
