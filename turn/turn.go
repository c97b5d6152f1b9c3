// Package turn is edgenode's embedded STUN/TURN server (RFC 8656 over
// RFC 8489), built on pion/turn v4. Presenters behind networks that block
// UDP reach the node over TURN/TCP or TURN/TLS; nobody reaches anything else:
//
//   - Listeners: UDP and TCP (3478) and TLS (5349, 443 on the appliance),
//     each answering STUN Binding too.
//   - Credentials: TURN REST ("expiry:streamid", base64 HMAC-SHA1 over a node
//     secret kept in the node's store, rotatable with a grace period). Expiry
//     must lie in the future and within max_ttl; failures get 401.
//   - Relay policy: by default the only peers are the node's own WebRTC media
//     addresses; everything else, including every special-purpose range, gets
//     403, and the port is enforced on every relayed datagram.
//   - Limits: allocations per username (486), per node (508), Allocate rate
//     per client IP (486), allocation age, bandwidth per allocation.
//
// node wires it: New(cfg, deps) → Start(ctx) → ICEServers per WHIP session
// → Close.
package turn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/stun/v3"
	pturn "github.com/pion/turn/v4"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are what the node hands the TURN server.
type Deps struct {
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Metrics receives the edgenode_turn_* collectors; nil skips registration.
	Metrics prometheus.Registerer
	// Secrets keeps the node secret (required).
	Secrets Secrets
	// MediaAddrs returns the node's own WebRTC media addresses (the ingest
	// UDP socket, e.g. ingest's UDPAddrs); they are the only default relay
	// peers. An unspecified address (0.0.0.0:p, [::]:p) stands for every
	// address of this machine at port p. Called at most once a second.
	MediaAddrs func() []netip.AddrPort
	// DataDir keeps the self-signed certificate; empty keeps it in memory.
	DataDir string
}

// Addrs are the bound listener addresses; invalid when a listener is off.
type Addrs struct {
	UDP, TCP, TLS netip.AddrPort
}

// Server is the embedded TURN server.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics

	policy  *Policy
	keys    *keyring
	limiter *ipLimiter
	warns   *bucket // bounds per-request warnings a client can provoke

	mu         sync.Mutex
	relaysGone *sync.Cond
	relays     int                    // open relay sockets
	users      map[string]int         // username → allocations
	reserved   map[string]reservation // client source → quota held between QuotaHandler and creation
	allocs     map[string]string      // client 5-tuple source → username
	prevKeys   map[string][]byte      // client source|username → key, when signed with the previous secret

	started, closed bool
	pion            *pturn.Server
	udp             net.PacketConn
	tcp, tls        *gatedListener
	addrs           Addrs
	host            string
	relayIP         netip.Addr
	cert            tls.Certificate
	registered      bool
	cancel          context.CancelFunc
	wg              sync.WaitGroup
}

// New returns an unstarted server. It has no side effects.
func New(cfg Config, deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg.withDefaults(),
		deps:     deps,
		log:      deps.Logger,
		m:        newMetrics(),
		users:    map[string]int{},
		reserved: map[string]reservation{},
		allocs:   map[string]string{},
		prevKeys: map[string][]byte{},
	}
	s.relaysGone = sync.NewCond(&s.mu)
	s.warns = newBucket(warnRate, warnBurst)
	return s
}

// Per-request warnings (refused credentials, peers, quotas) are limited to
// warnRate a second after a burst; the metrics count every event.
const (
	warnRate  = 5
	warnBurst = 50
)

func (s *Server) warn(msg string, args ...any) {
	if s.warns.allow(time.Now(), 1) {
		s.log.Warn(msg, args...)
	}
}

