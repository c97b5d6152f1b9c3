package whipclient

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"

	"github.com/edgenode/edgenode/ingest/rtpau"
)

// TestPacketizeRoundTrip: the clip packetized every way this client sends
// it depacketizes (ingest/rtpau) into the same access units.
func TestPacketizeRoundTrip(t *testing.T) {
	aus, err := SplitAnnexB(Slices4)
	if err != nil {
		t.Fatal(err)
	}
	if len(aus) != 60 {
		t.Fatalf("clip has %d access units, want 60", len(aus))
	}
	for _, mode := range []ParamMode{ParamsSeparate, ParamsSTAPA} {
		for _, mtu := range []int{200, 1200} {
			dep := rtpau.NewH264(rtpau.NewClock(90000, nil))
			var seq uint16 = 65500
			var got [][][]byte
			for i, au := range aus {
				for _, pl := range Packetize(au, mtu, mode) {
					if len(pl.Payload) > mtu {
						t.Fatalf("payload of %d bytes above MTU %d", len(pl.Payload), mtu)
					}
					out, err := dep.Push(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq,
						Timestamp: uint32(i * 3000), Marker: pl.Marker}, Payload: pl.Payload})
					seq++
					if err != nil {
						t.Fatalf("mode %d mtu %d AU %d: %v", mode, mtu, i, err)
					}
					for _, a := range out {
						got = append(got, a.Payload)
					}
				}
			}
			if len(got) != len(aus) {
				t.Fatalf("mode %d mtu %d: %d access units back, want %d", mode, mtu, len(got), len(aus))
			}
			for i := range aus {
				if !bytes.Equal(bytes.Join(got[i], nil), bytes.Join(aus[i], nil)) {
					t.Fatalf("mode %d mtu %d: AU %d differs", mode, mtu, i)
				}
			}
		}
	}
}

func TestPad(t *testing.T) {
	au := [][]byte{{0x65, 1, 2, 3}}
	p := pad(au, 100)
	if len(p) != 2 || len(p[0])+len(p[1]) != 100 || p[1][0] != 12 || p[1][len(p[1])-1] != 0x80 {
		t.Fatalf("pad: %v", p)
	}
	if len(au) != 1 {
		t.Fatal("pad modified its input")
	}
}
