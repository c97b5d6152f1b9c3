package turn

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestPolicyTable(t *testing.T) {
	media := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("203.0.113.9:5000"),
		netip.MustParseAddrPort("0.0.0.0:6000")}
	p, err := NewPolicy([]string{"198.51.100.0/24", "10.1.2.3:9000", "8.8.0.0/16", "0.0.0.0/0", "2001:4860::/32"},
		func() []netip.AddrPort { return media })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer string
		want bool
	}{
		{"127.0.0.1:5000", true},          // media
		{"[::ffff:127.0.0.1]:5000", true}, // same socket, mapped form
		{"127.0.0.1:5001", false},         // media IP, other port
		{"203.0.113.9:5000", true},        // media in a documentation range: exact match wins
		{"203.0.113.10:5000", false},      // special range, only 0.0.0.0/0 covers it
		{"0.0.0.0:6000", false},           // unspecified media entry is ignored
		{"198.51.100.7:1", true},          // carve-out inside TEST-NET-2
		{"10.1.2.3:9000", true},           // ip:port carve-out in 10/8
		{"10.1.2.3:9001", false},          // wrong port
		{"10.1.2.4:9000", false},          // not listed
		{"8.8.8.8:53", true},              // public, listed
		{"1.1.1.1:53", true},              // public, covered by 0.0.0.0/0
		{"169.254.169.254:80", false},     // 0.0.0.0/0 does not open special ranges
		{"192.168.0.1:80", false},         //
		{"[2001:4860::8888]:53", true},    // public v6, listed
		{"[2001:db8::1]:53", false},       // documentation v6
		{"[fe80::1%eth0]:53", false},      // link-local with zone
		{"[::]:5000", false}, {"[::1]:5000", false}, {"0.0.0.0:5000", false},
		{"224.0.0.1:5000", false}, {"255.255.255.255:5000", false},
		{"8.8.8.8:0", false}, // port 0
	} {
		if got := p.Allowed(netip.MustParseAddrPort(c.peer)); got != c.want {
			t.Errorf("Allowed(%s) = %v, want %v", c.peer, got, c.want)
		}
	}
	if !p.AllowedIP(netip.MustParseAddr("127.0.0.1")) || p.AllowedIP(netip.MustParseAddr("127.0.0.2")) {
		t.Error("AllowedIP loopback")
	}
}

func TestDefaultPolicyOnlyMedia(t *testing.T) {
	p, err := NewPolicy(nil, func() []netip.AddrPort { return []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:4000")} })
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"8.8.8.8:53", "127.0.0.1:4000", "192.0.2.1:4001", "[2606:4700::1111]:53"} {
		if p.Allowed(netip.MustParseAddrPort(s)) {
			t.Errorf("default policy allowed %s", s)
		}
	}
	if !p.Allowed(netip.MustParseAddrPort("192.0.2.1:4000")) {
		t.Error("media refused")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	for _, c := range []struct {
		cfg Config
		key string
	}{
		{Config{UDPListen: "nope"}, "'udp_listen'"},
		{Config{TCPListen: "1.2.3.4:70000"}, "'tcp_listen'"},
		{Config{TLSListen: "host.example:443"}, "'tls_listen'"},
		{Config{UDPListen: Off, TCPListen: Off, TLSListen: Off}, "at least one"},
		{Config{RelayIP: "::1"}, "'relay_ip'"},
		{Config{RelayBind: "x"}, "'relay_bind'"},
		{Config{RelayPortMin: 5000}, "'relay_port_min'"},
		{Config{RelayPortMin: 6000, RelayPortMax: 5000}, "'relay_port_min'"},
		{Config{CertFile: "a.pem"}, "'cert_file'"},
		{Config{CredentialTTL: 48 * time.Hour}, "'credential_ttl'"},
		{Config{MaxLifetime: -time.Second}, "'max_lifetime'"},
		{Config{AllowedPeers: []string{"example.com"}}, "'allowed_peers'"},
		{Config{AllowedPeers: []string{"0.0.0.0/32"}}, "never relayed"},
		{Config{AllowedPeers: []string{"[::]:80"}}, "never relayed"},
		{Config{AllowedPeers: []string{"239.1.1.1:5000"}}, "never relayed"},
		{Config{UserQuota: -1}, "'user_quota'"},
		{Config{BandwidthCap: -1}, "'bandwidth_cap'"},
		{Config{AllocRate: -1}, "'alloc_rate'"},
	} {
		err := c.cfg.Validate()
		if err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%+v: got %v, want error naming %s", c.cfg, err, c.key)
		}
	}
	off := false
	if err := (Config{Enabled: &off, UDPListen: "garbage"}).Validate(); err != nil {
		t.Errorf("disabled config validated: %v", err)
	}
}

func TestParseUsername(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		in   string
		user string
		ok   bool
	}{
		{"1800000060:42", "42", true},
		{"1800000060:a:b", "a:b", true},
		{"1800000000:42", "", false}, // expires now
		{"1799999999:42", "", false},
		{"1800086401:42", "", false}, // beyond 24h
		{"1800086400:42", "42", true},
		{":42", "", false}, {"abc:42", "", false}, {"-5:42", "", false}, {"42", "", false},
		{"1800000060:", "", false}, {"99999999999999999999:1", "", false},
	} {
		_, user, err := ParseUsername(c.in, now, 24*time.Hour)
		if (err == nil) != c.ok || (c.ok && user != c.user) {
			t.Errorf("ParseUsername(%q) = %q, %v; want ok=%v user %q", c.in, user, err, c.ok, c.user)
		}
		if err != nil && !errors.Is(err, ErrBadCredential) {
			t.Errorf("ParseUsername(%q): %v is not ErrBadCredential", c.in, err)
		}
	}
	// TURN REST draft §2.2 example vector: HMAC-SHA1 over the username.
	if got := Password([]byte("north"), "1800000060:42"); len(got) != 28 {
		t.Errorf("password %q is not base64 of 20 bytes", got)
	}
}