// Start validates the config, loads the secret, binds the listeners and
// starts serving. On error the caller still calls Close.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("turn: Start called twice or after Close")
	}
	s.started = true
	s.mu.Unlock()
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	if !s.cfg.IsEnabled() {
		return nil
	}
	if s.deps.Secrets == nil {
		return fmt.Errorf("%w: Deps.Secrets is nil", ErrSecrets)
	}
	if s.policy, err = NewPolicy(s.cfg.AllowedPeers, s.deps.MediaAddrs); err != nil {
		return err
	}
	var created bool
	if s.keys, created, err = loadKeyring(s.deps.Secrets, s.cfg.SecretGrace); err != nil {
		return err
	}
	if created {
		s.log.Info("turn: generated the node's TURN secret", "name", SecretName)
	}
	s.limiter = newIPLimiter(s.cfg.AllocRate, s.cfg.AllocBurst)
	if err := s.m.register(s.deps.Metrics); err != nil {
		s.m.unregister(s.deps.Metrics)
		return fmt.Errorf("turn: register metrics: %w", err)
	}
	s.registered = true

	lc := net.ListenConfig{}
	var pcs []pturn.PacketConnConfig
	var lns []pturn.ListenerConfig
	perm := func(_ net.Addr, peer net.IP) bool {
		a, ok := netip.AddrFromSlice(peer)
		return ok && s.policy.AllowedIP(a)
	}
	if s.cfg.UDPListen != Off {
		pc, err := lc.ListenPacket(ctx, "udp", s.cfg.UDPListen)
		if err != nil {
			return fmt.Errorf("turn: 'udp_listen': %w", err)
		}
		s.udp = pc
		s.addrs.UDP = udpAddrPort(pc.LocalAddr())
		pcs = append(pcs, pturn.PacketConnConfig{
			PacketConn:            &gatedPacketConn{PacketConn: pc, s: s},
			RelayAddressGenerator: &relayGen{s: s, transport: "udp"},
			PermissionHandler:     perm,
		})
	}
	if s.cfg.TCPListen != Off {
		l, err := lc.Listen(ctx, "tcp", s.cfg.TCPListen)
		if err != nil {
			return fmt.Errorf("turn: 'tcp_listen': %w", err)
		}
		s.tcp = &gatedListener{Listener: l, s: s, conns: map[*gatedConn]struct{}{}}
		s.addrs.TCP = udpAddrPort(l.Addr())
		lns = append(lns, pturn.ListenerConfig{
			Listener: s.tcp, RelayAddressGenerator: &relayGen{s: s, transport: "tcp"}, PermissionHandler: perm,
		})
	}
	s.host = s.deriveHost()
	if s.relayIP, err = s.deriveRelayIP(); err != nil {
		return err
	}
	if s.cfg.TLSListen != Off {
		cert, generated, err := loadCertificate(s.cfg, s.deps.DataDir, s.host)
		if err != nil {
			return err
		}
		if generated {
			s.log.Info("turn: generated self-signed TLS certificate", "host", s.host, "data_dir", s.deps.DataDir)
		}
		s.cert = cert
		l, err := lc.Listen(ctx, "tcp", s.cfg.TLSListen)
		if err != nil {
			return fmt.Errorf("turn: 'tls_listen': %w", err)
		}
		tl := tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		s.tls = &gatedListener{Listener: tl, s: s, conns: map[*gatedConn]struct{}{}}
		s.addrs.TLS = udpAddrPort(l.Addr())
		lns = append(lns, pturn.ListenerConfig{
			Listener: s.tls, RelayAddressGenerator: &relayGen{s: s, transport: "tls"}, PermissionHandler: perm,
		})
	}

	s.pion, err = pturn.NewServer(pturn.ServerConfig{
		PacketConnConfigs: pcs,
		ListenerConfigs:   lns,
		LoggerFactory:     pionLogs{s.log},
		Realm:             s.cfg.Realm,
		AuthHandler:       s.authHandler,
		QuotaHandler:      s.quotaHandler,
		EventHandler: pturn.EventHandler{
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
		},
	})
	if err != nil {
		return fmt.Errorf("turn: start pion server: %w", err)
	}

	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(1)
	go s.janitor(jctx)

	s.log.Info("turn: listening", "udp", s.addrs.UDP.String(), "tcp", s.addrs.TCP.String(),
		"tls", s.addrs.TLS.String(), "public_host", s.host, "relay_ip", s.relayIP.String(), "realm", s.cfg.Realm)
	return nil
}

func (s *Server) janitor(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.limiter.prune(now)
			if len(s.keys.secrets(now)) == 1 {
				s.mu.Lock()
				clear(s.prevKeys) // grace over: nothing signed with the old secret is accepted
				s.mu.Unlock()
			}
		}
	}
}

// closeWait bounds how long Close waits for pion to let go of allocations.
const closeWait = 5 * time.Second

// Close stops the listeners, ends every allocation and TCP/TLS stream and
// waits for them. It is safe after a partial Start and more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()

	var errs []error
	if s.pion != nil {
		if err := s.pion.Close(); err != nil {
			errs = append(errs, err)
		}
	} else {
		if s.udp != nil {
			errs = append(errs, s.udp.Close())
		}
		for _, l := range []*gatedListener{s.tcp, s.tls} {
			if l != nil {
				errs = append(errs, l.Listener.Close())
			}
		}
	}
	deadline := time.Now().Add(closeWait)
	for _, l := range []*gatedListener{s.tcp, s.tls} {
		if l == nil {
			continue
		}
		l.closeConns()
		if s.pion != nil && !waitGroupUntil(&l.done, deadline) {
			errs = append(errs, errors.New("turn: TCP/TLS streams still open after close"))
		}
	}
	if s.pion != nil {
		// pion closes each listener's allocations once its read loop ends.
		timer := time.AfterFunc(time.Until(deadline), func() {
			s.mu.Lock()
			s.relaysGone.Broadcast()
			s.mu.Unlock()
		})
		s.mu.Lock()
		for s.relays > 0 && time.Now().Before(deadline) {
			s.relaysGone.Wait()
		}
		left := s.relays
		s.mu.Unlock()
		timer.Stop()
		if left > 0 {
			errs = append(errs, fmt.Errorf("turn: %d relay sockets still open after close", left))
		}
	}
	if s.registered {
		s.m.unregister(s.deps.Metrics)
	}
	return errors.Join(errs...)
}

