package turn_test

import (
	"net"
	"testing"
	"time"

	"github.com/edgenode/edgenode/turn/turntest"
)

// BenchmarkRelay sends 1000-byte datagrams client → relay → peer through
// the node's TURN over UDP and TCP, next to plain loopback UDP (the
// baseline) in the same run. Lockstep batches of 16 keep loss out of it.
func BenchmarkRelay(b *testing.B) {
	payload := make([]byte, 1000)
	run := func(b *testing.B, send func([]byte) error, peer net.PacketConn) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		buf := make([]byte, 2000)
		lost := 0
		b.ResetTimer()
		for i := 0; i < b.N; i += 16 {
			n := min(16, b.N-i)
			for range n {
				if err := send(payload); err != nil {
					b.Fatal(err)
				}
			}
			for range n {
				_ = peer.SetReadDeadline(time.Now().Add(time.Second))
				if _, _, err := peer.ReadFrom(buf); err != nil {
					lost++
					break
				}
			}
		}
		b.ReportMetric(float64(lost), "lost-batches")
	}
	b.Run("direct-udp", func(b *testing.B) {
		peer := newPeerB(b)
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, func(p []byte) error { _, err := c.WriteTo(p, peer.LocalAddr()); return err }, peer)
	})
	for _, tr := range []string{"udp", "tcp"} {
		b.Run("turn-"+tr, func(b *testing.B) {
			peer := newPeerB(b)
			cfg := turntest.Config()
			cfg.BandwidthCap = 1 << 40
			srv := turntest.Start(b, cfg, peer.LocalAddr().(*net.UDPAddr).AddrPort())
			u, p := srvCreds(b, srv)
			c := dial(b, srv, tr, u, p)
			relay, err := c.Client.Allocate()
			if err != nil {
				b.Fatal(err)
			}
			defer relay.Close()
			if err := c.CreatePermission(peer.LocalAddr()); err != nil {
				b.Fatal(err)
			}
			// Let the channel binding settle so the loop measures ChannelData.
			for range 50 {
				_, _ = relay.WriteTo(payload, peer.LocalAddr())
				time.Sleep(2 * time.Millisecond)
			}
			drain(peer)
			run(b, func(p []byte) error { _, err := relay.WriteTo(p, peer.LocalAddr()); return err }, peer)
		})
	}
}

func drain(c net.PacketConn) {
	buf := make([]byte, 2000)
	for {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := c.ReadFrom(buf); err != nil {
			return
		}
	}
}

func newPeerB(b *testing.B) *net.UDPConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func srvCreds(b *testing.B, srv *turntest.Server) (string, string) {
	u, p, err := srv.Credentials(1)
	if err != nil {
		b.Fatal(err)
	}
	return u, p
}
