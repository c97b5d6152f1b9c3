package hwenc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/internal/hub"
)

// TestCloseBeforeStart: Close is safe without Start and twice; Start after
// Close refuses. Mode off starts nothing and says so.
func TestCloseBeforeStart(t *testing.T) {
	h := hub.New(0)
	m, err := hwenc.New(hwenc.Config{PluginDir: pluginDir}, hwenc.Deps{Hub: h, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Start(ctx); !errors.Is(err, hwenc.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}

	off, err := hwenc.New(hwenc.Config{Mode: hwenc.ModeOff}, hwenc.Deps{Hub: h, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if err := off.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st := off.Status(); st.Chosen != "" || st.Why == "" || len(st.Plugins) != 0 {
		t.Errorf("mode off status %+v", st)
	}
	// A source published now is not transcoded.
	pub, err := h.Publish(hub.Key{Stream: 1, Rendition: hub.Source}, hub.Session{ID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	pub.Close()
	if _, ok := off.StreamStatus(1); ok {
		t.Error("mode off transcodes")
	}
}
