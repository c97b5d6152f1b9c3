package ingest_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/ingest/internal/whipclient"
)

// candidates returns the a=candidate values of an SDP.
func candidates(sdp string) []string {
	var out []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=candidate:"); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestCandidates: every session's answer carries all its candidates (the
// server does not trickle, RFC 9725 §4.3.2) on the one UDP port and the
// ICE-TCP port; `interfaces` limits them, and nat_1to1_ips replaces the
// addresses announced.
func TestCandidates(t *testing.T) {
	t.Run("udp mux and ice-tcp", func(t *testing.T) {
		e := newEnv(t, testConfig())
		p := publish(t, e, whipclient.Options{})
		udpPort, tcpPort := "", ""
		for _, a := range e.srv.UDPAddrs() {
			if a.(*net.UDPAddr).IP.IsLoopback() {
				_, udpPort, _ = net.SplitHostPort(a.String())
			}
		}
		_, tcpPort, _ = net.SplitHostPort(e.srv.TCPAddr().String())
		var udp, tcp int
		for _, c := range candidates(p.Answer) {
			f := strings.Fields(c)
			switch {
			case strings.EqualFold(f[2], "udp") && f[4] == "127.0.0.1" && f[5] == udpPort:
				udp++
			case strings.EqualFold(f[2], "tcp") && f[5] == tcpPort && strings.Contains(c, "tcptype passive"):
				tcp++
			}
		}
		if udp == 0 || tcp == 0 {
			t.Fatalf("answer candidates (udp mux %s, tcp %s): %q", udpPort, tcpPort, candidates(p.Answer))
		}
		// A second session shares the same UDP port.
		e.streams.set(43, "k43", true)
		p2 := publish(t, e, whipclient.Options{URL: e.base + "/whip/43_k43"})
		if !strings.Contains(p2.Answer, "127.0.0.1 "+udpPort+" typ host") {
			t.Errorf("second session not on the shared UDP port %s: %q", udpPort, candidates(p2.Answer))
		}
	})
	t.Run("publisher over ICE-TCP only", func(t *testing.T) {
		e := newEnv(t, testConfig())
		sub := e.hub.Subscribe(key42, "test")
		defer sub.Close()
		p := publish(t, e, whipclient.Options{TCP: true})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		waitAUs(ctx, t, sub, 30)
		pair, err := p.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil || pair.Local.Protocol.String() != "tcp" {
			t.Fatalf("selected pair %v (%v): not ICE-TCP", pair, err)
		}
	})
	t.Run("interfaces", func(t *testing.T) {
		cfg := testConfig()
		cfg.Interfaces = []string{"lo"}
		e := newEnv(t, cfg)
		p := publish(t, e, whipclient.Options{})
		for _, c := range candidates(p.Answer) {
			if ip := net.ParseIP(strings.Fields(c)[4]); ip == nil || !ip.IsLoopback() {
				t.Errorf("candidate %q is not on the allowed interface lo", c)
			}
		}
	})
	t.Run("interfaces and nat_1to1_ips", func(t *testing.T) {
		cfg := testConfig()
		cfg.Interfaces = []string{"lo"}
		cfg.NAT1To1IPs = []string{"203.0.113.7"}
		e := newEnv(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The publisher cannot reach 203.0.113.7; only the answer matters.
		p, err := whipclient.Publish(ctx, whipclient.Options{URL: e.base + "/whip/42_secret"})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		cands := candidates(p.Answer)
		if len(cands) == 0 {
			t.Fatal("no candidates in the answer")
		}
		for _, c := range cands {
			if f := strings.Fields(c); f[4] != "203.0.113.7" {
				t.Errorf("candidate %q does not announce the NAT address", c)
			}
		}
	})
}
