package turn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"
)

// The gate sees every STUN request before pion does. pion/turn v4.1.4
// answers a bad credential with 400 and a refused peer with an error
// response carrying no ERROR-CODE; the gate answers those itself with the
// codes the RFCs require (401, 403) and applies the per-IP allocation rate
// limit. Whatever it lets through, pion handles as usual.

// verdict of the gate for one frame.
type verdict int

const (
	pass    verdict = iota // hand the frame to pion
	handled                // the gate answered; drop the frame
)

func (s *Server) inspect(frame []byte, src net.Addr, reply func([]byte) error) verdict {
	if !stun.IsMessage(frame) {
		return pass // ChannelData
	}
	m := &stun.Message{Raw: frame}
	if err := m.Decode(); err != nil || m.Type.Class != stun.ClassRequest {
		return pass
	}
	method := m.Type.Method
	switch method {
	case stun.MethodAllocate, stun.MethodRefresh, stun.MethodCreatePermission, stun.MethodChannelBind:
	default:
		return pass // Binding and indications need no credential
	}
	if !m.Contains(stun.AttrMessageIntegrity) || !m.Contains(stun.AttrNonce) {
		return pass // pion issues the 401 challenge with a nonce
	}
	// Rate limit real allocation attempts (the authenticated Allocate; the
	// unauthenticated first one only costs a nonce), successful or not, so
	// that it also throttles password guessing.
	if method == stun.MethodAllocate && !s.limiter.allow(udpAddrPort(src).Addr(), time.Now()) {
		s.m.rejected.WithLabelValues("rate").Inc()
		s.warn("turn: allocate rate limit", "client", src.String())
		s.respond(reply, m, stun.CodeAllocQuotaReached, "Allocation Rate Exceeded", nil)
		return handled
	}
	var user stun.Username
	var realm stun.Realm
	if user.GetFrom(m) != nil || realm.GetFrom(m) != nil {
		return pass // pion answers 400
	}
	key, err := s.verify(m, user.String(), realm.String(), src, method == stun.MethodAllocate)
	if err != nil {
		reason := "integrity"
		if errors.Is(err, ErrBadCredential) {
			reason = "credential"
		}
		s.m.authFail.WithLabelValues(reason).Inc()
		s.warn("turn: authentication failed", "client", src.String(), "method", method.String(), "username", user.String(), "err", err)
		// RFC 8489 §9.2.4: wrong USERNAME or MESSAGE-INTEGRITY → 401 with
		// REALM and NONCE. The request's nonce came from pion, so it stays valid.
		var nonce stun.Nonce
		_ = nonce.GetFrom(m)
		s.respond(reply, m, stun.CodeUnauthorized, "Unauthorized", nil, stun.NewRealm(s.cfg.Realm), nonce)
		return handled
	}
	if method == stun.MethodCreatePermission || method == stun.MethodChannelBind {
		if peer, denied := s.firstDeniedPeer(m); denied {
			s.m.denied.Inc()
			s.warn("turn: peer refused by relay policy", "client", src.String(), "username", user.String(), "peer", peer.String(), "method", method.String())
			// RFC 8656 §9.2 / §11.2: a peer the server's policy forbids → 403.
			s.respond(reply, m, stun.CodeForbidden, "Forbidden", key)
			return handled
		}
	}
	return pass
}

// firstDeniedPeer checks every XOR-PEER-ADDRESS and returns the first one
// the policy refuses. Malformed attributes are left to pion (400).
func (s *Server) firstDeniedPeer(m *stun.Message) (peer netip.AddrPort, denied bool) {
	_ = m.ForEach(stun.AttrXORPeerAddress, func(m *stun.Message) error {
		var xa stun.XORMappedAddress
		if err := xa.GetFromAs(m, stun.AttrXORPeerAddress); err != nil {
			return err
		}
		if ap := addrPortOf(xa.IP, xa.Port); !s.policy.Allowed(ap) {
			peer, denied = ap, true
			return ErrPeerDenied
		}
		return nil
	})
	return peer, denied
}

func (s *Server) respond(reply func([]byte) error, req *stun.Message, code stun.ErrorCode, reason string,
	key []byte, extra ...stun.Setter,
) {
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.NewType(req.Type.Method, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: code, Reason: []byte(reason)},
	}
	for _, e := range extra {
		if n, ok := e.(stun.Nonce); ok && len(n) == 0 {
			continue
		}
		setters = append(setters, e)
	}
	if key != nil {
		setters = append(setters, stun.MessageIntegrity(key))
	}
	setters = append(setters, stun.Fingerprint)
	msg, err := stun.Build(setters...)
	if err != nil {
		s.log.Error("turn: build error response", "err", err)
		return
	}
	if err := reply(msg.Raw); err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("turn: send error response", "err", err)
	}
}

// gatedPacketConn runs the gate on a UDP listener.
type gatedPacketConn struct {
	net.PacketConn
	s *Server
}

