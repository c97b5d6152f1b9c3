package turn_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/edgenode/edgenode/turn/turntest"
)

// forbidden are peer forms a client must never relay to by default
// (SPECS.md § TURN; coturn's DSA-4829 bypass went through 0.0.0.0 and [::]).
var forbidden = []string{
	"127.0.0.1:9", "127.255.255.254:9", "0.0.0.0:9", "0.1.2.3:9", "[::]:9", "[::1]:9",
	"[::ffff:127.0.0.1]:9", "[::ffff:10.0.0.1]:9", "[::ffff:0.0.0.0]:9", "[::127.0.0.1]:9",
	"10.0.0.1:9", "10.255.255.255:9", "172.16.0.1:9", "172.31.255.254:9", "192.168.1.1:9",
	"100.64.0.1:9", "100.127.255.254:9", "169.254.169.254:80", "169.254.0.1:9",
	"[fe80::1]:9", "[fc00::1]:9", "[fd12:3456::1]:9", "[ff02::1]:9", "224.0.0.1:9",
	"239.255.255.250:1900", "255.255.255.255:9", "192.0.0.1:9", "192.0.2.1:9",
	"198.18.0.1:9", "198.19.255.254:9", "198.51.100.1:9", "203.0.113.1:9", "240.0.0.1:9",
	"[64:ff9b::7f00:1]:9", "[64:ff9b:1::a00:1]:9", "[2001:db8::1]:9", "[2002:7f00:1::1]:9",
	"[2001::1]:9", "[100::1]:9", "[fec0::1]:9",
	// Public addresses are refused too: the default policy admits only media.
	"8.8.8.8:53", "[2606:4700:4700::1111]:53",
}

// TestForbiddenPeersGet403 relays to every forbidden form over a real
// allocation and expects 403 each time, plus the media address's own IP on
// another port (pion's permission handler only sees IPs).
func TestForbiddenPeersGet403(t *testing.T) {
	media := newPeer(t)
	srv := turntest.Start(t, turntest.Config(), apOf(media))
	u, p := creds(t, srv, 7)
	c := dial(t, srv, "udp", u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	mediaAP := apOf(media)
	cases := append([]string{netip.AddrPortFrom(mediaAP.Addr(), mediaAP.Port()+1).String()}, forbidden...)
	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, s := range cases {
		ap := netip.MustParseAddrPort(s)
		err := c.CreatePermission(net.UDPAddrFromAddrPort(ap))
		if code := turnCode(err); code != 403 {
			t.Errorf("CreatePermission %s: got %v (code %d), want 403", s, err, code)
		}
	}
	if got := metricValue(t, srv, "edgenode_turn_denied_peers_total", "", ""); got < float64(len(cases)) {
		t.Errorf("denied_peers_total = %v, want >= %d", got, len(cases))
	}
	// Positive control on the same allocation: the media address is allowed.
	if err := c.CreatePermission(media.LocalAddr()); err != nil {
		t.Fatalf("CreatePermission media %s: %v", media.LocalAddr(), err)
	}
}

// TestPortEnforcedOnRelay: with a permission for the media IP, datagrams to
// another port of that IP are dropped by the relay socket, while the media
// port receives.
func TestPortEnforcedOnRelay(t *testing.T) {
	media, other := newPeer(t), newPeer(t)
	srv := turntest.Start(t, turntest.Config(), apOf(media))
	u, p := creds(t, srv, 8)
	c := dial(t, srv, "udp", u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if err := c.CreatePermission(media.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got := false
	for i := 0; i < 20 && !got; i++ {
		_, _ = relay.WriteTo([]byte("sneak"), other.LocalAddr())
		if _, err := relay.WriteTo([]byte("legit"), media.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if b, _, err := readWithin(t, media, 250*time.Millisecond); err == nil && string(b) == "legit" {
			got = true
		}
	}
	if !got {
		t.Fatal("media port never received")
	}
	if b, from, err := readWithin(t, other, 300*time.Millisecond); err == nil {
		t.Fatalf("non-media port received %q from %s", b, from)
	}
	// And a peer on a non-media port cannot inject toward the client.
	if _, err := other.WriteTo([]byte("inject"), relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := media.WriteTo([]byte("reply"), relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	b, from, err := readWithin(t, relay, 5*time.Second)
	if err != nil || string(b) != "reply" || from.String() != media.LocalAddr().String() {
		t.Fatalf("client got %q from %v (%v), want the media reply only", b, from, err)
	}
}
