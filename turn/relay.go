package turn

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens per second, at most burst saved.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate, burst float64) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst}
}

func (b *bucket) allow(now time.Time, n float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// ipLimiter rate-limits Allocate attempts per client IP.
type ipLimiter struct {
	rate, burst float64
	mu          sync.Mutex
	m           map[netip.Addr]*bucket
}

func newIPLimiter(rate float64, burst int) *ipLimiter {
	return &ipLimiter{rate: rate, burst: float64(burst), m: map[netip.Addr]*bucket{}}
}

func (l *ipLimiter) allow(ip netip.Addr, now time.Time) bool {
	l.mu.Lock()
	b := l.m[ip]
	if b == nil {
		b = newBucket(l.rate, l.burst)
		l.m[ip] = b
	}
	l.mu.Unlock()
	return b.allow(now, 1)
}

// prune forgets client IPs whose bucket has refilled.
func (l *ipLimiter) prune(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, b := range l.m {
		b.mu.Lock()
		idle := now.Sub(b.last) > full
		b.mu.Unlock()
		if idle {
			delete(l.m, ip)
		}
	}
}

// relayGen is the pion RelayAddressGenerator of one listener: it binds relay
// sockets, enforces the node-wide allocation cap and wraps every relay
// socket so that the policy sees every (ip, port) — pion's PermissionHandler
// only sees the peer IP.
type relayGen struct {
	s         *Server
	transport string // client transport of the listener: udp, tcp, tls
}

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	s := g.s
	s.mu.Lock()
	if s.relays >= s.cfg.TotalQuota {
		s.mu.Unlock()
		s.m.rejected.WithLabelValues("capacity").Inc()
		return nil, nil, ErrCapacity // pion answers 508 (RFC 8656 §7.2)
	}
	s.relays++
	s.mu.Unlock()

	pc, err := g.listen(network, requestedPort)
	if err != nil {
		s.mu.Lock()
		s.relays--
		s.mu.Unlock()
		return nil, nil, err
	}
	local := pc.LocalAddr().(*net.UDPAddr)
	rc := &relayConn{
		PacketConn: pc,
		s:          s,
		transport:  g.transport,
		out:        newBucket(float64(s.cfg.BandwidthCap), float64(s.cfg.BandwidthCap)),
		in:         newBucket(float64(s.cfg.BandwidthCap), float64(s.cfg.BandwidthCap)),
	}
	rc.timer = time.AfterFunc(s.cfg.MaxLifetime, func() {
		s.log.Info("turn: allocation reached max_lifetime", "relay", local.String(), "max_lifetime", s.cfg.MaxLifetime)
		_ = rc.Close() // pion's relay read loop then deletes the allocation
	})
	s.m.allocs.WithLabelValues(g.transport).Inc()
	s.m.allocsTotal.WithLabelValues(g.transport).Inc()
	return rc, &net.UDPAddr{IP: s.relayIP.AsSlice(), Port: local.Port}, nil
}

func (g *relayGen) listen(network string, requestedPort int) (net.PacketConn, error) {
	cfg := g.s.cfg
	if requestedPort != 0 || cfg.RelayPortMin == 0 {
		return net.ListenPacket(network, net.JoinHostPort(cfg.RelayBind, strconv.Itoa(requestedPort))) //nolint:noctx
	}
	span := int(cfg.RelayPortMax) - int(cfg.RelayPortMin) + 1
	var err error
	for range 16 {
		port := int(cfg.RelayPortMin) + rand.IntN(span) //nolint:gosec // port choice needs no crypto
		var pc net.PacketConn
		if pc, err = net.ListenPacket(network, net.JoinHostPort(cfg.RelayBind, strconv.Itoa(port))); err == nil { //nolint:noctx
			return pc, nil
		}
	}
	return nil, fmt.Errorf("%w: no free relay port in %d..%d: %w", ErrCapacity, cfg.RelayPortMin, cfg.RelayPortMax, err)
}

// AllocateConn would create an RFC 6062 TCP relay; WebRTC needs none (SPECS.md § TURN).
func (g *relayGen) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, errors.ErrUnsupported
}

// relayConn is one allocation's relay socket: policy on every datagram in
// both directions, bandwidth cap, metrics, lifetime cap.
type relayConn struct {
	net.PacketConn
	s         *Server
	transport string
	out, in   *bucket
	timer     *time.Timer
	once      sync.Once
}

func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.s.policy.Allowed(udpAddrPort(addr)) {
		c.s.m.dropPolicy.Inc()
		return 0, fmt.Errorf("%w: %s", ErrPeerDenied, addr)
	}
	if !c.out.allow(time.Now(), float64(len(p))) {
		c.s.m.dropBandwidth.Inc()
		return len(p), nil // like a congested link: the datagram is lost
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.s.m.toPeerBytes.Add(float64(n))
		c.s.m.toPeerPackets.Inc()
	}
	return n, err
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if !c.s.policy.Allowed(udpAddrPort(addr)) {
			c.s.m.dropPolicy.Inc()
			continue
		}
		if !c.in.allow(time.Now(), float64(n)) {
			c.s.m.dropBandwidth.Inc()
			continue
		}
		c.s.m.fromPeerBytes.Add(float64(n))
		c.s.m.fromPeerPackets.Inc()
		return n, addr, nil
	}
}

func (c *relayConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.timer.Stop()
		err = c.PacketConn.Close()
		c.s.m.allocs.WithLabelValues(c.transport).Dec()
		c.s.mu.Lock()
		c.s.relays--
		c.s.relaysGone.Broadcast()
		c.s.mu.Unlock()
	})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
