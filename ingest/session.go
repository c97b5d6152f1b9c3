package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/edgenode/edgenode/ingest/rtpau"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

// minPLIGap spaces the PLIs sent on loss (the timer's are not limited).
const minPLIGap = 250 * time.Millisecond

// reorderMaxDelay bounds how long a gap holds later packets back: longer
// than a loopback/LAN/WAN round trip so NACKed retransmissions can fill it.
const reorderMaxDelay = 300 * time.Millisecond

// session is one WHIP publisher: a resource (RFC 9725 §4.2) and its
// PeerConnection.
type session struct {
	srv      *Server
	id       string
	streamID uint64
	label    string // stream id as a metrics label
	path     string // "<id>_<key>" as published to
	log      *slog.Logger
	sum      offerSummary
	videoIdx int // index in tracks, -1 when none
	audioIdx int
	tracks   []media.Track

	// pc and pub are set once under mu, before any media goroutine runs.
	pc  *webrtc.PeerConnection
	pub *hub.Publisher

	mu      sync.Mutex // guards pc, pub, etag, offer, closing and the wg.Add calls
	etag    string
	offer   string
	closing bool
	restart sync.Mutex // serializes PATCH renegotiations

	wg       sync.WaitGroup // media goroutines
	endOnce  sync.Once
	done     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	videoSSR atomic.Uint32
	lastPLI  atomic.Int64 // unix nanos
	nacks    nackCounts

	// stats sources, set by the media goroutines
	statsMu    sync.Mutex
	videoDep   *rtpau.H264
	audioDep   *rtpau.Opus
	videoReord *rtpau.Reorder
	audioReord *rtpau.Reorder
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

func newETag() string { return `"` + randomID(12) + `"` }

func newSession(srv *Server, streamID uint64, path string, sum offerSummary) *session {
	ctx, cancel := context.WithCancel(context.Background())
	sess := &session{
		srv: srv, id: randomID(16), streamID: streamID, path: path, sum: sum,
		label: strconv.FormatUint(streamID, 10), videoIdx: -1, audioIdx: -1,
		done: make(chan struct{}), ctx: ctx, cancel: cancel, etag: newETag(),
	}
	sess.log = srv.log.With("stream", streamID, "session", sess.id)
	if sum.Video {
		sess.videoIdx = len(sess.tracks)
		sess.tracks = append(sess.tracks, media.Track{Codec: media.CodecH264})
	}
	if sum.Audio {
		sess.audioIdx = len(sess.tracks)
		sess.tracks = append(sess.tracks, media.Track{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2})
	}
	return sess
}

// negotiate creates the PeerConnection and answers offer (RFC 9725 §4.2).
// The answer carries every local candidate: the server does not trickle
// (§4.3.2).
func (sess *session) negotiate(ctx context.Context, offer string) (string, error) {
	sess.nacks.videoSSRC = &sess.videoSSR
	api, err := sess.srv.newAPI(&sess.nacks)
	if err != nil {
		return "", fmt.Errorf("ingest: webrtc stack: %w", err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		// RFC 9725 §4.4.1: max-bundle, rtcp-mux.
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return "", fmt.Errorf("ingest: new peer connection: %w", err)
	}
	sess.mu.Lock()
	if sess.closing { // kicked or server closing while we negotiated
		sess.mu.Unlock()
		_ = pc.Close()
		return "", ErrClosed
	}
	sess.pc = pc
	sess.mu.Unlock()
	pc.OnTrack(sess.onTrack)
	pc.OnConnectionStateChange(sess.onState)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnservable, err)
	}
	answer, err := sess.answer(ctx, pc)
	if err != nil {
		return "", err
	}
	sess.mu.Lock()
	sess.offer = offer
	sess.mu.Unlock()
	return startBitrateAnswer(answer, sess.srv.cfg.StartBitrateKbps), nil
}

// answer creates and applies an answer and waits for ICE gathering.
func (sess *session) answer(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnservable, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("ingest: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("ingest: gathering candidates: %w", ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// peer returns the PeerConnection, nil while it is being created.
func (sess *session) peer() *webrtc.PeerConnection {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.pc
}

// setPublisher hands the session its hub publisher; false (and the
// publisher closed) when the session already ends.
func (sess *session) setPublisher(pub *hub.Publisher) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closing {
		pub.Close()
		return false
	}
	sess.pub = pub
	return true
}

// addWorker registers a media goroutine; false once the session ends.
func (sess *session) addWorker() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closing {
		return false
	}
	sess.wg.Add(1)
	return true
}

