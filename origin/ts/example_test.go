package ts_test

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/origin/ts"
)

// Legacy HLS has its own hub consumer: New, Start, RegisterRoutes, and
// Close at shutdown. state (the node's store) may be nil in tests.
func Example() {
	h := hub.New(0)
	s, err := ts.New(ts.Config{}, h, nil, prometheus.NewRegistry(), slog.Default())
	if err != nil {
		panic(err)
	}
	if err := s.Start(context.Background()); err != nil {
		panic(err)
	}
	defer s.Close()
	mux := http.NewServeMux()
	s.RegisterRoutes(mux) // /hls/{id}/master.m3u8, /hls/{id}/{rendition}/index.m3u8, .../seg{n}.ts
}
