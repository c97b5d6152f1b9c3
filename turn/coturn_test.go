package turn_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/turn/turntest"
)

// coturn's own client tools (Debian package coturn) against the node.

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package coturn; CI installs it): %v", name, err)
	}
	return p
}

// freeUDPPair returns p such that 127.0.0.1:p and :p+1 were free.
func freeUDPPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + 1})
		_ = a.Close()
		if err == nil {
			_ = b.Close()
			return p
		}
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// startPeer runs turnutils_peer (a UDP echo peer) on 127.0.0.1:port.
func startPeer(t *testing.T, port int) {
	t.Helper()
	bin := needTool(t, "turnutils_peer")
	cmd := exec.Command(bin, "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Wait until it holds the port.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return
		}
		_ = c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("turnutils_peer did not bind")
}

var (
	recvRe = regexp.MustCompile(`tot_recv_msgs=(\d+)`)
	lostRe = regexp.MustCompile(`Total lost packets (\d+)`)
)

func uclient(t *testing.T, tcp bool, port int, user, pass string, peerPort, n int) string {
	t.Helper()
	bin := needTool(t, "turnutils_uclient")
	args := []string{"-u", user, "-w", pass, "-e", "127.0.0.1", "-r", strconv.Itoa(peerPort),
		"-p", strconv.Itoa(port), "-n", strconv.Itoa(n), "-c"}
	if tcp {
		args = append(args, "-t")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, append(args, "127.0.0.1")...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("turnutils_uclient timed out:\n%s", out)
	}
	return string(out)
}

func lastInt(t *testing.T, re *regexp.Regexp, out string) int {
	t.Helper()
	m := re.FindAllStringSubmatch(out, -1)
	if m == nil {
		t.Fatalf("%s not in output:\n%s", re, out)
	}
	v, _ := strconv.Atoi(m[len(m)-1][1])
	return v
}

// TestCoturnClientTools: turnutils_uclient relays through the node over UDP
// and TCP with the node's REST credentials to a peer the config allows;
// with the default policy the same peer is refused with 403.
func TestCoturnClientTools(t *testing.T) {
	needTool(t, "turnutils_uclient")
	peer := freeUDPPair(t)
	startPeer(t, peer)

	t.Run("allowed", func(t *testing.T) {
		cfg := turntest.Config()
		cfg.TLSListen = "off"
		// uclient binds channels to the peer port and the next one (its RTCP pair).
		cfg.AllowedPeers = []string{fmt.Sprintf("127.0.0.1:%d", peer), fmt.Sprintf("127.0.0.1:%d", peer+1)}
		srv := turntest.Start(t, cfg)
		u, p := creds(t, srv, 100)
		for _, tcp := range []bool{false, true} {
			port := int(srv.Addrs().UDP.Port())
			if tcp {
				port = int(srv.Addrs().TCP.Port())
			}
			const n = 20
			out := uclient(t, tcp, port, u, p, peer, n)
			if got := lastInt(t, recvRe, out); got != n {
				t.Errorf("tcp=%v: peer echoes received %d, want %d:\n%s", tcp, got, n, out)
			}
			if lost := lastInt(t, lostRe, out); lost != 0 {
				t.Errorf("tcp=%v: lost %d", tcp, lost)
			}
		}
		if got := metricValue(t, srv, "edgenode_turn_relayed_packets_total", "direction", "from_peer"); got < 40 {
			t.Errorf("relayed_packets_total{from_peer} = %v, want >= 40", got)
		}
	})

	t.Run("default policy", func(t *testing.T) {
		cfg := turntest.Config()
		cfg.TLSListen = "off"
		srv := turntest.Start(t, cfg)
		u, p := creds(t, srv, 101)
		for _, tcp := range []bool{false, true} {
			port := int(srv.Addrs().UDP.Port())
			if tcp {
				port = int(srv.Addrs().TCP.Port())
			}
			out := uclient(t, tcp, port, u, p, peer, 5)
			if !strings.Contains(out, "error 403") {
				t.Errorf("tcp=%v: no 403 in uclient output:\n%s", tcp, out)
			}
			if m := recvRe.FindAllStringSubmatch(out, -1); m != nil && m[len(m)-1][1] != "0" {
				t.Errorf("tcp=%v: data relayed despite the policy:\n%s", tcp, out)
			}
		}
		if got := metricValue(t, srv, "edgenode_turn_denied_peers_total", "", ""); got < 2 {
			t.Errorf("denied_peers_total = %v", got)
		}
	})
}

// TestCoturnStunClient: turnutils_stunclient gets its reflexive address
// from the node's UDP listener.
func TestCoturnStunClient(t *testing.T) {
	bin := needTool(t, "turnutils_stunclient")
	srv := turntest.Start(t, turntest.Config())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-p", strconv.Itoa(int(srv.Addrs().UDP.Port())), "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("turnutils_stunclient: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`UDP reflexive addr: 127\.0\.0\.1:\d+`).Match(out) {
		t.Fatalf("no reflexive address:\n%s", out)
	}
}
