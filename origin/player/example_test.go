package player_test

import (
	"net/http"

	"github.com/edgenode/edgenode/origin/player"
)

// The page is served next to the origin; /player/{id} plays /cmaf/{id}/...
// and /hls/{id}/... from the same host (or ?base=<CDN>).
func Example() {
	p, err := player.New(player.Config{DefaultFormat: player.FormatLLHLS}, nil)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	p.RegisterRoutes(mux)
}
