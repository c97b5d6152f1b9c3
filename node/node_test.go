package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgenode/edgenode/internal/store"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/api"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	c.CloseIdleConnections()
	return r.StatusCode, string(b)
}

func send(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "APIKey "+token)
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 10 * time.Second}
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	c.CloseIdleConnections()
	return r.StatusCode, b
}

type kicker struct {
	mu  sync.Mutex
	ids []uint64
}

func (k *kicker) Kick(id uint64) bool {
	k.mu.Lock()
	k.ids = append(k.ids, id)
	k.mu.Unlock()
	return true
}

func TestNodeSeparateListeners(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := node.Config{
		Ingest:    testIngest,
		TURN:      testTURN,
		Listen:    "127.0.0.1:0",
		PublicURL: "https://cdn-origin.example/",
		DataDir:   filepath.Join(t.TempDir(), "data"),
		API:       node.APIConfig{Listen: "127.0.0.1:0", Token: "configured-token"},
	}
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := &kicker{}
	n.SetPublisherControl(k)
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	in := n.Info()
	if in.TokenSource != "config" || in.Token != "" || in.PublicURL != "https://cdn-origin.example" || in.APIAddr == in.PublicAddr {
		t.Fatalf("info %+v", in)
	}
	pub := "http://" + in.PublicAddr
	for _, base := range []string{pub, in.APIURL} {
		if code, body := get(t, base+"/healthz", ""); code != 200 || body != "ok\n" {
			t.Fatalf("%s/healthz: %d %q", base, code, body)
		}
		if code, _ := get(t, base+"/readyz", ""); code != 200 {
			t.Fatalf("%s/readyz: %d", base, code)
		}
	}
	// HTTP/2 with prior knowledge (what a CDN or proxy speaks to an origin
	// behind its TLS) works next to HTTP/1.1.
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &h2}}
	r, err := h2c.Get(pub + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	h2c.CloseIdleConnections()
	if r.Proto != "HTTP/2.0" || r.StatusCode != 200 {
		t.Fatalf("h2c: %s %d", r.Proto, r.StatusCode)
	}
	// The management API and metrics live only on the API listener.
	if code, _ := get(t, pub+"/streaming/streams", "configured-token"); code != 404 {
		t.Fatalf("stream API on the public listener: %d", code)
	}
	if code, _ := get(t, pub+"/metrics", ""); code != 404 {
		t.Fatalf("metrics on the public listener: %d", code)
	}
	code, body := send(t, "POST", in.APIURL+"/streaming/streams", "configured-token", `{"name":"demo"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var s api.Stream
	json.Unmarshal(body, &s)
	key, active, found, err := n.LookupStream(s.ID)
	if err != nil || !found || !active || s.PushURLWHIP != "https://cdn-origin.example/whip/1_"+key {
		t.Fatalf("LookupStream = %q %v %v %v; stream %+v", key, active, found, err, s)
	}
	if _, _, found, err := n.LookupStream(99); found || err != nil {
		t.Fatalf("LookupStream(99) found=%v err=%v", found, err)
	}
	if code, body := send(t, "PATCH", in.APIURL+"/streaming/streams/1", "configured-token", `{"active":false}`); code != 200 {
		t.Fatalf("patch %d %s", code, body)
	}
	k.mu.Lock()
	kicked := append([]uint64(nil), k.ids...)
	k.mu.Unlock()
	if len(kicked) != 1 || kicked[0] != 1 {
		t.Fatalf("kicks %v", kicked)
	}
	code, metrics := get(t, in.APIURL+"/metrics", "")
	for _, m := range []string{"go_goroutines", "process_open_fds", "edgenode_build_info", "edgenode_streams 1", `edgenode_api_requests_total{code="201",method="POST"} 1`} {
		if code != 200 || !strings.Contains(metrics, m) {
			t.Fatalf("metrics lack %s (%d)", m, code)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", in.PublicAddr, time.Second); err == nil {
		t.Fatal("public listener still open after Close")
	}
	if _, _, _, err := n.LookupStream(1); err == nil {
		// store closed: an error, not a stale answer
		t.Fatal("LookupStream after Close succeeded")
	}
}

func TestTokenGeneratedOnceThenStored(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	start := func() node.Info {
		n, err := node.New(node.Config{Ingest: testIngest, TURN: testTURN, Listen: "127.0.0.1:0", DataDir: dir}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		in := n.Info()
		if code, _ := get(t, in.APIURL+"/streaming/streams", in.Token); code != 200 {
			t.Fatalf("token %q refused: %d", in.Token, code)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		return in
	}
	first := start()
	if first.TokenSource != "generated" || len(first.Token) < 32 {
		t.Fatalf("first boot %+v", first)
	}
	second := start()
	// Loopback dev node: the stored token is shown again (make run prints it every time).
	if second.TokenSource != "stored" || second.Token != first.Token {
		t.Fatalf("second boot %+v, first token %q", second, first.Token)
	}
}

func TestSecondNodeOnSameDataDirFails(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	a, _ := node.New(node.Config{Ingest: testIngest, TURN: testTURN, Listen: "127.0.0.1:0", DataDir: dir}, nil)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := node.New(node.Config{Ingest: testIngest, TURN: testTURN, Listen: "127.0.0.1:0", DataDir: dir}, nil)
	err := b.Run(context.Background())
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "in use by another edgenode") {
		t.Fatalf("second node: %v", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := node.New(node.Config{Listen: "bad"}, nil); err == nil || !strings.Contains(err.Error(), "'listen'") {
		t.Fatalf("New with bad listen: %v", err)
	}
}

func TestListenConflictIsReported(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	n, _ := node.New(node.Config{Listen: ln.Addr().String(), DataDir: dir}, nil)
	err = n.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run on a taken port: %v", err)
	}
	// The store was released: the data dir opens at once.
	st, err := store.Open(dir, store.Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("store still locked after a failed start: %v", err)
	}
	st.Close()
}
