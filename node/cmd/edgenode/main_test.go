package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin is the real edgenode binary, built once by TestMain the way
// `make build` builds it.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgenode-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "edgenode")
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/edgenode/edgenode/node.Version=test-1.2.3", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build edgenode: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running edgenode.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
	url    string
	token  string
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String() + p.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

var (
	apiRE   = regexp.MustCompile(`stream API  (http://\S+)/streaming/streams`)
	tokenRE = regexp.MustCompile(`API token   (\S+)`)
)

// ephemeralPorts keeps the media and TURN listeners of a test node off the
// well-known ports, so tests run beside each other and beside `make run`.
var ephemeralPorts = []string{
	"EDGENODE_INGEST_UDP_PORT=-1", "EDGENODE_INGEST_TCP_PORT=-1",
	"EDGENODE_TURN_UDP_LISTEN=127.0.0.1:0", "EDGENODE_TURN_TCP_LISTEN=127.0.0.1:0", "EDGENODE_TURN_TLS_LISTEN=127.0.0.1:0",
}

// start runs `edgenode run` with args and waits for its banner.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"run"}, args...)...)
	p.cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, ephemeralPorts...), env...)
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.After(20 * time.Second)
	for {
		out := p.output()
		if m := apiRE.FindStringSubmatch(out); m != nil {
			p.url = m[1]
			if m := tokenRE.FindStringSubmatch(out); m != nil {
				p.token = m[1]
			}
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("edgenode exited before serving: %v\n%s", p.err, out)
		case <-deadline:
			t.Fatalf("no banner within 20 s:\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.t.Fatalf("edgenode still running after %s:\n%s", limit, p.output())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

func (p *proc) call(method, path, body string) (int, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "APIKey "+p.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	r, err := c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return r.StatusCode, b
}

func TestKill9KeepsEveryStream(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := start(t, nil, "--data-dir", data, "--listen", "127.0.0.1:0")
	if p.token == "" || !strings.Contains(p.output(), "generated on first boot") {
		t.Fatalf("first boot banner lacks a generated token:\n%s", p.output())
	}
	want := map[string]json.RawMessage{}
	for i := range 5 {
		code, body := p.call("POST", "/streaming/streams", fmt.Sprintf(`{"name":"stream-%d"}`, i))
		if code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
		var s struct{ ID uint64 }
		json.Unmarshal(body, &s)
		want[fmt.Sprint(s.ID)] = body
	}
	// Changes after creation must survive too.
	code, body := p.call("PATCH", "/streaming/streams/2", `{"active":false,"rotate_key":true}`)
	if code != 200 {
		t.Fatalf("patch: %d %s", code, body)
	}
	want["2"] = body
	if code, _ := p.call("DELETE", "/streaming/streams/5", ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	delete(want, "5")

	// Power cut: no shutdown, no chance to flush anything.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(10 * time.Second); code != -1 {
		t.Fatalf("exit code after SIGKILL %d", code)
	}

	q := start(t, nil, "--data-dir", data, "--listen", "127.0.0.1:0")
	if q.token != p.token || !strings.Contains(q.output(), "shown because the API listens on loopback") {
		t.Fatalf("restart token %q (was %q):\n%s", q.token, p.token, q.output())
	}
	// The port changed (127.0.0.1:0): URLs carry the new one, everything
	// else is unchanged.
	norm := func(b []byte, base string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "encoder") // live transcoder status, not stored state
		for k, v := range m {
			if s, ok := v.(string); ok {
				m[k] = strings.ReplaceAll(s, base, "BASE")
			}
		}
		return m
	}
	for id, before := range want {
		code, after := q.call("GET", "/streaming/streams/"+id, "")
		if code != 200 {
			t.Fatalf("stream %s after kill -9: %d %s", id, code, after)
		}
		if a, b := norm(after, q.url), norm(before, p.url); !reflect.DeepEqual(a, b) {
			t.Errorf("stream %s changed:\nbefore %v\nafter  %v", id, b, a)
		}
	}
	code, list := q.call("GET", "/streaming/streams", "")
	var all []map[string]any
	json.Unmarshal(list, &all)
	if code != 200 || len(all) != len(want) {
		t.Fatalf("list after restart: %d %s", code, list)
	}
	code, _ = q.call("GET", "/streaming/streams/5", "")
	if code != 404 {
		t.Fatalf("deleted stream came back: %d", code)
	}
	// New ids continue after the highest ever used.
	code, body = q.call("POST", "/streaming/streams", `{"name":"after-restart"}`)
	if code != 201 || !bytes.Contains(body, []byte(`"id":6`)) {
		t.Fatalf("create after restart: %d %s", code, body)
	}
	q.cmd.Process.Signal(syscall.SIGTERM)
	if code := q.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, q.output())
	}
}