func (sess *session) onState(st webrtc.PeerConnectionState) {
	sess.log.Debug("peer connection state", "state", st.String())
	switch st {
	case webrtc.PeerConnectionStateConnected:
		sess.srv.metrics.connected.WithLabelValues(sess.label).Set(1)
		sess.log.Info("publisher connected")
	case webrtc.PeerConnectionStateDisconnected:
		sess.log.Warn("publisher disconnected; waiting for it to come back", "stale_timeout", sess.srv.cfg.StaleTimeout)
	case webrtc.PeerConnectionStateFailed:
		// RFC 7675 consent lost for stale_timeout: the publisher vanished.
		sess.end("publisher vanished (ICE failed)")
	case webrtc.PeerConnectionStateClosed:
		sess.end("peer connection closed")
	}
}

// end tears the session down once, in the background; wait waits for it.
func (sess *session) end(reason string) {
	sess.endOnce.Do(func() {
		sess.mu.Lock()
		sess.closing = true
		sess.mu.Unlock()
		sess.srv.wg.Add(1)
		go func() {
			defer sess.srv.wg.Done()
			sess.teardown(reason)
		}()
	})
}

func (sess *session) wait() { <-sess.done }

func (sess *session) teardown(reason string) {
	defer close(sess.done)
	sess.cancel()
	sess.mu.Lock()
	pc, pub := sess.pc, sess.pub
	sess.mu.Unlock()
	if pc != nil {
		_ = pc.Close()
	}
	sess.wg.Wait()
	if pub != nil {
		pub.Close()
	}
	sess.srv.removeSession(sess)
	sess.srv.metrics.forget(sess.label)
	sess.log.Info("session ended", "reason", reason)
}

func (sess *session) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	if !sess.addWorker() {
		return
	}
	defer sess.wg.Done()
	sess.mu.Lock()
	pub := sess.pub
	sess.mu.Unlock()
	if pub == nil {
		// Media before the 201 was sent: impossible for a real publisher
		// (it needs the answer's ICE and DTLS parameters).
		sess.log.Warn("media before the session was published; ignoring track")
		return
	}
	mime := tr.Codec().MimeType
	// FACTS: mime case follows the sender; compare case-insensitively.
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeH264) && sess.videoIdx >= 0:
		sess.readVideo(tr, recv, pub)
	case strings.EqualFold(mime, webrtc.MimeTypeOpus) && sess.audioIdx >= 0:
		sess.readAudio(tr, recv, pub)
	default:
		sess.log.Warn("ignoring track of unexpected codec", "mime", mime)
	}
}

// readRTCP reads the receiver's RTCP so the interceptors run and sender
// reports reach the clock (STYLE habit 8).
func (sess *session) readRTCP(recv *webrtc.RTPReceiver, clock *rtpau.Clock) {
	if !sess.addWorker() {
		return
	}
	go func() {
		defer sess.wg.Done()
		for {
			pkts, _, err := recv.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					first := !clock.Stats().FromSenderReport
					clock.HandleSenderReport(sr)
					if st := clock.Stats(); first && st.FromSenderReport {
						// Dates given out before it (the first
						// segment's, which the stream's clock keeps)
						// are off by this much.
						sess.log.Info("wall clock from sender reports", "rate", clock.Rate(), "shift_ms", st.ReportShift.Milliseconds())
					}
				}
			}
		}
	}()
}

// pli asks the publisher for a keyframe (RFC 4585 §6.3.1).
func (sess *session) pli(reason string, limited bool) {
	ssrc := sess.videoSSR.Load()
	if ssrc == 0 {
		return
	}
	now := time.Now().UnixNano()
	if limited && now-sess.lastPLI.Load() < int64(minPLIGap) {
		return
	}
	sess.lastPLI.Store(now)
	if err := sess.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		return
	}
	sess.srv.metrics.plis.WithLabelValues(sess.label).Inc()
	sess.log.Debug("sent PLI", "reason", reason)
}

func (sess *session) readVideo(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver, pub *hub.Publisher) {
	clock := rtpau.NewClock(90000, nil)
	dep := rtpau.NewH264(clock)
	reord := rtpau.NewReorder(sess.srv.cfg.ReorderPackets)
	reord.SetMaxDelay(reorderMaxDelay, nil)
	sess.statsMu.Lock()
	sess.videoDep, sess.videoReord = dep, reord
	sess.statsMu.Unlock()
	sess.videoSSR.Store(uint32(tr.SSRC()))
	sess.readRTCP(recv, clock)
	firstKey := make(chan struct{}, 1)
	sess.startTicker(firstKey)
	// The stream starts waiting for an IDR: ask at once.
	sess.pli("start", false)
	first, keyed := true, false
	sess.readLoop(tr, reord, func(p *rtp.Packet) {
		aus, err := dep.Push(p)
		if first && len(aus) > 0 {
			first = false
			tk := dep.Track()
			sess.log.Info("receiving video", "codec", "H264", "width", tk.Width, "height", tk.Height,
				"payload_type", tr.PayloadType(), "fmtp", tr.Codec().SDPFmtpLine)
		}
		if err != nil {
			if errors.Is(err, rtpau.ErrNeedKeyframe) || errors.Is(err, rtpau.ErrNoParameterSets) {
				sess.pli("loss", true)
			} else {
				sess.log.Debug("video packet dropped", "err", err)
			}
		}
		for _, au := range aus {
			if au.Key && !keyed {
				keyed = true
				firstKey <- struct{}{}
			}
			sess.srv.metrics.arrival.WithLabelValues("video").Observe(time.Since(au.Time).Seconds())
			pub.WriteAU(sess.videoIdx, au)
		}
	})
}

