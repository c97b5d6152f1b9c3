// Package whipclient is a WHIP publisher (RFC 9725) built on pion/webrtc
// for tests and benchmarks of the ingest server. It sends a real H.264 clip
// and Opus frames, and can imitate the encoders the ingest must survive:
// parameter sets in their own packets or in STAP-A, no RTCP sender reports,
// multi-slice IDRs (the embedded clip), trickle ICE and ICE restarts over
// PATCH, and a network that silently goes away (Blackhole).
package whipclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// ParamMode says how SPS and PPS travel.
type ParamMode int

// Parameter set packetizations.
const (
	// ParamsSeparate sends SPS and PPS each in its own RTP packet (OBS,
	// many hardware encoders).
	ParamsSeparate ParamMode = iota
	// ParamsSTAPA aggregates SPS and PPS into one STAP-A (Chromium).
	ParamsSTAPA
)

// Options configure Publish.
type Options struct {
	// URL is the WHIP endpoint.
	URL string
	// Bearer is sent as `Authorization: Bearer` when set.
	Bearer string
	// Video is the clip to loop as access units of NAL units (default
	// Slices4). FPS is its frame rate (default 30).
	Video [][][]byte
	FPS   int
	// VideoPTS, when set, gives each access unit of Video its presentation
	// time in 90 kHz ticks from the clip's start (B-frames: PTS order
	// differs from sending order). Default: frame index / FPS.
	VideoPTS []int64
	// NoVideo / NoAudio leave a track out.
	NoVideo, NoAudio bool
	// Params is how SPS/PPS are packetized.
	Params ParamMode
	// MTU is the largest RTP payload (default 1200); larger NAL units go
	// in FU-A fragments.
	MTU int
	// SenderReports enables RTCP SRs (default off: many WHIP encoders send
	// none).
	SenderReports bool
	// Trickle sends the offer before gathering and trickles candidates
	// with PATCH (RFC 9725 §4.3.2).
	Trickle bool
	// VideoFmtp overrides the H.264 fmtp registered (and so offered).
	VideoFmtp string
	// Bitrate pads every access unit with filler data NAL units (type 12,
	// dropped by the ingest) so the video is sent at about this many bit/s
	// (benchmarks). 0 sends the clip as it is (about 300 kbit/s).
	Bitrate int
	// DropEvery loses every n-th media packet on the way out (NACK and
	// PLI tests). 0 loses none.
	DropEvery int
	// NoNACK turns the publisher's retransmissions off, so losses stay
	// losses.
	NoNACK bool
	// TCP makes the publisher use ICE-TCP only (active candidates that
	// dial the server's passive ones), as behind a firewall that drops UDP.
	TCP bool
	// HTTP is the client (http.DefaultClient when nil).
	HTTP *http.Client
}

// Publisher is one publishing session.
type Publisher struct {
	PC       *webrtc.PeerConnection
	Location string
	// Answer is the SDP answer received.
	Answer string
	// PostTime is how long the POST took, from sending the offer to
	// reading the whole 201 answer.
	PostTime time.Duration

	opts    Options
	conn    *blackholeConn
	mux     ice.UDPMux
	mu      sync.Mutex
	etag    string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	sent    atomic.Uint64
	plis    atomic.Uint64
	pliMu   sync.Mutex
	pliAt   []time.Time
	errs    chan error
	trickle sync.WaitGroup
}

// ErrStatus is returned for an unexpected HTTP status; use errors.As.
type ErrStatus struct {
	Code int
	Body string
}

func (e *ErrStatus) Error() string { return fmt.Sprintf("whip: HTTP %d: %s", e.Code, e.Body) }

// blackholeConn drops every packet both ways once dead is set: the
// publisher vanishes without a DTLS close or an ICE goodbye.
type blackholeConn struct {
	net.PacketConn
	dead      atomic.Bool
	dropEvery int
	big       atomic.Uint64
}

func (c *blackholeConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.dead.Load() {
			return n, a, err
		}
	}
}

func (c *blackholeConn) WriteTo(p []byte, a net.Addr) (int, error) {
	if c.dead.Load() {
		return len(p), nil
	}
	// Media packets (the big ones; STUN and DTLS records are small or
	// early) are lost every dropEvery-th time.
	if c.dropEvery > 0 && len(p) > 300 && c.big.Add(1)%uint64(c.dropEvery) == 0 {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, a)
}

