package turn_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/edgenode/edgenode/turn"
	"github.com/edgenode/edgenode/turn/turntest"
)

// TestBadCredentialsGet401 tries each kind of bad TURN REST credential on
// each transport; every Allocate must fail with 401.
func TestBadCredentialsGet401(t *testing.T) {
	media := newPeer(t)
	srv := turntest.Start(t, turntest.Config(), apOf(media))
	secret := srv.Secrets.Get(turn.SecretName)
	if len(secret) == 0 {
		t.Fatal("no node secret stored")
	}
	now := time.Now()
	signed := func(user string) [2]string { return [2]string{user, turn.Password(secret, user)} }
	u := turn.Username(now.Add(time.Hour), 1)
	cases := map[string][2]string{
		"expired":                  signed(turn.Username(now.Add(-time.Minute), 1)),
		"beyond max_ttl":           signed(turn.Username(now.Add(turn.DefaultMaxTTL+time.Hour), 1)),
		"no expiry":                signed("alice"),
		"empty user":               signed("1900000000:"),
		"wrong secret":             {u, turn.Password([]byte("not the node secret at all!!"), u)},
		"password of another user": {u, turn.Password(secret, turn.Username(now.Add(time.Hour), 2))},
	}

	for _, tr := range []string{"udp", "tcp"} {
		for name, c := range cases {
			t.Run(tr+"/"+name, func(t *testing.T) {
				cl := dial(t, srv, tr, c[0], c[1])
				_, err := cl.Allocate()
				if code := turnCode(err); code != 401 {
					t.Fatalf("Allocate: %v (code %d), want 401", err, code)
				}
			})
		}
	}
	if got := metricValue(t, srv, "edgenode_turn_auth_failures_total", "reason", "credential"); got < 8 {
		t.Errorf("auth_failures_total{credential} = %v, want >= 8", got)
	}
	if got := metricValue(t, srv, "edgenode_turn_auth_failures_total", "reason", "integrity"); got < 4 {
		t.Errorf("auth_failures_total{integrity} = %v, want >= 4", got)
	}
	// Positive control: the node's own credentials work.
	gu, gp := creds(t, srv, 1)
	if _, err := dial(t, srv, "udp", gu, gp).Allocate(); err != nil {
		t.Fatalf("good credentials: %v", err)
	}
}