func TestSecondRunOnSameDataDirFailsAtOnce(t *testing.T) {
	data := t.TempDir()
	p := start(t, nil, "--data-dir", data, "--listen", "127.0.0.1:0")
	cmd := exec.Command(bin, "run", "--data-dir", data, "--listen", "127.0.0.1:0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("second run succeeded:\n%s", out.String())
		}
	case <-time.After(15 * time.Second): // the lock timeout is 1 s
		cmd.Process.Kill()
		<-done
		t.Fatalf("second run did not give up:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "data dir "+data+" is in use by another edgenode") {
		t.Fatalf("unclear message:\n%s", out.String())
	}
	// The first one is unaffected.
	if code, _ := p.call("GET", "/streaming/streams", ""); code != 200 {
		t.Fatalf("first node after second run: %d", code)
	}
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	data := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "edgenode.yaml")
	os.WriteFile(cfg, []byte("log:\n  format: json\n"), 0o600)
	p := start(t, []string{"EDGENODE_API_TOKEN=env-token-123", "EDGENODE_LISTEN=127.0.0.1:0"}, "--config", cfg, "--data-dir", data)
	if !strings.Contains(p.output(), "set by config") || strings.Contains(p.output(), "env-token-123") {
		t.Fatalf("banner with a configured token:\n%s", p.output())
	}
	p.token = "env-token-123"
	if code, body := p.call("POST", "/streaming/streams", `{"name":"x"}`); code != 201 {
		t.Fatalf("create with env token: %d %s", code, body)
	}
	// A slow client holds a connection open mid-request: shutdown must
	// still finish (it is cut after half of shutdown_timeout).
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.output())
	}
	// JSON logs (log.format from the file), ending with a clean stop.
	var last map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
	}
	if last["msg"] != "edgenode stopped" {
		t.Fatalf("last log line %v", last)
	}
}

func runCmd(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestValidateAndVersion(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	badValue := filepath.Join(dir, "bad-value.yaml")
	os.WriteFile(good, []byte("listen: 127.0.0.1:8080\napi:\n  listen: 127.0.0.1:9090\n"), 0o600)
	os.WriteFile(bad, []byte("listen: 127.0.0.1:8080\napi:\n  tokn: abc\n"), 0o600)
	os.WriteFile(badValue, []byte("log:\n  level: loud\n"), 0o600)

	if code, out := runCmd(t, nil, "validate", "--config", good); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("validate good: %d %s", code, out)
	}
	if code, out := runCmd(t, nil, "validate", "--config", bad); code == 0 || !strings.Contains(out, "'api.tokn'") || !strings.Contains(out, "line 3") {
		t.Fatalf("validate misspelt key: %d %s", code, out)
	}
	if code, out := runCmd(t, nil, "validate", "--config", badValue); code == 0 || !strings.Contains(out, "'log.level'") {
		t.Fatalf("validate bad value: %d %s", code, out)
	}
	if code, out := runCmd(t, []string{"EDGENODE_API_LISTEN=nope"}, "validate", "--config", good); code == 0 || !strings.Contains(out, "EDGENODE_API_LISTEN") && !strings.Contains(out, "'api.listen'") {
		t.Fatalf("validate with bad env: %d %s", code, out)
	}
	if code, _ := runCmd(t, nil, "validate"); code != 2 {
		t.Fatalf("validate without --config: %d", code)
	}
	if code, out := runCmd(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "edgenode test-1.2.3 go1.") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _ := runCmd(t, nil, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
	// run refuses a bad config before touching anything.
	data := filepath.Join(dir, "never")
	if code, out := runCmd(t, nil, "run", "--config", bad, "--data-dir", data); code == 0 || !strings.Contains(out, "'api.tokn'") {
		t.Fatalf("run with bad config: %d %s", code, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("run with a bad config created the data dir: %v", err)
	}
}