func TestFrameLen(t *testing.T) {
	for _, c := range []struct {
		b      []byte
		n      int
		ok     bool
		hasErr bool
	}{
		{[]byte{0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0}, 12, true, false}, // ChannelData padded to 4
		{[]byte{0x40, 0x00, 0x00, 0x05, 1, 2, 3}, 12, false, false},
		{[]byte{0x00, 0x01}, 0, false, false},
		{append([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 12)...), 20, true, false},
		{append([]byte{0x00, 0x01, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef}, make([]byte, 12)...), 0, false, true},
		{append([]byte{0x16, 0x03, 0x01, 0x02, 0x00}, make([]byte, 20)...), 0, false, true}, // TLS on the TCP port
		{[]byte{0x80, 0, 0, 0}, 0, false, true},
	} {
		n, ok, err := frameLen(c.b)
		if (err != nil) != c.hasErr || ok != c.ok || (ok && n != c.n) {
			t.Errorf("frameLen(% x) = %d %v %v", c.b, n, ok, err)
		}
	}
}

func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"1800000060:42", "x", ":", "1800000060:", "-1:1", "18446744073709551616:1"} {
		f.Add(s)
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, s string) {
		exp, _, err := ParseUsername(s, now, 24*time.Hour)
		if err == nil && (!exp.After(now) || exp.Sub(now) > 24*time.Hour) {
			t.Fatalf("accepted %q with expiry %v", s, exp)
		}
	})
}

func FuzzFrameLen(f *testing.F) {
	f.Add([]byte{0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0})
	f.Add(append([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 12)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok, err := frameLen(b)
		if ok && (err != nil || n < 4 || n > len(b) || n > maxFrame+3) {
			t.Fatalf("frameLen(% x) = %d %v %v", b, n, ok, err)
		}
	})
}

func FuzzAllowedPeers(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "127.0.0.1:9", "::/0", "[::ffff:0.0.0.0]:1", "0.0.0.0/0", "::ffff:0:0/96"} {
		f.Add(s, "127.0.0.1:80")
	}
	f.Fuzz(func(t *testing.T, entry, peer string) {
		p, err := NewPolicy([]string{entry}, nil)
		if err != nil {
			return
		}
		ap, err := netip.ParseAddrPort(peer)
		if err != nil {
			return
		}
		// Whatever an operator allows, unspecified, multicast and broadcast stay refused.
		a := ap.Addr().Unmap()
		if p.Allowed(ap) && (a.IsUnspecified() || a.IsMulticast() || a == netip.MustParseAddr("255.255.255.255") ||
			netip.MustParsePrefix("0.0.0.0/8").Contains(a)) {
			t.Fatalf("entry %q allowed %s", entry, ap)
		}
	})
}

func TestConfigYAML(t *testing.T) {
	const doc = `
enabled: true
realm: example.org
udp_listen: "0.0.0.0:3478"
tcp_listen: "0.0.0.0:3478"
tls_listen: ":443"
public_host: turn.example.org
relay_ip: 203.0.113.5
relay_bind: 0.0.0.0
relay_port_min: 49152
relay_port_max: 65535
cert_file: /etc/edgenode/turn.pem
key_file: /etc/edgenode/turn.key
credential_ttl: 1h
max_ttl: 24h
secret_grace: 48h
allowed_peers: ["198.51.100.0/24", "10.0.0.7:8189"]
user_quota: 4
total_quota: 200
max_lifetime: 12h
bandwidth_cap: 2500000
alloc_rate: 2.5
alloc_burst: 10
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.CredentialTTL != time.Hour || c.MaxLifetime != 12*time.Hour || c.AllocRate != 2.5 || len(c.AllowedPeers) != 2 || !c.IsEnabled() {
		t.Fatalf("decoded %+v", c)
	}
}
