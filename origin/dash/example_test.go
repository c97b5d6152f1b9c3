package dash_test

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/dash"
)

// The node mounts LL-DASH next to the origin's LL-HLS, over the same CMAF
// registry: /cmaf/{id}/index.mpd references the origin's media objects and
// its /time endpoint.
func Example() {
	h := hub.New(0)
	reg := prometheus.NewRegistry()
	o, err := origin.New(origin.Config{}, origin.Deps{Hub: h, Metrics: reg, Logger: slog.Default()})
	if err != nil {
		panic(err)
	}
	d, err := dash.New(dash.Config{}, o.Registry(), reg, slog.Default())
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	o.RegisterRoutes(mux)
	d.RegisterRoutes(mux)
	if err := o.Start(context.Background()); err != nil {
		panic(err)
	}
	defer o.Close()
	// http.ListenAndServe(addr, mux) ...
}
