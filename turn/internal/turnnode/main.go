// Command turnnode runs edgenode's TURN server standalone on loopback, for
// scripts/bench-turn.sh and manual tests with coturn's turnutils. It prints
// one line "udp=… tcp=… tls=… username=… password=…" once listening, and
// serves until SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/edgenode/edgenode/turn"
	"github.com/edgenode/edgenode/turn/turntest"
)

func main() {
	var (
		udp     = flag.String("udp", "127.0.0.1:0", "UDP listen address or off")
		tcp     = flag.String("tcp", "127.0.0.1:0", "TCP listen address or off")
		tls     = flag.String("tls", "off", "TLS listen address or off")
		allow   = flag.String("allow", "", "comma-separated allowed_peers")
		bw      = flag.Int64("bandwidth", 0, "bandwidth_cap in bytes/s (0: default)")
		quota   = flag.Int("user-quota", 0, "user_quota (0: default)")
		rate    = flag.Float64("alloc-rate", 0, "alloc_rate per client IP per second (0: default)")
		burst   = flag.Int("alloc-burst", 0, "alloc_burst (0: default)")
		stream  = flag.Uint64("stream", 1, "stream id put into the printed username")
		verbose = flag.Bool("v", false, "debug logs")
	)
	flag.Parse()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := turn.Config{
		UDPListen: *udp, TCPListen: *tcp, TLSListen: *tls, RelayBind: "127.0.0.1",
		BandwidthCap: *bw, UserQuota: *quota, AllocRate: *rate, AllocBurst: *burst,
	}
	if *allow != "" {
		cfg.AllowedPeers = strings.Split(*allow, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := turn.New(cfg, turn.Deps{Logger: log, Secrets: &turntest.MapSecrets{}})
	if err := s.Start(ctx); err != nil {
		log.Error("start", "err", err)
		_ = s.Close()
		os.Exit(1)
	}
	user, pass, err := s.Credentials(*stream)
	if err != nil {
		log.Error("credentials", "err", err)
		_ = s.Close()
		os.Exit(1)
	}
	a := s.Addrs()
	fmt.Printf("udp=%s tcp=%s tls=%s username=%s password=%s\n", a.UDP, a.TCP, a.TLS, user, pass)
	<-ctx.Done()
	if err := s.Close(); err != nil {
		log.Error("close", "err", err)
		os.Exit(1)
	}
}
