package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pion's package-level timers and the HTTP keep-alive pool.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// streamStore is the tiny in-test Streams: the node's store in real life.
type streamStore struct {
	mu   sync.Mutex
	m    map[uint64]streamRec
	fail error // every lookup fails with it when set
}

type streamRec struct {
	key    string
	active bool
}

func (s *streamStore) LookupStream(id uint64) (string, bool, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return "", false, false, s.fail
	}
	r, ok := s.m[id]
	return r.key, r.active, ok, nil
}

func (s *streamStore) set(id uint64, key string, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = streamRec{key, active}
}

// env is a running ingest server on loopback with its hub and stream store.
type env struct {
	srv     *ingest.Server
	hub     *hub.Hub
	streams *streamStore
	base    string
	reg     *prometheus.Registry
	http    *httptest.Server
}

func testConfig() ingest.Config {
	return ingest.Config{UDPPort: -1, TCPPort: -1, PostRate: 1000, PostBurst: 1000}
}

func newEnv(t *testing.T, cfg ingest.Config) *env { return newEnvTB(t, cfg) }

// newEnvB is newEnv for benchmarks (quiet logs).
func newEnvB(b *testing.B) *env { return newEnvTB(b, testConfig()) }

func newEnvTB(t testing.TB, cfg ingest.Config) *env {
	t.Helper()
	e := &env{hub: hub.New(0), streams: &streamStore{m: map[uint64]streamRec{}}, reg: prometheus.NewRegistry()}
	e.streams.set(42, "secret", true)
	e.streams.set(7, "seven", false)
	level := slog.LevelWarn
	if _, isB := t.(*testing.B); isB {
		level = slog.LevelError
	} else if testing.Verbose() {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := ingest.New(cfg, ingest.Deps{Logger: log, Metrics: e.reg, Hub: e.hub, Streams: e.streams})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	mux := http.NewServeMux()
	srv.RegisterRoutes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	e.http = httptest.NewServer(mux)
	e.base = e.http.URL
	t.Cleanup(func() {
		e.http.CloseClientConnections()
		e.http.Close()
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	return e
}

// metrics returns the /metrics text.
func (e *env) metrics(t *testing.T) string {
	t.Helper()
	res, err := http.Get(e.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// collected is what a hub subscriber saw.
type collected struct {
	session *hub.Session
	video   []*media.AccessUnit
	audio   []*media.AccessUnit
	missed  uint64
	ended   bool
}

// collect reads sub until cond holds or ctx ends.
func collect(ctx context.Context, t *testing.T, sub *hub.Subscription, cond func(*collected) bool) *collected {
	t.Helper()
	c := &collected{}
	for !cond(c) {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("hub: %v after %d video / %d audio access units", err, len(c.video), len(c.audio))
		}
		c.missed += ev.Missed
		switch ev.Kind {
		case hub.SessionStart:
			c.session = ev.Session
		case hub.SessionEnd:
			c.ended = true
		case hub.AccessUnit:
			if c.session == nil {
				continue // joined mid-session
			}
			tr := c.session.Tracks[ev.Track]
			if tr.Codec == media.CodecH264 {
				c.video = append(c.video, ev.AU)
			} else {
				c.audio = append(c.audio, ev.AU)
			}
		}
	}
	return c
}

func nalTypes(au *media.AccessUnit) []int {
	var out []int
	for _, n := range au.Payload {
		out = append(out, int(n[0]&0x1f))
	}
	return out
}

func count(xs []int, v int) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}

func metricHas(text, series string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, series) {
			return true
		}
	}
	return false
}