// NewOffer returns the pion PeerConnection and offer Publish would send,
// for tests that mutate offers.
func (o *Options) api(conn *blackholeConn) (*webrtc.API, ice.UDPMux, error) {
	me := &webrtc.MediaEngine{}
	fmtp := o.VideoFmtp
	if fmtp == "" {
		fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: fmtp, RTCPFeedback: fb},
		PayloadType: 96,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, nil, err
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, err
	}
	ir := &interceptor.Registry{}
	if !o.NoNACK {
		resp, err := nack.NewResponderInterceptor()
		if err != nil {
			return nil, nil, err
		}
		ir.Add(resp)
	}
	if o.SenderReports {
		if err := webrtc.ConfigureRTCPReports(ir); err != nil {
			return nil, nil, err
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	if o.TCP {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	var mux ice.UDPMux
	if !o.TCP {
		mux = webrtc.NewICEUDPMux(nil, conn)
		se.SetICEUDPMux(mux)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se)), mux, nil
}

// Publish connects to the WHIP endpoint and starts sending media; it
// returns once the answer is applied (media flows when ICE connects).
func Publish(ctx context.Context, o Options) (*Publisher, error) {
	if o.FPS == 0 {
		o.FPS = 30
	}
	if o.MTU == 0 {
		o.MTU = 1200
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.Video == nil && !o.NoVideo {
		aus, err := SplitAnnexB(Slices4)
		if err != nil {
			return nil, err
		}
		o.Video = aus
	}
	uc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	conn := &blackholeConn{PacketConn: uc, dropEvery: o.DropEvery}
	api, mux, err := o.api(conn)
	if err != nil {
		_ = uc.Close()
		return nil, err
	}
	p := &Publisher{opts: o, conn: conn, mux: mux, errs: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			p.shutdown()
		}
	}()
	p.PC, err = api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		return nil, err
	}
	var video, audio *webrtc.TrackLocalStaticRTP
	if !o.NoVideo {
		video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "whipclient")
		if err != nil {
			return nil, err
		}
		s, err := p.PC.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, err
		}
		p.readRTCP(s.Sender())
	}
	if !o.NoAudio {
		audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "whipclient")
		if err != nil {
			return nil, err
		}
		s, err := p.PC.AddTransceiverFromTrack(audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, err
		}
		p.readRTCP(s.Sender())
	}
	var pending []string
	var pmu sync.Mutex
	var posted bool
	if o.Trickle {
		p.PC.OnICECandidate(func(c *webrtc.ICECandidate) {
			if c == nil {
				return
			}
			line := c.ToJSON().Candidate
			pmu.Lock()
			defer pmu.Unlock()
			if !posted {
				pending = append(pending, line)
				return
			}
			p.trickleAsync(line)
		})
	}
	offer, err := p.PC.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(p.PC)
	if err := p.PC.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	if !o.Trickle {
		select {
		case <-gathered:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	body := p.PC.LocalDescription().SDP
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if o.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+o.Bearer)
	}
	postStart := time.Now()
	res, err := o.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	ans, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	_ = res.Body.Close()
	p.PostTime = time.Since(postStart)
	if res.StatusCode != http.StatusCreated {
		return nil, &ErrStatus{Code: res.StatusCode, Body: string(ans)}
	}
	loc, err := res.Location()
	if err != nil {
		return nil, fmt.Errorf("whip: 201 without Location: %w", err)
	}
	p.Location = loc.String()
	p.etag = res.Header.Get("ETag")
	p.Answer = string(ans)
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: p.Answer}); err != nil {
		return nil, fmt.Errorf("whip: apply answer: %w", err)
	}
	if o.Trickle {
		pmu.Lock()
		posted = true
		for _, c := range pending {
			p.trickleAsync(c)
		}
		pending = nil
		pmu.Unlock()
	}
	sctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	if video != nil {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.sendVideo(sctx, video) }()
	}
	if audio != nil {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.sendAudio(sctx, audio) }()
	}
	ok = true
	return p, nil
}

func (p *Publisher) readRTCP(s *webrtc.RTPSender) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			pkts, _, err := s.ReadRTCP()
			if err != nil {
				return
			}
			for _, pk := range pkts {
				if _, ok := pk.(*rtcp.PictureLossIndication); ok {
					p.plis.Add(1)
					p.pliMu.Lock()
					p.pliAt = append(p.pliAt, time.Now())
					p.pliMu.Unlock()
				}
			}
		}
	}()
}

// PLIs counts the keyframe requests received.
func (p *Publisher) PLIs() uint64 { return p.plis.Load() }

// PLITimes returns when each keyframe request arrived.
func (p *Publisher) PLITimes() []time.Time {
	p.pliMu.Lock()
	defer p.pliMu.Unlock()
	return slices.Clone(p.pliAt)
}

// ETag is the session's current entity tag.
func (p *Publisher) ETag() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.etag
}

