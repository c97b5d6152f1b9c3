package shared_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/edgenode/edgenode/internal/media"
	pb "github.com/edgenode/edgenode/plugins/proto"
	"github.com/edgenode/edgenode/plugins/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo is a contract-level encoder: it returns every input unit as the
// output of rendition 0, preceded by a health report, and fails on request.
type echo struct{ gotCfg chan *pb.Config }

func (e *echo) Probe(context.Context) (*pb.ProbeReply, error) {
	return &pb.ProbeReply{Name: "echo", Available: false, Reason: "not a real encoder", Hardware: true}, nil
}

func (e *echo) Transcode(_ context.Context, cfg *pb.Config, s shared.Stream) error {
	e.gotCfg <- cfg
	if err := s.Send(&pb.TranscodeOut{Msg: &pb.TranscodeOut_Health{Health: &pb.Health{State: "running"}}}); err != nil {
		return err
	}
	for {
		au, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if au.GetPts() < 0 {
			return errors.New("negative pts requested a failure")
		}
		if err := s.Send(&pb.TranscodeOut{Msg: &pb.TranscodeOut_Output{Output: &pb.Output{Rendition: 0, Au: au}}}); err != nil {
			return err
		}
	}
}

func dial(t *testing.T, e shared.Encoder) (*shared.Client, *plugin.GRPCClient) {
	t.Helper()
	c, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{shared.PluginName: &shared.EncoderPlugin{Impl: e}})
	t.Cleanup(func() { c.Close() })
	raw, err := c.Dispense(shared.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*shared.Client), c
}

func TestContract(t *testing.T) {
	e := &echo{gotCfg: make(chan *pb.Config, 1)}
	c, _ := dial(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	rep, err := c.Probe(ctx)
	if err != nil || rep.GetName() != "echo" || rep.GetAvailable() || rep.GetReason() == "" || !rep.GetHardware() {
		t.Fatalf("probe %v, %v", rep, err)
	}

	cfg := &pb.Config{Renditions: []*pb.Rendition{{Name: "360p", Width: 640, Height: 360, Bitrate: 600000}}, Audio: true}
	s, err := c.Transcode(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-e.gotCfg; got.GetRenditions()[0].GetName() != "360p" || !got.GetAudio() {
		t.Fatalf("plugin got config %v", got)
	}
	in := []*media.AccessUnit{
		{Codec: media.CodecH264, PTS: 3003, DTS: 0, Key: true, Payload: [][]byte{{0x67, 1}, {0x68, 2}, {0x65, 3}}},
		{Codec: media.CodecOpus, PTS: 960, DTS: 960, Key: true, Payload: [][]byte{{0xfc, 9}}},
		{Codec: media.CodecAAC, PTS: 1 << 40, DTS: 1 << 40, Key: true, Payload: [][]byte{{1}}},
	}
	for _, au := range in {
		if err := s.Send(shared.FromMedia(au)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var out []*media.AccessUnit
	health := 0
	for {
		m, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.GetHealth() != nil {
			health++
		}
		if o := m.GetOutput(); o != nil {
			out = append(out, shared.ToMedia(o.GetAu()))
		}
	}
	if health != 1 || len(out) != len(in) {
		t.Fatalf("health %d, outputs %d", health, len(out))
	}
	for i := range in {
		a, b := in[i], out[i]
		if a.Codec != b.Codec || a.PTS != b.PTS || a.DTS != b.DTS || a.Key != b.Key || len(a.Payload) != len(b.Payload) || string(a.Payload[0]) != string(b.Payload[0]) {
			t.Errorf("unit %d: sent %+v, got back %+v", i, a, b)
		}
	}

	// A plugin error reaches the host as the stream's error.
	s, err = c.Transcode(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-e.gotCfg
	if err := s.Send(&pb.AccessUnit{Codec: pb.Codec_CODEC_H264, Pts: -1}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := s.Recv()
		if err == nil {
			continue
		}
		if err == io.EOF || !strings.Contains(err.Error(), "negative pts") {
			t.Fatalf("err %v, want the plugin's error", err)
		}
		break
	}
}

// TestStreamMustStartWithConfig: a host that sends media first is refused.
func TestStreamMustStartWithConfig(t *testing.T) {
	e := &echo{gotCfg: make(chan *pb.Config, 1)}
	_, gc := dial(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := pb.NewEncoderClient(gc.Conn).Transcode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.TranscodeIn{Msg: &pb.TranscodeIn_Au{Au: &pb.AccessUnit{}}}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	if err == nil || !strings.Contains(err.Error(), shared.ErrNoConfig.Error()) {
		t.Fatalf("err %v, want %v", err, shared.ErrNoConfig)
	}
	var _ grpc.ClientConnInterface = gc.Conn
}

// TestCodecNumbersMatch: the wire enum and media.Codec share numbers, so
// FromMedia/ToMedia convert by value.
func TestCodecNumbersMatch(t *testing.T) {
	for _, c := range []struct {
		m media.Codec
		p pb.Codec
	}{{media.CodecUnknown, pb.Codec_CODEC_UNKNOWN}, {media.CodecH264, pb.Codec_CODEC_H264}, {media.CodecOpus, pb.Codec_CODEC_OPUS}, {media.CodecAAC, pb.Codec_CODEC_AAC}} {
		if int32(c.m) != int32(c.p) {
			t.Errorf("%v = %d on the wire %v = %d", c.m, c.m, c.p, c.p)
		}
	}
}
