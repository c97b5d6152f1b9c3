package hwenc_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

// How the node wires the transcoder: after Start, every source rendition
// published into the hub gets its ladder, published back as
// hub.Key{Stream, "720p"} etc.
func ExampleNew() {
	h := hub.New(0)
	m, err := hwenc.New(hwenc.Config{
		Mode:      hwenc.ModeAuto,
		PluginDir: "bin/plugins",
		Ladder: []media.Rendition{
			{Name: hub.Source},
			{Name: "720p", Width: 1280, Height: 720, Bitrate: 2_500_000},
			{Name: "360p", Width: 640, Height: 360, Bitrate: 600_000},
		},
		FallbackAfter: 3,
	}, hwenc.Deps{Logger: slog.Default(), Metrics: prometheus.NewRegistry(), Hub: h})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	st := m.Status()
	fmt.Println("chosen:", st.Chosen, "-", st.Why)
}