func (c *gatedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		reply := func(b []byte) error { _, err := c.PacketConn.WriteTo(b, addr); return err }
		if c.s.inspect(p[:n:n], addr, reply) == pass {
			return n, addr, nil
		}
	}
}

// gatedListener runs the gate on each accepted TCP or TLS stream and
// remembers the streams so that Close can end them (pion does not).
type gatedListener struct {
	net.Listener
	s *Server

	mu     sync.Mutex
	conns  map[*gatedConn]struct{}
	closed bool
	done   sync.WaitGroup // one per accepted conn, Done when pion closes it
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := &gatedConn{Conn: c, l: l}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[gc] = struct{}{}
	l.done.Add(1)
	l.mu.Unlock()
	return gc, nil
}

// closeConns ends every accepted stream; pion's per-stream goroutine then
// deletes the allocation and calls Close.
func (l *gatedListener) closeConns() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*gatedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn.Close()
	}
}

// maxFrame bounds one buffered TURN frame (STUN length field is 16 bits).
const maxFrame = 20 + 65535

// gatedConn frames a TURN stream (RFC 8656 §11.5: ChannelData padded to 4
// bytes over TCP) and hands pion one whole frame per Read.
type gatedConn struct {
	net.Conn
	l       *gatedListener
	buf     []byte // backing store; unread bytes are buf[r:w]
	r, w    int
	pending []byte // part of a frame larger than the caller's buffer
	once    sync.Once

	framed   bool      // a whole frame has arrived
	deadline time.Time // current read deadline
}

// Stream timeouts: the TLS handshake and first request must arrive within
// firstFrameTimeout; a stream then silent for streamIdle is closed (an
// allocation in use carries media, and refreshes come every few minutes).
var (
	firstFrameTimeout = 30 * time.Second
	streamIdle        = 10 * time.Minute
)

// extendDeadline moves the read deadline forward, touching the timer at
// most once a second.
func (c *gatedConn) extendDeadline() {
	d := firstFrameTimeout
	if c.framed {
		d = streamIdle
	}
	now := time.Now()
	if want := now.Add(d); want.Sub(c.deadline) > time.Second || !c.framed && c.deadline.IsZero() {
		c.deadline = want
		_ = c.Conn.SetReadDeadline(want)
	}
}

func frameLen(b []byte) (int, bool, error) {
	if len(b) < 4 {
		return 0, false, nil
	}
	switch {
	case b[0]&0xC0 == 0: // STUN
		if len(b) < 20 {
			return 0, false, nil
		}
		if !stun.IsMessage(b) {
			return 0, false, errBadFrame
		}
		n := 20 + int(binary.BigEndian.Uint16(b[2:4]))
		return n, len(b) >= n, nil
	case b[0]&0xC0 == 0x40: // ChannelData 0x4000..0x7FFF
		n := 4 + int(binary.BigEndian.Uint16(b[2:4]))
		n = (n + 3) &^ 3
		return n, len(b) >= n, nil
	}
	return 0, false, errBadFrame
}

var errBadFrame = errors.New("turn: stream carries neither STUN nor ChannelData")

func (c *gatedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.buf == nil {
		c.buf = make([]byte, 8192)
	}
	for {
		n, ok, err := frameLen(c.buf[c.r:c.w])
		if err != nil {
			c.l.s.log.Debug("turn: bad stream frame", "client", c.Conn.RemoteAddr().String(),
				"head", fmt.Sprintf("% x", c.buf[c.r:min(c.w, c.r+24)]))
			return 0, err
		}
		if ok {
			c.framed = true
			// Cap the frame: stun's MessageIntegrity.Check appends the HMAC
			// it computes past len(Raw), which would overwrite the next frame.
			frame := c.buf[c.r : c.r+n : c.r+n]
			c.r += n
			reply := func(b []byte) error { _, err := c.Conn.Write(b); return err }
			if c.l.s.inspect(frame, c.Conn.RemoteAddr(), reply) == handled {
				continue
			}
			k := copy(p, frame)
			if k < n {
				c.pending = append(c.pending[:0], frame[k:]...)
			}
			return k, nil
		}
		// Need more bytes: move the partial frame to the front, grow for
		// a large frame, read.
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		if need := max(n, c.w+1); need > len(c.buf) {
			if need > maxFrame+3 {
				return 0, errBadFrame
			}
			nb := make([]byte, need+4096)
			copy(nb, c.buf[:c.w])
			c.buf = nb
		}
		c.extendDeadline()
		m, err := c.Conn.Read(c.buf[c.w:])
		c.w += m
		if err != nil && m == 0 {
			return 0, err
		}
	}
}

func (c *gatedConn) Close() error {
	// A TLS close whose close_notify cannot be sent (peer already gone) is
	// still a close; do not let pion log it as an error.
	err := c.Conn.Close()
	if err != nil {
		c.l.s.log.Debug("turn: close stream", "client", c.Conn.RemoteAddr().String(), "err", err)
		err = nil
	}
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.done.Done()
	})
	return err
}
