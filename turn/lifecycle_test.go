package turn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/edgenode/edgenode/turn"
	"github.com/edgenode/edgenode/turn/turntest"
)

// TestCloseAfterPartialStart: a listener that cannot bind fails Start; Close
// then releases what was bound (the UDP port is free again) and is idempotent.
func TestCloseAfterPartialStart(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := turntest.Config()
	cfg.UDPListen = "127.0.0.1:0"
	cfg.TCPListen = busy.Addr().String()
	s := turn.New(cfg, turn.Deps{Secrets: &turntest.MapSecrets{}, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Start(ctx); err == nil {
		t.Fatal("Start succeeded on a busy TCP port")
	}
	udp := s.Addrs().UDP
	if !udp.IsValid() {
		t.Fatal("UDP listener was not bound before the failure")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after partial start: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(udp))
	if err != nil {
		t.Fatalf("UDP port still held after Close: %v", err)
	}
	_ = c.Close()
	if err := s.Start(ctx); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

// TestCloseEndsAllocations: Close tears down live TCP streams and relays.
func TestCloseEndsAllocations(t *testing.T) {
	cfg := turntest.Config()
	s := turn.New(cfg, turn.Deps{Secrets: &turntest.MapSecrets{}, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := &turntest.Server{Server: s}
	u, p, _ := s.Credentials(1)
	var relays []net.PacketConn
	for _, tr := range []string{"udp", "tcp", "tls"} {
		c := dial(t, srv, tr, u, p)
		r, err := c.Allocate()
		if err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		relays = append(relays, r)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close with live allocations: %v", err)
	}
	// Relay ports are released.
	for _, r := range relays {
		c, err := net.ListenUDP("udp4", r.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Errorf("relay %s still bound: %v", r.LocalAddr(), err)
			continue
		}
		_ = c.Close()
	}
}

func TestDisabled(t *testing.T) {
	off := false
	s := turn.New(turn.Config{Enabled: &off}, turn.Deps{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.ICEServers(1) != nil {
		t.Fatal("disabled server hands out ICE servers")
	}
	if err := s.RotateSecret(); !errors.Is(err, turn.ErrNotStarted) {
		t.Fatalf("RotateSecret on a disabled server: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Example shows how the node wires the TURN server: the node's secret
// store, the ingest media socket as the only relay peer, and fresh
// credentials for each WHIP session's Link headers.
func Example() {
	s := turn.New(turn.Config{
		UDPListen: "127.0.0.1:0", TCPListen: "127.0.0.1:0", TLSListen: turn.Off, RelayBind: "127.0.0.1",
	}, turn.Deps{
		Secrets:    &turntest.MapSecrets{},
		MediaAddrs: nil, // ingest's UDPAddrs in the node
	})
	if err := s.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	for _, ice := range s.ICEServers(42) {
		for _, u := range ice.URLs {
			fmt.Println(u[:5], ice.Username != "")
		}
	}
	// Output:
	// stun: false
	// turn: true
	// turn: true
}
