// Package ingest is the node's front door: a WHIP endpoint (RFC 9725) where
// browsers (the Go Live page at /live/<id>_<key>) and encoders (OBS, whip-go,
// GStreamer, Larix...) publish H.264 and Opus over WebRTC.
//
// Each publisher is one pion/webrtc PeerConnection. Its RTP is put back in
// order, depacketized into access units (ingest/rtpau) and written into the
// node's hub under hub.Key{Stream: id, Rendition: hub.Source}, where the
// origin and the transcoder pick it up. All sessions share one UDP port (ICE
// UDP mux) and one ICE-TCP port. A publisher that vanishes frees its stream
// after Config.StaleTimeout; Kick drops one on purpose.
//
// Lifecycle: New (no side effects) → Start (binds the ports) →
// RegisterRoutes → Close.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/hub"
)

// Streams is what ingest needs of the node's stream store.
type Streams interface {
	// LookupStream returns the publish key of stream id, whether the
	// stream is active, and whether it exists at all.
	LookupStream(id uint64) (key string, active bool, found bool, err error)
}

// Deps are the collaborators the node passes in.
type Deps struct {
	// Logger receives structured logs (slog.Default when nil).
	Logger *slog.Logger
	// Metrics registers the ingest metrics (none when nil).
	Metrics prometheus.Registerer
	// Hub receives every publisher's access units. Required.
	Hub *hub.Hub
	// Streams authorizes publishers. Required.
	Streams Streams
	// ICEServers returns the STUN/TURN servers announced to a publisher of
	// streamID in `Link: rel="ice-server"` headers (RFC 9725 §4.6), e.g.
	// TURN with short-lived credentials. When nil, Config.ICEServers.
	ICEServers func(streamID uint64) []webrtc.ICEServer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Server is the WHIP ingest server.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	limiter *limiter
	metrics *metrics

	settings webrtc.SettingEngine
	udpMux   ice.UDPMux
	tcpMux   ice.TCPMux
	tcpLn    net.Listener

	mu       sync.Mutex
	started  bool
	closed   bool
	sessions map[string]*session // by resource id
	byStream map[uint64]*session
	wg       sync.WaitGroup
}

// New returns a server for cfg; it has no side effects. cfg must have
// passed Validate.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Hub == nil || deps.Streams == nil {
		return nil, errors.New("ingest: Deps.Hub and Deps.Streams are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		deps:     deps,
		log:      deps.Logger.With("component", "ingest"),
		limiter:  newLimiter(cfg.PostRate, cfg.PostBurst, deps.Now),
		sessions: map[string]*session{},
		byStream: map[uint64]*session{},
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// Start binds the UDP mux and the ICE-TCP listener and prepares the WebRTC
// stack. ctx only bounds the start itself.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return errors.New("ingest: already started")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	lf := newPionLoggerFactory(s.log)
	keepIface := func(name string) bool {
		return len(s.cfg.Interfaces) == 0 || slices.Contains(s.cfg.Interfaces, name)
	}
	udpPort := s.cfg.UDPPort
	if udpPort < 0 {
		udpPort = 0
	}
	opts := []ice.UDPMuxFromPortOption{
		ice.UDPMuxFromPortWithInterfaceFilter(keepIface),
		ice.UDPMuxFromPortWithLogger(lf.NewLogger("udpmux")),
		ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4, ice.NetworkTypeUDP6),
		ice.UDPMuxFromPortWithReadBufferSize(s.cfg.UDPReadBuffer),
		ice.UDPMuxFromPortWithWriteBufferSize(1 << 20),
	}
	if *s.cfg.IncludeLoopback {
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	udpMux, err := ice.NewMultiUDPMuxFromPort(udpPort, opts...)
	if err != nil {
		return fmt.Errorf("ingest: udp_port %d: %w", s.cfg.UDPPort, err)
	}
	s.udpMux = udpMux

	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEUDPMux(udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if !s.cfg.DisableTCP {
		tcpPort := s.cfg.TCPPort
		if tcpPort < 0 {
			tcpPort = 0
		}
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", tcpPort))
		if err != nil {
			_ = udpMux.Close()
			s.udpMux = nil
			return fmt.Errorf("ingest: tcp_port %d: %w", s.cfg.TCPPort, err)
		}
		s.tcpLn = ln
		s.tcpMux = webrtc.NewICETCPMux(lf.NewLogger("tcpmux"), ln, 8)
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	// A server has no use for mDNS: pion's default opens multicast
	// sockets for every PeerConnection.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(keepIface)
	se.SetIncludeLoopbackCandidate(*s.cfg.IncludeLoopback)
	if len(s.cfg.NAT1To1IPs) > 0 {
		se.SetNAT1To1IPs(s.cfg.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	// Stale publishers (RFC 7675 consent): disconnected after half the
	// stale timeout without traffic, failed (session ended) at it.
	disc := s.cfg.StaleTimeout / 2
	se.SetICETimeouts(disc, s.cfg.StaleTimeout-disc, min(time.Second, disc/2))
	s.settings = se
	if _, err := s.newAPI(nil); err != nil {
		s.closeNetLocked()
		return err
	}
	s.started = true
	s.log.Info("ingest started", "udp", fmt.Sprint(s.udpAddrsLocked()), "tcp", fmt.Sprint(s.tcpAddrLocked()))
	return nil
}

func (s *Server) closeNetLocked() {
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
		s.tcpMux = nil
	}
	if s.tcpLn != nil {
		_ = s.tcpLn.Close()
		s.tcpLn = nil
	}
	if s.udpMux != nil {
		_ = s.udpMux.Close()
		s.udpMux = nil
	}
}

// newAPI builds the WebRTC stack of one session: the codecs of
// registerCodecs, the default interceptors (NACK generator, receiver
// reports, TWCC, stats) and a NACK counter in front of them so the
// NACKs the generator sends are counted (pion's stats interceptor sits
// behind the generator and never sees them).
func (s *Server) newAPI(nacks *nackCounts) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if nacks != nil {
		ir.Add(nacks)
	}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(s.settings)), nil
}

// UDPAddrs returns the bound media UDP addresses (one per local address).
func (s *Server) UDPAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.udpAddrsLocked()
}

func (s *Server) udpAddrsLocked() []net.Addr {
	if s.udpMux == nil {
		return nil
	}
	return s.udpMux.GetListenAddresses()
}

// TCPAddr returns the bound ICE-TCP address (nil when TCP is disabled).
func (s *Server) TCPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpAddrLocked()
}

func (s *Server) tcpAddrLocked() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

// Kick ends the live session of streamID, if any (the stream was
// deactivated, its key rotated or it was deleted). It returns whether a
// session was ended.
func (s *Server) Kick(streamID uint64) bool {
	s.mu.Lock()
	sess := s.byStream[streamID]
	s.mu.Unlock()
	if sess == nil {
		return false
	}
	sess.end("kicked")
	sess.wait()
	return true
}

// Sessions returns the number of live publisher sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close ends every session and releases the ports. Safe after a partial
// Start and more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.end("server closing")
	}
	for _, sess := range all {
		sess.wait()
	}
	s.wg.Wait()
	s.mu.Lock()
	s.closeNetLocked()
	s.mu.Unlock()
	return nil
}

// removeSession forgets sess (called once by the session when it ends).
func (s *Server) removeSession(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	if s.byStream[sess.streamID] == sess {
		delete(s.byStream, sess.streamID)
	}
	s.metrics.sessions.Set(float64(len(s.sessions)))
}
