package turn_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	pturn "github.com/pion/turn/v4"
	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/turn"
	"github.com/edgenode/edgenode/turn/turntest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// peer is a UDP socket standing in for the node's WebRTC media socket.
func newPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func apOf(c net.PacketConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

type client struct {
	*pturn.Client
	conn net.PacketConn
	t    testing.TB
}

// Allocate allocates and closes the relay when the test ends (the pion
// client's refresh timers run until then).
func (c *client) Allocate() (net.PacketConn, error) {
	relay, err := c.Client.Allocate()
	if err == nil {
		c.t.Cleanup(func() { _ = relay.Close() })
	}
	return relay, err
}

// dial connects a pion TURN client to srv over transport (udp, tcp, tls).
func dial(t testing.TB, srv *turntest.Server, transport, user, pass string) *client {
	t.Helper()
	a := srv.Addrs()
	var conn net.PacketConn
	var addr string
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = c, a.UDP.String()
	case "tcp":
		c, err := net.DialTimeout("tcp", a.TCP.String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = pturn.NewSTUNConn(c), a.TCP.String()
	case "tls":
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: srv.CertPool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
		c, err := d.DialContext(context.Background(), "tcp", a.TLS.String())
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = pturn.NewSTUNConn(c), a.TLS.String()
	default:
		t.Fatalf("transport %q", transport)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	c, err := pturn.NewClient(&pturn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: user, Password: pass, Realm: turn.DefaultRealm, LoggerFactory: lf,
		RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	return &client{Client: c, conn: conn, t: t}
}

func creds(t *testing.T, srv *turntest.Server, stream uint64) (string, string) {
	t.Helper()
	u, p, err := srv.Credentials(stream)
	if err != nil {
		t.Fatal(err)
	}
	return u, p
}

// turnCode extracts the STUN error code from a pion client error.
func turnCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	var tv stun.TurnError
	if errors.As(err, &tv) {
		return int(tv.ErrorCodeAttr.Code)
	}
	return 0
}

func readWithin(t *testing.T, c net.PacketConn, d time.Duration) ([]byte, net.Addr, error) {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFrom(buf)
	return buf[:n], from, err
}

// TestRelayToMediaAddress: over each client transport a client allocates,
// relays to the node's media socket and gets the answer back.
func TestRelayToMediaAddress(t *testing.T) {
	for _, tr := range []string{"udp", "tcp", "tls"} {
		t.Run(tr, func(t *testing.T) {
			media := newPeer(t)
			srv := turntest.Start(t, turntest.Config(), apOf(media))
			u, p := creds(t, srv, 42)
			c := dial(t, srv, tr, u, p)

			mapped, err := c.SendBindingRequest()
			if err != nil {
				t.Fatalf("STUN binding over %s: %v", tr, err)
			}
			if !strings.HasPrefix(mapped.String(), "127.0.0.1:") {
				t.Fatalf("mapped address %s", mapped)
			}

			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer relay.Close()
			if got := relay.LocalAddr().(*net.UDPAddr).IP.String(); got != "127.0.0.1" {
				t.Fatalf("relayed address %s", relay.LocalAddr())
			}
			msg := []byte("hello media " + tr)
			// The first datagram may race the CreatePermission it triggers: repeat.
			var got []byte
			var from net.Addr
			for i := 0; i < 20 && got == nil; i++ {
				if _, err := relay.WriteTo(msg, media.LocalAddr()); err != nil {
					t.Fatalf("write to media: %v", err)
				}
				if b, f, err := readWithin(t, media, 250*time.Millisecond); err == nil {
					got, from = b, f
				}
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("media got %q, want %q", got, msg)
			}
			if from.String() != relay.LocalAddr().String() {
				t.Fatalf("datagram came from %s, want relay %s", from, relay.LocalAddr())
			}
			if _, err := media.WriteTo([]byte("answer"), from); err != nil {
				t.Fatal(err)
			}
			b, pf, err := readWithin(t, relay, 5*time.Second)
			if err != nil || string(b) != "answer" || pf.String() != media.LocalAddr().String() {
				t.Fatalf("client got %q from %v (%v)", b, pf, err)
			}
			if v := metricValue(t, srv, "edgenode_turn_allocations", "transport", tr); v != 1 {
				t.Fatalf("allocations{transport=%s} = %v, want 1", tr, v)
			}
			if v := metricValue(t, srv, "edgenode_turn_relayed_packets_total", "direction", "from_peer"); v < 1 {
				t.Fatalf("relayed_packets_total{from_peer} = %v", v)
			}
		})
	}
}

// metricValue reads one series from the registry.
func metricValue(t *testing.T, srv *turntest.Server, name, label, value string) float64 {
	t.Helper()
	mfs, err := srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					ok = true
				}
			}
			if !ok {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{%s=%q} not found", name, label, value)
	return 0
}
