package node

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// recorder is a component that logs its lifecycle calls into a shared list.
type recorder struct {
	name     string
	log      *[]string
	mu       *sync.Mutex
	startErr error
	notReady error
	done     chan struct{}
	wg       sync.WaitGroup
}

func (r *recorder) note(s string) { r.mu.Lock(); *r.log = append(*r.log, s); r.mu.Unlock() }

func (r *recorder) Start(ctx context.Context) error {
	r.note("start " + r.name)
	if r.startErr != nil {
		return r.startErr
	}
	done := make(chan struct{})
	r.done = done
	r.wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
	})
	return nil
}

func (r *recorder) Close() error {
	r.note("close " + r.name)
	if r.done != nil {
		close(r.done)
		r.done = nil
	}
	r.wg.Wait()
	return nil
}

func (r *recorder) Ready() error { return r.notReady }

func (r *recorder) RegisterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /"+r.name, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, r.name) })
}

func TestComponentsStartInOrderStopInReverse(t *testing.T) {
	defer goleak.VerifyNone(t)
	var log []string
	var mu sync.Mutex
	mk := func(name string) *recorder { return &recorder{name: name, log: &log, mu: &mu} }
	n, err := New(Config{Ingest: testIngest, TURN: testTURN, Listen: "127.0.0.1:0", DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	turn, origin := mk("turn"), mk("origin")
	n.extra = []namedComponent{{"turn", turn}, {"origin", origin}}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + n.Info().PublicAddr
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	r, err := c.Get(base + "/origin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if string(b) != "origin" {
		t.Fatalf("component route: %q", b)
	}
	origin.notReady = errors.New("no encoder")
	r, err = c.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 503 || !strings.Contains(string(b), "origin not ready: no encoder") {
		t.Fatalf("readyz with a component not ready: %d %q", r.StatusCode, b)
	}
	c.CloseIdleConnections()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil { // twice is fine
		t.Fatal(err)
	}
	want := []string{"start turn", "start origin", "close origin", "close turn"}
	if !slices.Equal(log, want) {
		t.Fatalf("lifecycle %v, want %v", log, want)
	}
}

func TestFailedComponentStartUnwinds(t *testing.T) {
	defer goleak.VerifyNone(t)
	var log []string
	var mu sync.Mutex
	dir := t.TempDir()
	n, _ := New(Config{Ingest: testIngest, TURN: testTURN, Listen: "127.0.0.1:0", DataDir: dir}, nil)
	n.extra = []namedComponent{
		{"turn", &recorder{name: "turn", log: &log, mu: &mu}},
		{"hwenc", &recorder{name: "hwenc", log: &log, mu: &mu, startErr: errors.New("no device")}},
		{"origin", &recorder{name: "origin", log: &log, mu: &mu}},
	}
	err := n.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start hwenc: no device") {
		t.Fatalf("Run: %v", err)
	}
	want := []string{"start turn", "start hwenc", "close hwenc", "close turn"}
	if !slices.Equal(log, want) {
		t.Fatalf("lifecycle %v, want %v", log, want)
	}
}

func TestConflictingRoutesAreAnError(t *testing.T) {
	defer goleak.VerifyNone(t)
	var log []string
	var mu sync.Mutex
	n, _ := New(Config{Ingest: testIngest, TURN: testTURN, Listen: "127.0.0.1:0", DataDir: t.TempDir()}, nil)
	// Two components claiming the same route.
	n.extra = []namedComponent{
		{"a", &recorder{name: "same", log: &log, mu: &mu}},
		{"b", &recorder{name: "same", log: &log, mu: &mu}},
	}
	err := n.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "routes of b") {
		t.Fatalf("Run: %v", err)
	}
	if len(log) != 0 {
		t.Fatalf("components started despite the conflict: %v", log)
	}
}

// TestSdNotify runs the node under a fake service manager: a real unixgram
// socket in NOTIFY_SOCKET, as systemd provides for Type=notify.
func TestSdNotify(t *testing.T) {
	defer goleak.VerifyNone(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // 100 ms → a ping every 50 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	n, err := New(Config{Ingest: testIngest, TURN: testTURN, Listen: "127.0.0.1:0", DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()

	deadline := time.Now().Add(20 * time.Second)
	next := func() string {
		t.Helper()
		conn.SetReadDeadline(deadline)
		buf := make([]byte, 4096)
		k, err := conn.Read(buf)
		if err != nil {
			cancel()
			<-done
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:k])
	}
	if msg := next(); !strings.HasPrefix(msg, "READY=1\nSTATUS=serving on 127.0.0.1:") {
		t.Fatalf("first notification %q", msg)
	}
	for i := 0; i < 2; i++ {
		if msg := next(); msg != "WATCHDOG=1" {
			t.Fatalf("watchdog ping %d: %q", i, msg)
		}
	}
	cancel()
	for {
		msg := next()
		if msg == "WATCHDOG=1" {
			continue // one may have been in flight
		}
		if msg != "STOPPING=1" {
			t.Fatalf("at stop: %q", msg)
		}
		break
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