// Patch sends an sdpfrag with If-Match and returns the response.
func (p *Publisher) Patch(ctx context.Context, frag, ifMatch string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, p.Location, strings.NewReader(frag))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	res, err := p.opts.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res, b, err
}

func (p *Publisher) ufragPwd() (string, string) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(p.PC.LocalDescription().SDP); err != nil || len(sd.MediaDescriptions) == 0 {
		return "", ""
	}
	u, _ := sd.MediaDescriptions[0].Attribute("ice-ufrag")
	pw, _ := sd.MediaDescriptions[0].Attribute("ice-pwd")
	if u == "" {
		u, _ = sd.Attribute("ice-ufrag")
		pw, _ = sd.Attribute("ice-pwd")
	}
	return u, pw
}

// trickleAsync PATCHes one candidate (RFC 8840 fragment with the current
// ufrag and the first mid).
func (p *Publisher) trickleAsync(cand string) {
	p.trickle.Add(1)
	go func() {
		defer p.trickle.Done()
		u, _ := p.ufragPwd()
		mid := "0"
		frag := "a=ice-ufrag:" + u + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:" + mid + "\r\na=" + cand + "\r\n"
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, b, err := p.Patch(ctx, frag, p.ETag())
		if err == nil && res.StatusCode != http.StatusNoContent {
			err = &ErrStatus{Code: res.StatusCode, Body: string(b)}
		}
		if err != nil {
			select {
			case p.errs <- err:
			default:
			}
		}
	}()
}

// TrickleErr returns the first error of a trickle PATCH, if any, after
// waiting for the PATCHes in flight.
func (p *Publisher) TrickleErr() error {
	p.trickle.Wait()
	select {
	case err := <-p.errs:
		return err
	default:
		return nil
	}
}

// RestartICE performs an ICE restart through PATCH (RFC 9725 §4.3.3).
func (p *Publisher) RestartICE(ctx context.Context) error {
	offer, err := p.PC.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(p.PC)
	if err := p.PC.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	u, pw := p.ufragPwd()
	var b strings.Builder
	b.WriteString("a=ice-ufrag:" + u + "\r\na=ice-pwd:" + pw + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n")
	for _, l := range strings.Split(p.PC.LocalDescription().SDP, "\r\n") {
		if strings.HasPrefix(l, "a=candidate:") {
			b.WriteString(l + "\r\n")
		}
	}
	b.WriteString("a=end-of-candidates\r\n")
	res, body, err := p.Patch(ctx, b.String(), `*`)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return &ErrStatus{Code: res.StatusCode, Body: string(body)}
	}
	// Build the new answer: old answer with the server's new credentials
	// and candidates.
	var ru, rp string
	var cands []string
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			ru = strings.TrimPrefix(l, "a=ice-ufrag:")
		case strings.HasPrefix(l, "a=ice-pwd:"):
			rp = strings.TrimPrefix(l, "a=ice-pwd:")
		case strings.HasPrefix(l, "a=candidate:"):
			cands = append(cands, l)
		}
	}
	if ru == "" || rp == "" {
		return fmt.Errorf("whip: ICE restart answer without credentials: %q", body)
	}
	var nb strings.Builder
	first := true
	for _, l := range strings.Split(p.PC.RemoteDescription().SDP, "\r\n") {
		switch {
		case l == "":
			continue
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			l = "a=ice-ufrag:" + ru
		case strings.HasPrefix(l, "a=ice-pwd:"):
			l = "a=ice-pwd:" + rp
		case strings.HasPrefix(l, "a=candidate:"), l == "a=end-of-candidates":
			continue
		case strings.HasPrefix(l, "m=") && !first:
		case strings.HasPrefix(l, "m="):
			first = false
		}
		nb.WriteString(l + "\r\n")
		if strings.HasPrefix(l, "a=ice-pwd:") && len(cands) > 0 {
			for _, c := range cands {
				nb.WriteString(c + "\r\n")
			}
			cands = nil
		}
	}
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: nb.String()}); err != nil {
		return fmt.Errorf("whip: apply restart answer: %w", err)
	}
	p.mu.Lock()
	p.etag = res.Header.Get("ETag")
	p.mu.Unlock()
	return nil
}

// Blackhole makes the publisher vanish: from now on no packet leaves or
// arrives, and no DTLS close or DELETE is sent.
func (p *Publisher) Blackhole() { p.conn.dead.Store(true) }

// Sent counts the RTP packets written.
func (p *Publisher) Sent() uint64 { return p.sent.Load() }

// Delete sends DELETE for the session resource.
func (p *Publisher) Delete(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, p.Location, nil)
	if err != nil {
		return 0, err
	}
	res, err := p.opts.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	_ = res.Body.Close()
	return res.StatusCode, nil
}