func (sess *session) readAudio(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver, pub *hub.Publisher) {
	clock := rtpau.NewClock(48000, nil)
	dep := rtpau.NewOpus(clock)
	reord := rtpau.NewReorder(sess.srv.cfg.ReorderPackets)
	reord.SetMaxDelay(reorderMaxDelay, nil)
	sess.statsMu.Lock()
	sess.audioDep, sess.audioReord = dep, reord
	sess.statsMu.Unlock()
	sess.readRTCP(recv, clock)
	first := true
	sess.readLoop(tr, reord, func(p *rtp.Packet) {
		aus, err := dep.Push(p)
		if first && len(aus) > 0 {
			first = false
			sess.log.Info("receiving audio", "codec", "Opus", "payload_type", tr.PayloadType())
		}
		if err != nil {
			sess.log.Debug("audio packet dropped", "err", err)
		}
		for _, au := range aus {
			sess.srv.metrics.arrival.WithLabelValues("audio").Observe(time.Since(au.Time).Seconds())
			pub.WriteAU(sess.audioIdx, au)
		}
	})
}

func (sess *session) readLoop(tr *webrtc.TrackRemote, reord *rtpau.Reorder, push func(*rtp.Packet)) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			for _, p := range reord.Flush() {
				push(p)
			}
			return
		}
		for _, p := range reord.Push(pkt) {
			push(p)
		}
	}
}

// startTicker starts the PLI timer (segment cadence) and the stats
// sampler. firstKey receives once, when the session's first keyframe is
// out: StartKeyframe later one more is asked for (a short first segment,
// so that players start sooner) and the timer restarts from there.
func (sess *session) startTicker(firstKey <-chan struct{}) {
	if !sess.addWorker() {
		return
	}
	go func() {
		defer sess.wg.Done()
		statsT := time.NewTicker(time.Second)
		defer statsT.Stop()
		iv := sess.srv.cfg.PLIInterval
		var pliT *time.Ticker
		var pliC, earlyC <-chan time.Time
		if iv > 0 {
			pliT = time.NewTicker(iv)
			defer pliT.Stop()
			pliC = pliT.C
		}
		var prev sampled
		for {
			select {
			case <-sess.ctx.Done():
				return
			case <-firstKey:
				if d := sess.srv.cfg.StartKeyframe; d > 0 {
					earlyC = time.After(d)
				}
			case <-earlyC:
				earlyC = nil
				sess.pli("start segment", false)
				if pliT != nil {
					pliT.Reset(iv)
				}
			case <-pliC:
				sess.pli("interval", false)
			case <-statsT.C:
				prev = sess.sample(prev)
			}
		}
	}()
}

// sampled holds the last cumulative counters so metrics get deltas.
type sampled struct {
	videoLost, audioLost   uint64
	videoNACK, audioNACK   uint64
	videoFrames, audioFrms uint64
	bframes, resChanges    uint64
}

