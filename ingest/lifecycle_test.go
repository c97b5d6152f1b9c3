package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/ingest/internal/whipclient"
	"github.com/edgenode/edgenode/internal/hub"
)

// waitAUs waits for n more video access units on sub.
func waitAUs(ctx context.Context, t *testing.T, sub *hub.Subscription, n int) {
	t.Helper()
	got := 0
	for got < n {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for media: %v (got %d)", err, got)
		}
		if ev.Kind == hub.AccessUnit && ev.AU.Codec.IsVideo() {
			got++
		}
	}
}

// TestICERestart: PATCH with new credentials and If-Match "*" restarts ICE
// (RFC 9725 §4.3.3): 200, a new ETag, and media keeps flowing over the new
// ICE session; the old ETag is stale afterwards.
func TestICERestart(t *testing.T) {
	e := newEnv(t, testConfig())
	sub := e.hub.Subscribe(key42, "test")
	defer sub.Close()
	p := publish(t, e, whipclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitAUs(ctx, t, sub, 10)
	oldTag := p.ETag()
	oldUfrag := ufragOf(p.PC.RemoteDescription().SDP)
	if err := p.RestartICE(ctx); err != nil {
		t.Fatal(err)
	}
	if p.ETag() == oldTag || p.ETag() == "" {
		t.Fatalf("ETag after restart %q (before %q)", p.ETag(), oldTag)
	}
	if u := ufragOf(p.PC.RemoteDescription().SDP); u == oldUfrag || u == "" {
		t.Fatalf("server ufrag %q unchanged by the restart", u)
	}
	// Media over the restarted ICE session reaches the hub.
	waitAUs(ctx, t, sub, 40)
	want(t, do(t, "PATCH", p.Location, "application/trickle-ice-sdpfrag", "a=ice-ufrag:x\r\n", "If-Match", oldTag), 412, "")
	if !e.hub.Live(key42) || e.srv.Sessions() != 1 {
		t.Fatal("session lost across the ICE restart")
	}
}

func ufragOf(sdp string) string {
	for _, l := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// TestStalePublisher: a publisher that vanishes (no DTLS close, no DELETE:
// its network just goes away) frees the stream within stale_timeout, so a
// presenter who reloads can go live again.
func TestStalePublisher(t *testing.T) {
	cfg := testConfig()
	cfg.StaleTimeout = 2 * time.Second
	e := newEnv(t, cfg)
	sub := e.hub.Subscribe(key42, "test")
	defer sub.Close()
	p := publish(t, e, whipclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitAUs(ctx, t, sub, 5)
	vanished := time.Now()
	p.Blackhole()
	// Until the stream is freed, a new publisher is refused...
	r := do(t, "POST", e.base+"/whip/42_secret", "application/sdp", p.PC.LocalDescription().SDP)
	want(t, r, 400, "someone is already publishing to the path '42_secret'")
	// ...and within the stale timeout (plus ICE's check period) it is free.
	deadline := vanished.Add(3 * cfg.StaleTimeout)
	for e.hub.Live(key42) {
		if time.Now().After(deadline) {
			t.Fatalf("stream still held %v after the publisher vanished (stale_timeout %v)", time.Since(vanished), cfg.StaleTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("stream freed %v after the publisher vanished", time.Since(vanished).Round(10*time.Millisecond))
	p2 := publish(t, e, whipclient.Options{})
	_ = p2
	waitAUs(ctx, t, sub, 5)
}

// TestReloadReplacesLostPublisher: a publisher whose connection is
// already lost (ICE disconnected: no traffic for half the stale timeout) is
// replaced at once by a new POST with the right key, instead of blocking
// the presenter until the stale timeout ends the old session.
func TestReloadReplacesLostPublisher(t *testing.T) {
	cfg := testConfig()
	cfg.StaleTimeout = 10 * time.Second // disconnected at 5 s, failed at 10 s
	e := newEnv(t, cfg)
	sub := e.hub.Subscribe(key42, "test")
	defer sub.Close()
	p := publish(t, e, whipclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitAUs(ctx, t, sub, 5)
	vanished := time.Now()
	p.Blackhole()
	for {
		p2, err := whipclient.Publish(ctx, whipclient.Options{URL: e.base + "/whip/42_secret"})
		if err == nil {
			t.Cleanup(func() { _ = p2.Close() })
			break
		}
		if !strings.Contains(err.Error(), "someone is already publishing") {
			t.Fatal(err)
		}
		if time.Since(vanished) > cfg.StaleTimeout {
			t.Fatalf("new publisher refused for %v: the lost one was not replaced before the stale timeout", time.Since(vanished))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("new publisher accepted %v after the old one vanished", time.Since(vanished).Round(10*time.Millisecond))
	waitAUs(ctx, t, sub, 5)
}

// TestKick: the API deactivating a stream drops its live publisher.
func TestKick(t *testing.T) {
	e := newEnv(t, testConfig())
	sub := e.hub.Subscribe(key42, "test")
	defer sub.Close()
	p := publish(t, e, whipclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitAUs(ctx, t, sub, 5)
	e.streams.set(42, "secret", false)
	if !e.srv.Kick(42) {
		t.Fatal("Kick found no session")
	}
	if e.hub.Live(key42) || e.srv.Sessions() != 0 {
		t.Fatal("stream still live after Kick")
	}
	if e.srv.Kick(42) {
		t.Error("second Kick ended something")
	}
	// The kicked publisher cannot come back: its stream is deactivated.
	want(t, do(t, "POST", e.base+"/whip/42_secret", "application/sdp", p.PC.LocalDescription().SDP), 403, "deactivated")
	// Nor can it PATCH its old session.
	want(t, do(t, "PATCH", p.Location, "application/trickle-ice-sdpfrag", "a=ice-ufrag:x\r\n", "If-Match", p.ETag()), 404, "")
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg ingest.Config
		key string
	}{
		{ingest.Config{UDPPort: 70000}, "'udp_port'"},
		{ingest.Config{TCPPort: -5}, "'tcp_port'"},
		{ingest.Config{NAT1To1IPs: []string{"host.example"}}, "'nat_1to1_ips'"},
		{ingest.Config{StaleTimeout: time.Millisecond}, "'stale_timeout'"},
		{ingest.Config{PostRate: -1}, "'post_rate'"},
		{ingest.Config{StartBitrateKbps: -1}, "'start_bitrate_kbps'"},
		{ingest.Config{ICEServers: []string{"http://x"}}, "'ice_servers'"},
		{ingest.Config{Interfaces: []string{""}}, "'interfaces'"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.key)
		}
	}
	if err := (ingest.Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

// TestCloseAfterPartialStart: Close is safe without Start and twice.
func TestCloseAfterPartialStart(t *testing.T) {
	srv, err := ingest.New(ingest.Config{}, ingest.Deps{Hub: hub.New(0), Streams: &streamStore{m: map[uint64]streamRec{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

// TestNeverConnected: a session whose publisher never completes ICE (it
// POSTed and vanished) frees the stream within the stale timeout too.
func TestNeverConnected(t *testing.T) {
	cfg := testConfig()
	cfg.StaleTimeout = 2 * time.Second
	e := newEnv(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A real offer whose peer is gone before anyone answers it.
	p, err := whipclient.Publish(ctx, whipclient.Options{URL: e.base + "/whip/42_secret"})
	if err != nil {
		t.Fatal(err)
	}
	offer := p.PC.LocalDescription().SDP
	if st, err := p.Delete(ctx); err != nil || st != 200 {
		t.Fatalf("DELETE %d %v", st, err)
	}
	_ = p.Close()
	posted := time.Now()
	want(t, do(t, "POST", e.base+"/whip/42_secret", "application/sdp", offer), 201, "")
	if !e.hub.Live(key42) {
		t.Fatal("not live after 201")
	}
	for e.hub.Live(key42) {
		if time.Since(posted) > 5*cfg.StaleTimeout {
			t.Fatalf("a session that never connected held the stream for %v", time.Since(posted))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("freed %v after the POST", time.Since(posted).Round(10*time.Millisecond))
}