// Close stops sending and closes the PeerConnection without DELETE.
func (p *Publisher) Close() error {
	p.shutdown()
	return nil
}

func (p *Publisher) shutdown() {
	if p.cancel != nil {
		p.cancel()
	}
	if p.PC != nil {
		_ = p.PC.Close()
	}
	p.trickle.Wait()
	p.wg.Wait()
	if p.mux != nil {
		_ = p.mux.Close()
	}
	_ = p.conn.Close()
}

func (p *Publisher) sendVideo(ctx context.Context, tr *webrtc.TrackLocalStaticRTP) {
	frame := time.Second / time.Duration(p.opts.FPS)
	tick := uint32(90000 / p.opts.FPS)
	t := time.NewTicker(frame)
	defer t.Stop()
	var seq uint16 = 65000 // wraps within seconds: exercises the unwrapping
	var base uint32 = 0xffff0000
	clip := uint32(len(p.opts.Video)) * tick
	for i := 0; ; i++ {
		n := i % len(p.opts.Video)
		au := p.opts.Video[n]
		ts := base + uint32(i/len(p.opts.Video))*clip + uint32(n)*tick
		if len(p.opts.VideoPTS) == len(p.opts.Video) {
			ts = base + uint32(i/len(p.opts.Video))*clip + uint32(p.opts.VideoPTS[n])
		}
		if p.opts.Bitrate > 0 {
			au = pad(au, p.opts.Bitrate/8/p.opts.FPS)
		}
		for _, pl := range Packetize(au, p.opts.MTU, p.opts.Params) {
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: pl.Marker}, Payload: pl.Payload}
			seq++
			if err := tr.WriteRTP(pkt); err != nil {
				if errors.Is(err, io.ErrClosedPipe) {
					return
				}
			}
			p.sent.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pad appends a filler data NAL unit so au totals about size bytes.
func pad(au [][]byte, size int) [][]byte {
	n := 0
	for _, nal := range au {
		n += len(nal)
	}
	if n+2 >= size {
		return au
	}
	filler := make([]byte, size-n)
	filler[0] = 12
	for i := 1; i < len(filler)-1; i++ {
		filler[i] = 0xff
	}
	filler[len(filler)-1] = 0x80
	return append(au[:len(au):len(au)], filler)
}

// opusSilence is one 20 ms Opus frame of silence (TOC 0xf8: CELT FB 20 ms).
var opusSilence = []byte{0xf8, 0xff, 0xfe}

func (p *Publisher) sendAudio(ctx context.Context, tr *webrtc.TrackLocalStaticRTP) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var seq uint16 = 1
	var ts uint32 = 12345
	for {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: seq == 1}, Payload: opusSilence}
		seq++
		ts += 960
		_ = tr.WriteRTP(pkt)
		p.sent.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Payload is one RTP payload and its marker bit.
type Payload struct {
	Payload []byte
	Marker  bool
}

// Packetize splits an access unit into RTP payloads (RFC 6184,
// packetization-mode=1): SPS/PPS as params says, NAL units up to mtu as
// single NAL unit packets, larger ones as FU-A; the marker is set on the
// last packet.
func Packetize(au [][]byte, mtu int, params ParamMode) []Payload {
	var out []Payload
	var stap [][]byte
	flushSTAP := func() {
		switch len(stap) {
		case 0:
			return
		case 1:
			out = append(out, Payload{Payload: stap[0]})
		default:
			pl := []byte{(stap[0][0] & 0x60) | 24}
			for _, n := range stap {
				pl = append(pl, byte(len(n)>>8), byte(len(n)))
				pl = append(pl, n...)
			}
			out = append(out, Payload{Payload: pl})
		}
		stap = nil
	}
	for _, nal := range au {
		typ := nal[0] & 0x1f
		if params == ParamsSTAPA && (typ == 7 || typ == 8) {
			stap = append(stap, nal)
			continue
		}
		flushSTAP()
		if len(nal) <= mtu {
			out = append(out, Payload{Payload: nal})
			continue
		}
		hdr := nal[0]
		data := nal[1:]
		for first := true; len(data) > 0; first = false {
			n := min(len(data), mtu-2)
			fu := []byte{(hdr & 0xe0) | 28, hdr & 0x1f}
			if first {
				fu[1] |= 0x80
			}
			if n == len(data) {
				fu[1] |= 0x40
			}
			out = append(out, Payload{Payload: append(fu, data[:n]...)})
			data = data[n:]
		}
	}
	flushSTAP()
	if len(out) > 0 {
		out[len(out)-1].Marker = true
	}
	return out
}

// ParseURL is a helper: u with path replaced.
func ParseURL(base, path string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base + path
	}
	u.Path = path
	return u.String()
}
