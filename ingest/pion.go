package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// registerCodecs registers the only codecs this node ingests: H.264
// packetization-mode=1 in the profiles of acceptedH264Profiles, each with
// RTX, and Opus (SPECS "Media from WebRTC publishers"). The offer has
// already been filtered by checkOffer, so pion's fall back to matching on the
// mime type alone can only pick one of these.
func registerCodecs(me *webrtc.MediaEngine) error {
	videoFB := []webrtc.RTCPFeedback{
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
		{Type: webrtc.TypeRTCPFBTransportCC},
	}
	pt := webrtc.PayloadType(102)
	for _, plid := range []string{"42e01f", "42001f", "4d001f", "640c1f", "64001f"} {
		err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid,
				RTCPFeedback: videoFB,
			},
			PayloadType: pt,
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return fmt.Errorf("ingest: register H264 %s: %w", plid, err)
		}
		err = me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeRTX, ClockRate: 90000,
				SDPFmtpLine: fmt.Sprintf("apt=%d", pt),
			},
			PayloadType: pt + 1,
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return fmt.Errorf("ingest: register RTX: %w", err)
		}
		pt += 2
	}
	return me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine:  "minptime=10;useinbandfec=1",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}},
		},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio)
}

// pionLoggerFactory sends pion's warnings and errors to slog; its debug
// and info chatter is dropped.
type pionLoggerFactory struct{ log *slog.Logger }

func newPionLoggerFactory(l *slog.Logger) logging.LoggerFactory { return pionLoggerFactory{l} }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, strings.TrimSpace(msg))
}
func (l pionLogger) Trace(string)          {}
func (l pionLogger) Tracef(string, ...any) {}
func (l pionLogger) Debug(string)          {}
func (l pionLogger) Debugf(string, ...any) {}
func (l pionLogger) Info(string)           {}
func (l pionLogger) Infof(string, ...any)  {}

// pion warns about every closed socket at teardown: its warnings are debug
// logs here, its errors warnings.
func (l pionLogger) Warn(m string)             { l.emit(slog.LevelDebug, m) }
func (l pionLogger) Warnf(f string, a ...any)  { l.emit(slog.LevelDebug, fmt.Sprintf(f, a...)) }
func (l pionLogger) Error(m string)            { l.emit(slog.LevelWarn, m) }
func (l pionLogger) Errorf(f string, a ...any) { l.emit(slog.LevelWarn, fmt.Sprintf(f, a...)) }

// nackCounts counts the packets one session NACKed, by media SSRC class.
// It is an interceptor.Factory registered before pion's NACK generator,
// so the generator's RTCP goes through it.
type nackCounts struct {
	videoSSRC *atomic.Uint32
	video     atomic.Uint64
	audio     atomic.Uint64
}

func (c *nackCounts) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &nackCounter{c: c}, nil
}

type nackCounter struct {
	interceptor.NoOp
	c *nackCounts
}

func (n *nackCounter) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attr interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			nack, ok := p.(*rtcp.TransportLayerNack)
			if !ok {
				continue
			}
			k := 0
			for i := range nack.Nacks {
				k += len(nack.Nacks[i].PacketList())
			}
			if nack.MediaSSRC == n.c.videoSSRC.Load() {
				n.c.video.Add(uint64(k))
			} else {
				n.c.audio.Add(uint64(k))
			}
		}
		return w.Write(pkts, attr)
	})
}
