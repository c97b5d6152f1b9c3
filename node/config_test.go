package node_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edgenode.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestZeroConfigIsValidDev(t *testing.T) {
	c, err := node.Load(node.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, node.Config{}) {
		t.Fatalf("zero config changed by Load: %+v", c)
	}
	if err := (node.Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	// An empty file is the zero config too.
	if _, err := node.Load(node.LoadOptions{File: writeFile(t, "")}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFileEnvFlags(t *testing.T) {
	file := writeFile(t, `
listen: 127.0.0.1:9000
public_url: https://ingest.example.com
data_dir: /var/lib/edgenode
shutdown_timeout: 3s
log:
  level: debug
  format: json
api:
  listen: 127.0.0.1:9090
  token: from-file
  max_body_bytes: 1000
`)
	c, err := node.Load(node.LoadOptions{File: file})
	if err != nil {
		t.Fatal(err)
	}
	want := node.Config{
		Listen: "127.0.0.1:9000", PublicURL: "https://ingest.example.com", DataDir: "/var/lib/edgenode",
		ShutdownTimeout: 3 * time.Second,
		Log:             node.LogConfig{Level: "debug", Format: "json"},
		API:             node.APIConfig{Listen: "127.0.0.1:9090", Token: "from-file", MaxBodyBytes: 1000},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("file:\n%+v\nwant\n%+v", c, want)
	}

	env := []string{
		"EDGENODE_LISTEN=127.0.0.1:9001",
		"EDGENODE_DATA_DIR=/srv/edge",
		"EDGENODE_API_TOKEN=from-env",
		"EDGENODE_API_LISTEN=[::1]:9091",
		"EDGENODE_API_MAX_BODY_BYTES=2000",
		"EDGENODE_SHUTDOWN_TIMEOUT=1500ms",
		"EDGENODE_LOG_FORMAT=text",
		"PATH=/usr/bin",
	}
	c, err = node.Load(node.LoadOptions{File: file, Env: env, Override: func(c *node.Config) { c.DataDir = "/flag" }})
	if err != nil {
		t.Fatal(err)
	}
	want.Listen, want.DataDir, want.API.Token, want.API.Listen, want.API.MaxBodyBytes = "127.0.0.1:9001", "/flag", "from-env", "[::1]:9091", 2000
	want.ShutdownTimeout, want.Log.Format = 1500*time.Millisecond, "text"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("file+env+flags:\n%+v\nwant\n%+v", c, want)
	}
}

func TestStrictKeys(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"listen: 127.0.0.1:1\ndata_dir: x\nlistne: 127.0.0.1:2\n", "line 3: field 'listne' not found"},
		{"api:\n  tokn: x\n", "line 2: field 'api.tokn' not found"},
		{"log:\n  level: info\n  colour: true\n", "field 'log.colour'"},
		{"shutdown_timeout: soon\n", "shutdown_timeout"},
		{"listen: [1, 2]\n", "line 1"},
		{"listen: a:1\n---\nlisten: b:2\n", "more than one YAML document"},
	}
	for _, c := range cases {
		_, err := node.Load(node.LoadOptions{File: writeFile(t, c.yaml)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.yaml, err, c.want)
		}
	}
	if _, err := node.Load(node.LoadOptions{File: filepath.Join(t.TempDir(), "missing.yaml")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestValidateNamesKeys(t *testing.T) {
	cases := []struct {
		c    node.Config
		want string
	}{
		{node.Config{Listen: "nonsense"}, "'listen' must be host:port"},
		{node.Config{Listen: "127.0.0.1:70000"}, "'listen' must have a port"},
		{node.Config{PublicURL: "ftp://x"}, "'public_url'"},
		{node.Config{PublicURL: "/relative"}, "'public_url'"},
		{node.Config{ShutdownTimeout: time.Minute}, "'shutdown_timeout' must be 0..5s"},
		{node.Config{Log: node.LogConfig{Level: "loud"}}, "'log.level' must be"},
		{node.Config{Log: node.LogConfig{Format: "xml"}}, "'log.format' must be text or json"},
		{node.Config{API: node.APIConfig{Listen: "x"}}, "'api.listen' must be host:port"},
		{node.Config{API: node.APIConfig{Token: "a b"}}, "'api.token' must not contain spaces"},
		{node.Config{API: node.APIConfig{MaxBodyBytes: -1}}, "'api.max_body_bytes'"},
	}
	for _, c := range cases {
		err := c.c.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.c, err, c.want)
		}
	}
	// Every problem is reported, one per line.
	err := node.Config{Listen: "x", Log: node.LogConfig{Level: "x", Format: "x"}}.Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("joined errors: %v", err)
	}
	var se *node.SectionError
	if !errors.As(err, &se) || se.Section != "log" {
		t.Errorf("no SectionError for log: %#v", err)
	}
}

func TestEnvErrorsNameTheKey(t *testing.T) {
	for env, want := range map[string]string{
		"EDGENODE_API_MAX_BODY_BYTES=lots": "EDGENODE_API_MAX_BODY_BYTES: 'api.max_body_bytes' must be an integer",
		"EDGENODE_SHUTDOWN_TIMEOUT=5":      "'shutdown_timeout' must be a duration",
		"EDGENODE_LISTEN=nope":             "'listen' must be host:port",
	} {
		_, err := node.Load(node.LoadOptions{Env: []string{env}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", env, err, want)
		}
	}
}

func TestEnvKeysAndUnknownEnv(t *testing.T) {
	keys := node.EnvKeys()
	for path, env := range map[string]string{"listen": "EDGENODE_LISTEN", "data_dir": "EDGENODE_DATA_DIR", "api.token": "EDGENODE_API_TOKEN", "api.listen": "EDGENODE_API_LISTEN", "log.level": "EDGENODE_LOG_LEVEL"} {
		if keys[path] != env {
			t.Errorf("EnvKeys[%s] = %q, want %q", path, keys[path], env)
		}
	}
	got := node.UnknownEnv([]string{"EDGENODE_LISTNE=x", "EDGENODE_LISTEN=y", "EDGENODE_CONFIG=z", "HOME=/"})
	if len(got) != 1 || got[0] != "EDGENODE_LISTNE" {
		t.Fatalf("UnknownEnv = %v", got)
	}
}

// The origin's sub-sections (LL-DASH, HLS-TS, player) load from the file
// and the environment and their errors name the full key.
func TestOriginSubSections(t *testing.T) {
	f := writeFile(t, "origin:\n  part_target: 250ms\n  dash:\n    target_latency: 2m\n  player:\n    default_format: nope\n")
	_, err := node.Load(node.LoadOptions{File: f})
	if err == nil || !strings.Contains(err.Error(), "'origin.dash.target_latency'") || !strings.Contains(err.Error(), "'origin.player.default_format'") {
		t.Fatalf("error = %v, want both origin sub-keys named", err)
	}
	c, err := node.Load(node.LoadOptions{File: writeFile(t, "origin:\n  part_target: 250ms\n"),
		Env: []string{"EDGENODE_ORIGIN_HLS_TS_SEGMENT_DURATION=3s", "EDGENODE_ORIGIN_PLAYER_DEFAULT_FORMAT=ll-dash"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin.PartTarget != 250*time.Millisecond || c.Origin.HLSTS.SegmentDuration != 3*time.Second || c.Origin.Player.DefaultFormat != "ll-dash" {
		t.Fatalf("origin section = %+v", c.Origin)
	}
}