// sample updates the per-stream metrics and logs notable events.
func (sess *session) sample(prev sampled) sampled {
	m := sess.srv.metrics
	l := sess.label
	sess.statsMu.Lock()
	vd, ad, vr, ar := sess.videoDep, sess.audioDep, sess.videoReord, sess.audioReord
	sess.statsMu.Unlock()
	cur := prev
	if vd != nil {
		st := vd.Stats()
		m.width.WithLabelValues(l).Set(float64(st.Width))
		m.height.WithLabelValues(l).Set(float64(st.Height))
		m.fps.WithLabelValues(l).Set(st.FPS)
		m.bitrate.WithLabelValues(l, "video").Set(st.Bitrate)
		m.keyint.WithLabelValues(l).Set(st.KeyframeInterval.Seconds())
		cur.videoFrames = st.Frames
		m.frames.WithLabelValues(l, "video").Add(float64(st.Frames - prev.videoFrames))
		cur.bframes = st.BFrames
		if st.BFrames > prev.bframes {
			m.bframes.WithLabelValues(l).Add(float64(st.BFrames - prev.bframes))
			if prev.bframes == 0 {
				sess.log.Warn("publisher sends B-frames; LL-HLS parts need the transcoder", "count", st.BFrames)
			}
		}
		cur.resChanges = st.ResolutionChanges
		if st.ResolutionChanges > prev.resChanges {
			m.resChanges.WithLabelValues(l).Add(float64(st.ResolutionChanges - prev.resChanges))
			sess.log.Info("video resolution changed", "width", st.Width, "height", st.Height)
		}
	}
	if vr != nil {
		cur.videoLost = vr.Lost()
		m.lost.WithLabelValues(l, "video").Add(float64(cur.videoLost - prev.videoLost))
	}
	if ad != nil {
		st := ad.Stats()
		m.bitrate.WithLabelValues(l, "audio").Set(st.Bitrate)
		cur.audioFrms = st.Frames
		m.frames.WithLabelValues(l, "audio").Add(float64(st.Frames - prev.audioFrms))
	}
	if ar != nil {
		cur.audioLost = ar.Lost()
		m.lost.WithLabelValues(l, "audio").Add(float64(cur.audioLost - prev.audioLost))
	}
	// The selected pair's stats from the ICE agent (under its lock), not
	// PeerConnection.GetStats: pion/webrtc v4.2.26 reads pc.statsGetter
	// there without a lock while a close pion starts on its own (a failed
	// transport start) clears it: a data race on a fresh clone's make
	// test (ingest TestPLIOnLoss).
	if st, ok := sess.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePairStats(); ok && st.CurrentRoundTripTime > 0 {
		m.rtt.WithLabelValues(l).Set(st.CurrentRoundTripTime)
	}
	v, a := sess.nacks.video.Load(), sess.nacks.audio.Load()
	m.nacks.WithLabelValues(l, "video").Add(float64(v - prev.videoNACK))
	m.nacks.WithLabelValues(l, "audio").Add(float64(a - prev.audioNACK))
	cur.videoNACK, cur.audioNACK = v, a
	return cur
}

// trickle adds the candidates of a PATCH (RFC 9725 §4.3.2). Candidates
// pion cannot use are dropped silently, as the RFC asks.
func (sess *session) trickle(frag *sdpFrag) {
	pc := sess.peer()
	if pc == nil {
		return
	}
	mids, cands := frag.candidates()
	for i, c := range cands {
		mid := mids[i]
		init := webrtc.ICECandidateInit{Candidate: "candidate:" + c}
		if mid != "" {
			init.SDPMid = &mid
		}
		if err := pc.AddICECandidate(init); err != nil {
			sess.log.Debug("dropped trickled candidate", "candidate", c, "err", err)
		}
	}
}

// restartICE performs an ICE restart (RFC 9725 §4.3.3): the publisher's
// new credentials replace the old ones in its offer, pion restarts its
// agent, and the new local credentials and candidates go back in an
// sdpfrag. A failure leaves the session as it was.
func (sess *session) restartICE(ctx context.Context, frag *sdpFrag) (string, string, error) {
	sess.mu.Lock()
	offer, pc := sess.offer, sess.pc
	sess.mu.Unlock()
	if pc == nil {
		return "", "", fmt.Errorf("%w: session is still being created", ErrNoSession)
	}
	var b strings.Builder
	for _, line := range strings.Split(offer, "\r\n") {
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			line = "a=ice-ufrag:" + frag.Ufrag
		case strings.HasPrefix(line, "a=ice-pwd:"):
			line = "a=ice-pwd:" + frag.Pwd
		case strings.HasPrefix(line, "a=candidate:"), line == "a=end-of-candidates":
			continue
		case line == "":
			continue
		}
		b.WriteString(line + "\r\n")
	}
	newOffer := b.String()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: newOffer}); err != nil {
		return "", "", fmt.Errorf("%w: ICE restart: %v", ErrBadSDP, err)
	}
	answer, err := sess.answer(ctx, pc)
	if err != nil {
		return "", "", err
	}
	sess.trickle(frag)
	var ad sdp.SessionDescription
	if err := ad.UnmarshalString(answer); err != nil || len(ad.MediaDescriptions) == 0 {
		return "", "", fmt.Errorf("ingest: parse own answer: %v", err)
	}
	ufrag, _ := attr(&ad, ad.MediaDescriptions[0], "ice-ufrag")
	pwd, _ := attr(&ad, ad.MediaDescriptions[0], "ice-pwd")
	var mids, cands []string
	for i, md := range ad.MediaDescriptions {
		mid, _ := md.Attribute("mid")
		mids = append(mids, mid)
		if i == 0 {
			for _, a := range md.Attributes {
				if a.Key == "candidate" {
					cands = append(cands, a.Value)
				}
			}
		}
	}
	etag := newETag()
	sess.mu.Lock()
	sess.offer = newOffer
	sess.etag = etag
	sess.mu.Unlock()
	sess.log.Info("ICE restarted")
	return marshalRestartFrag(ufrag, pwd, mids, cands), etag, nil
}
