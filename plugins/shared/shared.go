// Package shared is the encoder plugin contract that both sides import: the
// go-plugin handshake, the versioned plugin sets, the Go interface a plugin
// implements (Encoder), the gRPC adapters, and the host's typed client.
//
// A plugin binary calls Serve(impl). The host starts it with
// NewClientConfig(cmd), dispenses PluginName and gets a *Client.
package shared

import (
	"context"
	"io"
	"os/exec"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/edgenode/edgenode/internal/media"
	pb "github.com/edgenode/edgenode/plugins/proto"
)

// ProtocolVersion is the newest plugin protocol this package speaks.
//
// Version history (keep every version that old plugins may still speak in
// VersionedPlugins, with a line here saying why it is kept):
//
//	1: Probe + Transcode (config, AUs in; AUs per rendition + health out).
const ProtocolVersion = 1

// PluginName is the name the encoder is dispensed under.
const PluginName = "encoder"

// Health states a plugin reports (pb.Health.State).
const (
	// StateRunning: encoding.
	StateRunning = "running"
	// StateShedding: behind real time in the last interval, the plugin
	// left out whole GOPs of its input to stay near the live edge.
	StateShedding = "shedding"
)

// Handshake is shared by host and plugins. The cookie is not a security
// measure: it keeps a user from running a plugin binary by hand.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "EDGENODE_ENCODER_PLUGIN",
	MagicCookieValue: "5d0c7a3e-edgenode-encoder",
}

// Encoder is what a plugin implements.
type Encoder interface {
	// Probe tells what the plugin can do on this machine. It should run a
	// tiny real encode; an unavailable plugin returns Available false and a
	// Reason, not an error.
	Probe(ctx context.Context) (*pb.ProbeReply, error)
	// Transcode runs one session: cfg was the first message, s yields the
	// access units (io.EOF when the host is done) and takes the outputs.
	// Transcode returns when the input ended and every output was sent, or
	// on failure.
	Transcode(ctx context.Context, cfg *pb.Config, s Stream) error
}

// Stream is the plugin's side of a Transcode call. Recv and Send may be
// called from different goroutines, but each from one goroutine at a time.
type Stream interface {
	Recv() (*pb.AccessUnit, error)
	Send(*pb.TranscodeOut) error
}

// PluginSets returns the versioned plugin sets for impl (nil impl on the
// host side).
func PluginSets(impl Encoder) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1: {PluginName: &EncoderPlugin{Impl: impl}},
	}
}

// Serve runs impl as a plugin process; it returns when the host is done.
func Serve(impl Encoder, logger hclog.Logger) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: PluginSets(impl),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	})
}

// NewClientConfig returns the go-plugin client configuration that runs cmd.
func NewClientConfig(cmd *exec.Cmd, logger hclog.Logger) *plugin.ClientConfig {
	return &plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: PluginSets(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
	}
}

// EncoderPlugin adapts an Encoder to go-plugin.
type EncoderPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Encoder
}

var (
	_ plugin.GRPCPlugin = (*EncoderPlugin)(nil)
	_ pb.EncoderServer  = (*grpcServer)(nil)
)

// GRPCServer registers the plugin side.
func (p *EncoderPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterEncoderServer(s, &grpcServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a *Client.
func (p *EncoderPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Client{c: pb.NewEncoderClient(c)}, nil
}

type grpcServer struct {
	pb.UnimplementedEncoderServer
	impl Encoder
}

func (s *grpcServer) Probe(ctx context.Context, _ *pb.ProbeRequest) (*pb.ProbeReply, error) {
	return s.impl.Probe(ctx)
}

func (s *grpcServer) Transcode(st grpc.BidiStreamingServer[pb.TranscodeIn, pb.TranscodeOut]) error {
	first, err := st.Recv()
	if err != nil {
		return err
	}
	cfg := first.GetConfig()
	if cfg == nil {
		return ErrNoConfig
	}
	return s.impl.Transcode(st.Context(), cfg, serverStream{st})
}

type serverStream struct {
	st grpc.BidiStreamingServer[pb.TranscodeIn, pb.TranscodeOut]
}

func (s serverStream) Recv() (*pb.AccessUnit, error) {
	for {
		m, err := s.st.Recv()
		if err != nil {
			return nil, err
		}
		if au := m.GetAu(); au != nil {
			return au, nil
		}
	}
}

func (s serverStream) Send(m *pb.TranscodeOut) error { return s.st.Send(m) }

// Client is the host's typed view of a plugin.
type Client struct {
	c pb.EncoderClient
}

// Probe asks the plugin what it can do here.
func (c *Client) Probe(ctx context.Context) (*pb.ProbeReply, error) {
	return c.c.Probe(ctx, &pb.ProbeRequest{})
}

// Transcode opens a session and sends cfg. Cancel ctx to abort it.
func (c *Client) Transcode(ctx context.Context, cfg *pb.Config) (*Session, error) {
	st, err := c.c.Transcode(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&pb.TranscodeIn{Msg: &pb.TranscodeIn_Config{Config: cfg}}); err != nil {
		return nil, err
	}
	return &Session{st: st}, nil
}

// Session is one Transcode call seen from the host. Send and Recv may run
// in different goroutines.
type Session struct {
	st grpc.BidiStreamingClient[pb.TranscodeIn, pb.TranscodeOut]
}

// Send hands one access unit to the encoder.
func (s *Session) Send(au *pb.AccessUnit) error {
	return s.st.Send(&pb.TranscodeIn{Msg: &pb.TranscodeIn_Au{Au: au}})
}

// CloseSend tells the plugin that no more input follows; it flushes and
// ends the stream (Recv then returns io.EOF).
func (s *Session) CloseSend() error { return s.st.CloseSend() }

// Recv returns the next output or health report; io.EOF at the clean end.
func (s *Session) Recv() (*pb.TranscodeOut, error) {
	m, err := s.st.Recv()
	if err == io.EOF {
		return nil, io.EOF
	}
	return m, err
}

// FromMedia converts a node access unit to the wire form (sharing payload).
// pb.Codec and media.Codec share their numbers (TestCodecNumbersMatch).
func FromMedia(au *media.AccessUnit) *pb.AccessUnit {
	return &pb.AccessUnit{
		Codec:   pb.Codec(au.Codec),
		Pts:     au.PTS,
		Dts:     au.DTS,
		Key:     au.Key,
		Payload: au.Payload,
	}
}

// ToMedia converts a wire access unit to the node's form (sharing payload).
func ToMedia(au *pb.AccessUnit) *media.AccessUnit {
	return &media.AccessUnit{
		Codec:   media.Codec(au.GetCodec()),
		PTS:     au.GetPts(),
		DTS:     au.GetDts(),
		Key:     au.GetKey(),
		Payload: au.GetPayload(),
	}
}