func waitGroupUntil(wg *sync.WaitGroup, deadline time.Time) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(time.Until(deadline)):
		return false
	}
}

// Addrs returns the bound listener addresses (useful with port 0).
func (s *Server) Addrs() Addrs { return s.addrs }

// PublicHost returns the host put into ICE server URLs.
func (s *Server) PublicHost() string { return s.host }

// Certificate returns the TLS listener's leaf certificate (nil when TLS is
// off), e.g. for a client that must trust a self-signed one.
func (s *Server) Certificate() *x509.Certificate { return s.cert.Leaf }

// RotateSecret makes a new node secret current. Credentials signed with the
// previous one keep working for 'secret_grace'.
func (s *Server) RotateSecret() error {
	if s.keys == nil {
		return ErrNotStarted
	}
	if err := s.keys.rotate(time.Now()); err != nil {
		return err
	}
	s.log.Info("turn: secret rotated", "grace", s.cfg.SecretGrace)
	return nil
}

// Credentials returns a fresh TURN REST username and password for
// streamID, valid for 'credential_ttl'.
func (s *Server) Credentials(streamID uint64) (username, password string, err error) {
	if s.keys == nil {
		return "", "", ErrNotStarted
	}
	username = Username(time.Now().Add(s.cfg.CredentialTTL), streamID)
	return username, Password(s.keys.secrets(time.Now())[0], username), nil
}

// ICEServers returns the node's STUN and TURN servers with fresh credentials
// for streamID: stun:, turn:?transport=udp, turn:?transport=tcp and
// turns:?transport=tcp, each only when its listener is on. UDP paths come
// first: OBS cannot use TURN over TCP/TLS (SPECS.md § TURN).
func (s *Server) ICEServers(streamID uint64) []webrtc.ICEServer {
	user, pass, err := s.Credentials(streamID)
	if err != nil {
		return nil
	}
	var out []webrtc.ICEServer
	hp := func(ap netip.AddrPort) string { return net.JoinHostPort(s.host, strconv.Itoa(int(ap.Port()))) }
	if s.addrs.UDP.IsValid() {
		out = append(out, webrtc.ICEServer{URLs: []string{"stun:" + hp(s.addrs.UDP)}})
	}
	var urls []string
	if s.addrs.UDP.IsValid() {
		urls = append(urls, "turn:"+hp(s.addrs.UDP)+"?transport=udp")
	}
	if s.addrs.TCP.IsValid() {
		urls = append(urls, "turn:"+hp(s.addrs.TCP)+"?transport=tcp")
	}
	if s.addrs.TLS.IsValid() {
		urls = append(urls, "turns:"+hp(s.addrs.TLS)+"?transport=tcp")
	}
	if len(urls) > 0 {
		out = append(out, webrtc.ICEServer{URLs: urls, Username: user, Credential: pass,
			CredentialType: webrtc.ICECredentialTypePassword})
	}
	return out
}

// LinkHeaders formats ICE servers as WHIP Link header values, one per URL
// (RFC 9725 §4.6): `<turn:h:p?transport=udp>; rel="ice-server";
// username="u"; credential="p"; credential-type="password"`.
func LinkHeaders(servers []webrtc.ICEServer) []string {
	var out []string
	q := func(s string) string { return strconv.Quote(s) }
	for _, sv := range servers {
		for _, u := range sv.URLs {
			v := "<" + u + `>; rel="ice-server"`
			if sv.Username != "" {
				cred, _ := sv.Credential.(string)
				v += "; username=" + q(sv.Username) + "; credential=" + q(cred) + `; credential-type="password"`
			}
			out = append(out, v)
		}
	}
	return out
}

func (s *Server) deriveHost() string {
	if s.cfg.PublicHost != "" {
		return s.cfg.PublicHost
	}
	for _, ap := range []netip.AddrPort{s.addrs.UDP, s.addrs.TCP} {
		if ap.IsValid() && !ap.Addr().IsUnspecified() {
			return ap.Addr().Unmap().String()
		}
	}
	if ip := firstGlobalIPv4(); ip.IsValid() {
		return ip.String()
	}
	return "127.0.0.1"
}

