// Package turntest starts a real edgenode TURN server on loopback for tests
// (after tailscale's net/stun/stuntest).
package turntest

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/turn"
)

// MapSecrets is an in-memory turn.Secrets with the store's semantics
// (generated values must not be empty).
type MapSecrets struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Secret implements turn.Secrets.
func (s *MapSecrets) Secret(name string, gen func() ([]byte, error)) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[name]; ok {
		return append([]byte(nil), v...), false, nil
	}
	v, err := gen()
	if err != nil {
		return nil, false, err
	}
	if len(v) == 0 {
		return nil, false, errors.New("turntest: generated secret is empty")
	}
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[name] = append([]byte(nil), v...)
	return v, true, nil
}

// PutSecret implements turn.Secrets.
func (s *MapSecrets) PutSecret(name string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[name] = append([]byte(nil), v...)
	return nil
}

// Get returns the stored value of name (nil when absent).
func (s *MapSecrets) Get(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.m[name]...)
}

// Server is a started TURN server on 127.0.0.1 with its dependencies.
type Server struct {
	*turn.Server
	Secrets  *MapSecrets // nil with StartWith
	Registry *prometheus.Registry
}

// Config returns a loopback configuration: all listeners on 127.0.0.1:0,
// relays bound to 127.0.0.1.
func Config() turn.Config {
	return turn.Config{
		UDPListen: "127.0.0.1:0",
		TCPListen: "127.0.0.1:0",
		TLSListen: "127.0.0.1:0",
		RelayBind: "127.0.0.1",
	}
}

// Start starts a server with cfg (use Config() as a base) and media as
// the node's media addresses; it is closed when the test ends.
func Start(tb testing.TB, cfg turn.Config, media ...netip.AddrPort) *Server {
	tb.Helper()
	return StartFunc(tb, cfg, func() []netip.AddrPort { return media })
}

// StartFunc is Start with the media addresses read from a function (e.g.
// a running ingest server's UDPAddrs).
func StartFunc(tb testing.TB, cfg turn.Config, media func() []netip.AddrPort) *Server {
	tb.Helper()
	secrets := &MapSecrets{}
	s := StartWith(tb, cfg, secrets, media)
	s.Secrets = secrets
	return s
}

// StartWith starts a server keeping its secret in secrets (e.g. the node's
// store); Server.Secrets is then nil.
func StartWith(tb testing.TB, cfg turn.Config, secrets turn.Secrets, media func() []netip.AddrPort) *Server {
	tb.Helper()
	reg := prometheus.NewRegistry()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	s := turn.New(cfg, turn.Deps{
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Metrics:    reg,
		Secrets:    secrets,
		MediaAddrs: media,
		DataDir:    tb.TempDir(),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		_ = s.Close()
		tb.Fatalf("turntest: start: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("turntest: close: %v", err)
		}
	})
	return &Server{Server: s, Registry: reg}
}

// CertPool returns a pool trusting the server's TLS certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	if c := s.Certificate(); c != nil {
		p.AddCert(c)
	}
	return p
}
