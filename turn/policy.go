package turn

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// alwaysDenied can never be relayed to, whatever allowed_peers says:
// "this host" addresses (Linux delivers 0.0.0.0 and :: to loopback — the
// coturn bypass fixed in DSA-4829), multicast and limited broadcast.
var alwaysDenied = mustPrefixes(
	"0.0.0.0/8", "::/128", "224.0.0.0/4", "255.255.255.255/32", "ff00::/8",
)

// specialPurpose lists the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (RFC 6890 and updates) plus the private, shared and link-local
// ranges SPECS.md § TURN names. IPv6 outside 2000::/3 is refused separately.
var specialPurpose = mustPrefixes(
	// IPv4 (iana-ipv4-special-registry)
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24",
	"192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24",
	"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
	"240.0.0.0/4", "255.255.255.255/32",
	// IPv6 (iana-ipv6-special-registry); ::/8 covers ::, ::1, IPv4-compatible
	// and IPv4-mapped forms, 64:ff9b::/96 NAT64 embeds any IPv4 address.
	"::/8", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
	"2001:db8::/32", "2002::/16", "2620:4f:8000::/48", "3fff::/20", "5f00::/16",
	"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
)

var globalUnicast6 = netip.MustParsePrefix("2000::/3")

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// allowEntry is one allowed_peers entry: a prefix, optionally one port.
type allowEntry struct {
	prefix netip.Prefix
	port   uint16 // 0: any port
}

func parseAllowed(list []string) ([]allowEntry, error) {
	out := make([]allowEntry, 0, len(list))
	for _, s := range list {
		var e allowEntry
		switch {
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", s, err)
			}
			e.prefix = unmapPrefix(p.Masked())
		default:
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				a, err2 := netip.ParseAddr(s)
				if err2 != nil {
					return nil, fmt.Errorf("entry %q must be a CIDR or ip:port: %w", s, err)
				}
				ap = netip.AddrPortFrom(a, 0)
			}
			a := ap.Addr().Unmap().WithZone("")
			e.prefix, e.port = netip.PrefixFrom(a, a.BitLen()), ap.Port()
		}
		for _, d := range alwaysDenied {
			if d.Overlaps(e.prefix) && e.prefix.Bits() >= d.Bits() {
				return nil, fmt.Errorf("entry %q lies in %s, which is never relayed to", s, d)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// Policy decides which peers a TURN client may relay to (SPECS.md § TURN:
// "on an ingest node the only legitimate peer is the node's own media
// address"). It is safe for concurrent use.
type Policy struct {
	allowed []allowEntry
	media   func() []netip.AddrPort

	mu        sync.Mutex
	cached    []netip.AddrPort
	fetchedAt time.Time
}

// mediaRefresh bounds how stale the cached media address list may be.
const mediaRefresh = time.Second

// NewPolicy builds a relay policy from allowed_peers entries and the node's
// own media addresses (may be nil).
func NewPolicy(allowedPeers []string, media func() []netip.AddrPort) (*Policy, error) {
	a, err := parseAllowed(allowedPeers)
	if err != nil {
		return nil, err
	}
	return &Policy{allowed: a, media: media}, nil
}

func (p *Policy) mediaAddrs() []netip.AddrPort {
	if p.media == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); p.cached == nil || now.Sub(p.fetchedAt) > mediaRefresh {
		p.cached, p.fetchedAt = expandUnspecified(p.media()), now
	}
	return p.cached
}

// expandUnspecified replaces a media socket bound to 0.0.0.0 or [::] by
// the machine's own addresses at that port (what its candidates carry).
func expandUnspecified(in []netip.AddrPort) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(in))
	var local []netip.Addr
	for _, ap := range in {
		if !ap.Addr().IsUnspecified() {
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()))
			continue
		}
		if local == nil {
			local = localAddrs()
		}
		for _, a := range local {
			if a.Is4() || ap.Addr().Is6() { // [::] is dual-stack; 0.0.0.0 is IPv4 only
				out = append(out, netip.AddrPortFrom(a, ap.Port()))
			}
		}
	}
	return out
}

func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return []netip.Addr{}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// Allowed reports whether relaying to peer is permitted.
func (p *Policy) Allowed(peer netip.AddrPort) bool {
	a := peer.Addr().Unmap().WithZone("")
	if !a.IsValid() || peer.Port() == 0 {
		return false
	}
	for _, d := range alwaysDenied {
		if d.Contains(a) {
			return false
		}
	}
	for _, m := range p.mediaAddrs() {
		ma := m.Addr().Unmap().WithZone("")
		if ma == a && m.Port() == peer.Port() {
			return true
		}
	}
	for _, e := range p.allowed {
		if !e.prefix.Contains(a) || (e.port != 0 && e.port != peer.Port()) {
			continue
		}
		if !special(a, e.prefix) {
			return true
		}
	}
	return false
}

// AllowedIP reports whether some port of ip may be relayed to; it backs
// pion's PermissionHandler, which only sees the IP. Ports are enforced on
// the relay socket and in CreatePermission/ChannelBind.
func (p *Policy) AllowedIP(ip netip.Addr) bool {
	a := ip.Unmap().WithZone("")
	for _, m := range p.mediaAddrs() {
		if m.Addr().Unmap().WithZone("") == a && p.Allowed(m) {
			return true
		}
	}
	for _, e := range p.allowed {
		port := e.port
		if port == 0 {
			port = 1
		}
		if e.prefix.Contains(a) && p.Allowed(netip.AddrPortFrom(a, port)) {
			return true
		}
	}
	return false
}

// special reports whether a lies in a special-purpose range that the
// allowing entry does not explicitly carve out (entry inside the range).
func special(a netip.Addr, entry netip.Prefix) bool {
	// IPv6 outside global unicast 2000::/3 is reserved, local or multicast.
	if a.Is6() && !globalUnicast6.Contains(a) && (globalUnicast6.Overlaps(entry) || entry.Bits() < 8) {
		return true
	}
	for _, s := range specialPurpose {
		if s.Contains(a) && !(s.Overlaps(entry) && entry.Bits() >= s.Bits()) {
			return true
		}
	}
	return false
}

// addrPortOf converts a net.Addr or IP/port pair to a netip.AddrPort.
func addrPortOf(ip net.IP, port int) netip.AddrPort {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port < 0 || port > 65535 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

func udpAddrPort(addr net.Addr) netip.AddrPort {
	switch a := addr.(type) {
	case *net.UDPAddr:
		return addrPortOf(a.IP, a.Port)
	case *net.TCPAddr:
		return addrPortOf(a.IP, a.Port)
	}
	ap, _ := netip.ParseAddrPort(addr.String())
	return ap
}

// AddrPorts converts socket addresses (e.g. ingest's UDPAddrs) for
// Deps.MediaAddrs; addresses that are not IP sockets are skipped.
func AddrPorts(addrs []net.Addr) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		if ap := udpAddrPort(a); ap.IsValid() {
			out = append(out, ap)
		}
	}
	return out
}