func (s *Server) deriveRelayIP() (netip.Addr, error) {
	if s.cfg.RelayIP != "" {
		return netip.MustParseAddr(s.cfg.RelayIP).Unmap(), nil
	}
	if a, err := netip.ParseAddr(s.host); err == nil && a.Unmap().Is4() && !a.IsUnspecified() {
		return a.Unmap(), nil
	}
	if a := netip.MustParseAddr(s.cfg.RelayBind).Unmap(); !a.IsUnspecified() {
		return a, nil
	}
	if ip := firstGlobalIPv4(); ip.IsValid() {
		return ip, nil
	}
	return netip.Addr{}, invalid("'relay_ip' must be set: no global IPv4 address found")
}

func firstGlobalIPv4() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() && ip.IsGlobalUnicast() {
				return ip.Unmap()
			}
		}
	}
	return netip.Addr{}
}

func srcKey(a net.Addr) string { return a.Network() + "/" + a.String() }

// verify authenticates a request (RFC 8489 §9.2.4) and returns the key
// that checks its MESSAGE-INTEGRITY. An expired credential is still good
// for refreshing an allocation made with it while it was valid.
func (s *Server) verify(m *stun.Message, username, realm string, src net.Addr, allocate bool) ([]byte, error) {
	now := time.Now()
	if realm != s.cfg.Realm {
		return nil, fmt.Errorf("%w: realm %q", ErrBadCredential, realm)
	}
	if expiry, _, err := ParseUsername(username, now, s.cfg.MaxTTL); err != nil {
		if allocate || expiry.IsZero() || expiry.After(now) || !s.hasAllocation(src, username) {
			return nil, err
		}
	}
	for i, secret := range s.keys.secrets(now) {
		key := longTermKey(username, realm, secret)
		if stun.MessageIntegrity(key).Check(m) == nil {
			if i > 0 {
				s.mu.Lock()
				s.prevKeys[srcKey(src)+"|"+username] = key
				s.mu.Unlock()
			}
			return key, nil
		}
	}
	return nil, ErrIntegrity
}

func (s *Server) hasAllocation(src net.Addr, username string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.allocs[srcKey(src)]
	return ok && u == username
}

// authHandler is pion's view of verify (which already ran in the gate).
func (s *Server) authHandler(username, realm string, src net.Addr) ([]byte, bool) {
	now := time.Now()
	if realm != s.cfg.Realm {
		return nil, false
	}
	if expiry, _, err := ParseUsername(username, now, s.cfg.MaxTTL); err != nil {
		if expiry.IsZero() || expiry.After(now) || !s.hasAllocation(src, username) {
			return nil, false
		}
	}
	s.mu.Lock()
	key, ok := s.prevKeys[srcKey(src)+"|"+username]
	s.mu.Unlock()
	if ok {
		return key, true
	}
	return longTermKey(username, realm, s.keys.secrets(now)[0]), true
}

// reservation holds a unit of a username's quota from the quota check
// until the allocation exists (pion runs CreateAllocation in between), so
// that concurrent Allocates on several TCP streams cannot overshoot.
type reservation struct {
	username string
	at       time.Time
}

// reserveFor bounds a reservation whose allocation was never created.
const reserveFor = 2 * time.Second

// quotaHandler: RFC 8656 §7.2 step 7, quota per username → 486.
func (s *Server) quotaHandler(username, _ string, src net.Addr) bool {
	now := time.Now()
	s.mu.Lock()
	n := s.users[username]
	for k, r := range s.reserved {
		switch {
		case now.Sub(r.at) > reserveFor:
			delete(s.reserved, k)
		case r.username == username:
			n++
		}
	}
	ok := n < s.cfg.UserQuota
	if ok {
		s.reserved[srcKey(src)] = reservation{username: username, at: now}
	}
	s.mu.Unlock()
	if !ok {
		s.m.rejected.WithLabelValues("user_quota").Inc()
		s.warn("turn: allocation quota reached", "username", username, "client", src.String(), "user_quota", s.cfg.UserQuota)
	}
	return ok
}

func (s *Server) onAllocationCreated(src, _ net.Addr, _, username, _ string, relay net.Addr, _ int) {
	s.mu.Lock()
	delete(s.reserved, srcKey(src))
	s.users[username]++
	s.allocs[srcKey(src)] = username
	s.mu.Unlock()
	s.log.Info("turn: allocation created", "client", src.String(), "network", src.Network(),
		"username", username, "relay", relay.String())
}

func (s *Server) onAllocationDeleted(src, _ net.Addr, _, username, _ string) {
	k := srcKey(src)
	s.mu.Lock()
	if s.users[username]--; s.users[username] <= 0 {
		delete(s.users, username)
	}
	delete(s.allocs, k)
	for pk := range s.prevKeys {
		if strings.HasPrefix(pk, k+"|") {
			delete(s.prevKeys, pk)
		}
	}
	s.mu.Unlock()
	s.log.Info("turn: allocation deleted", "client", src.String(), "username", username)
}