// TestUserQuota486: user_quota allocations per username, then 486; another
// username is unaffected; total_quota gives 508.
func TestUserQuota486(t *testing.T) {
	cfg := turntest.Config()
	cfg.UserQuota = 2
	cfg.TotalQuota = 3
	srv := turntest.Start(t, cfg)
	u, p := creds(t, srv, 5)
	for i := range 2 {
		if _, err := dial(t, srv, "tcp", u, p).Allocate(); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	_, err := dial(t, srv, "tcp", u, p).Allocate()
	if code := turnCode(err); code != 486 {
		t.Fatalf("third allocation: %v (code %d), want 486", err, code)
	}
	u2, p2 := creds(t, srv, 6)
	if _, err := dial(t, srv, "udp", u2, p2).Allocate(); err != nil {
		t.Fatalf("other user: %v", err)
	}
	_, err = dial(t, srv, "udp", u2, p2).Allocate()
	if code := turnCode(err); code != 508 {
		t.Fatalf("beyond total_quota: %v (code %d), want 508", err, code)
	}
	if got := metricValue(t, srv, "edgenode_turn_allocations_rejected_total", "reason", "user_quota"); got != 1 {
		t.Errorf("rejected{user_quota} = %v, want 1", got)
	}
}

// TestAllocateRateLimit: a client IP beyond alloc_burst gets 486 at once.
func TestAllocateRateLimit(t *testing.T) {
	cfg := turntest.Config()
	cfg.AllocRate = 0.001
	cfg.AllocBurst = 2 // only authenticated Allocate requests count
	srv := turntest.Start(t, cfg)
	u, p := creds(t, srv, 9)
	for i := range 2 {
		if _, err := dial(t, srv, "tcp", u, p).Allocate(); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	_, err := dial(t, srv, "tcp", u, p).Allocate()
	if code := turnCode(err); code != 486 {
		t.Fatalf("allocation beyond the burst: %v (code %d), want 486", err, code)
	}
	if got := metricValue(t, srv, "edgenode_turn_allocations_rejected_total", "reason", "rate"); got < 1 {
		t.Errorf("rejected{rate} = %v", got)
	}
}

// TestRotateSecret: after rotation both old and new credentials work for
// the grace period, then only the new ones.
func TestRotateSecret(t *testing.T) {
	cfg := turntest.Config()
	cfg.SecretGrace = 1500 * time.Millisecond
	srv := turntest.Start(t, cfg)
	oldU, oldP := creds(t, srv, 3)
	before := srv.Secrets.Get(turn.SecretName)
	if err := srv.RotateSecret(); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, srv.Secrets.Get(turn.SecretName)) {
		t.Fatal("secret not rotated in the store")
	}
	if prev := srv.Secrets.Get(turn.PrevSecretName); !bytes.Equal(prev[8:], before) {
		t.Fatal("previous secret not kept in the store")
	}
	newU, newP := creds(t, srv, 3)
	if oldP == newP && oldU == newU {
		t.Fatal("credentials unchanged by rotation")
	}
	if _, err := dial(t, srv, "udp", oldU, oldP).Allocate(); err != nil {
		t.Fatalf("old credentials within grace: %v", err)
	}
	if _, err := dial(t, srv, "udp", newU, newP).Allocate(); err != nil {
		t.Fatalf("new credentials: %v", err)
	}
	time.Sleep(cfg.SecretGrace + 100*time.Millisecond)
	_, err := dial(t, srv, "udp", oldU, oldP).Allocate()
	if code := turnCode(err); code != 401 {
		t.Fatalf("old credentials after grace: %v (code %d), want 401", err, code)
	}
}

// TestExpiredCredentialKeepsItsAllocation: a credential that expires
// while in use still refreshes and extends its own allocation, but cannot
// make a new one.
func TestExpiredCredentialKeepsItsAllocation(t *testing.T) {
	media := newPeer(t)
	srv := turntest.Start(t, turntest.Config(), apOf(media))
	secret := srv.Secrets.Get(turn.SecretName)
	u := turn.Username(time.Now().Add(2*time.Second), 11)
	p := turn.Password(secret, u)
	c := dial(t, srv, "udp", u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	time.Sleep(time.Until(time.Unix(mustExpiry(t, u), 0)) + 200*time.Millisecond)
	if err := c.CreatePermission(media.LocalAddr()); err != nil {
		t.Fatalf("CreatePermission with the allocation's expired credential: %v", err)
	}
	_, err = dial(t, srv, "udp", u, p).Allocate()
	if code := turnCode(err); code != 401 {
		t.Fatalf("new allocation with expired credential: %v (code %d), want 401", err, code)
	}
}

func mustExpiry(t *testing.T, u string) int64 {
	t.Helper()
	exp, _, err := turn.ParseUsername(u, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return exp.Unix()
}

// TestSelfSignedCertificateKept: the certificate generated on first start
// is reused on the next start from the same data dir.
func TestSelfSignedCertificateKept(t *testing.T) {
	dir := t.TempDir()
	start := func() []byte {
		s := turn.New(turntest.Config(), turn.Deps{Secrets: &turntest.MapSecrets{}, DataDir: dir,
			Logger: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}()
		if s.Certificate() == nil {
			t.Fatal("no certificate")
		}
		if err := s.Certificate().VerifyHostname("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		return s.Certificate().Raw
	}
	if a, b := start(), start(); !bytes.Equal(a, b) {
		t.Fatal("certificate regenerated on second start")
	}
}

// TestICEServers checks URLs, transports and that the credentials work.
func TestICEServers(t *testing.T) {
	srv := turntest.Start(t, turntest.Config())
	a := srv.Addrs()
	ice := srv.ICEServers(77)
	if len(ice) != 2 {
		t.Fatalf("got %d ICE servers: %+v", len(ice), ice)
	}
	want := []string{
		"turn:" + a.UDP.String() + "?transport=udp",
		"turn:" + a.TCP.String() + "?transport=tcp",
		"turns:" + a.TLS.String() + "?transport=tcp",
	}
	if ice[0].URLs[0] != "stun:"+a.UDP.String() {
		t.Fatalf("stun URL %v", ice[0].URLs)
	}
	for i, w := range want {
		if ice[1].URLs[i] != w {
			t.Fatalf("URL %d = %s, want %s", i, ice[1].URLs[i], w)
		}
	}
	exp, user, err := turn.ParseUsername(ice[1].Username, time.Now(), turn.DefaultMaxTTL)
	if err != nil || user != "77" || time.Until(exp) < turn.DefaultCredentialTTL-time.Minute {
		t.Fatalf("username %q: %v %v", ice[1].Username, user, err)
	}
	links := turn.LinkHeaders(ice)
	if len(links) != 4 || links[0] != "<stun:"+a.UDP.String()+`>; rel="ice-server"` {
		t.Fatalf("links %q", links)
	}
	if _, err := dial(t, srv, "tls", ice[1].Username, ice[1].Credential.(string)).Allocate(); err != nil {
		t.Fatalf("allocate with ICEServers credentials over TLS: %v", err)
	}
}

// TestUserQuotaConcurrent: many simultaneous Allocates of one username on
// separate TCP streams never exceed user_quota.
func TestUserQuotaConcurrent(t *testing.T) {
	cfg := turntest.Config()
	cfg.UserQuota = 3
	srv := turntest.Start(t, cfg)
	u, p := creds(t, srv, 12)
	const n = 12
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = dial(t, srv, "tcp", u, p)
	}
	errs := make(chan error, n)
	for _, c := range clients {
		go func() { _, err := c.Allocate(); errs <- err }()
	}
	ok, quota := 0, 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case turnCode(err) == 486:
			quota++
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if ok != cfg.UserQuota || quota != n-cfg.UserQuota {
		t.Fatalf("%d allocations succeeded and %d got 486, want %d and %d", ok, quota, cfg.UserQuota, n-cfg.UserQuota)
	}
}
