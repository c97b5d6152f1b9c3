// Command edgenode is the ingest node daemon.
//
//	edgenode run [--config FILE] [--data-dir DIR] [--listen ADDR]
//	edgenode validate --config FILE
//	edgenode version
//
// Every config key can also be set by an EDGENODE_… environment variable
// (see README.md); flags win over the environment, which wins over the file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/edgenode/edgenode/node"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

const usage = `usage:
  edgenode run [--config FILE] [--data-dir DIR] [--listen ADDR]
  edgenode validate --config FILE
  edgenode version

Config keys can be overridden with EDGENODE_… variables (EDGENODE_LISTEN,
EDGENODE_DATA_DIR, EDGENODE_API_TOKEN, EDGENODE_API_LISTEN, …); see README.md.
`

func run(args, env []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], env, stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], env, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "edgenode %s %s %s/%s\n", node.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "edgenode: unknown command %q\n%s", args[0], usage)
	return 2
}

func lookup(env []string, k string) string {
	for _, kv := range env {
		if name, v, ok := strings.Cut(kv, "="); ok && name == k {
			return v
		}
	}
	return ""
}

func cmdValidate(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", lookup(env, node.EnvPrefix+"CONFIG"), "YAML config file to check (env EDGENODE_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: edgenode validate --config FILE")
		return 2
	}
	if _, err := node.Load(node.LoadOptions{File: *file, Env: env}); err != nil {
		fmt.Fprintf(stderr, "edgenode: %v\n", err)
		return 1
	}
	for _, k := range node.UnknownEnv(env) {
		fmt.Fprintf(stderr, "edgenode: warning: %s is not a config key\n", k)
	}
	fmt.Fprintf(stdout, "%s: OK\n", *file)
	return 0
}

func cmdRun(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", lookup(env, node.EnvPrefix+"CONFIG"), "YAML config file (env EDGENODE_CONFIG); none = dev defaults")
	dataDir := fs.String("data-dir", "", "data directory (key data_dir, env EDGENODE_DATA_DIR; default ./data)")
	listen := fs.String("listen", "", "public listen address (key listen, env EDGENODE_LISTEN; default 127.0.0.1:8080)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "edgenode run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg, err := node.Load(node.LoadOptions{File: *file, Env: env, Override: func(c *node.Config) {
		if set["data-dir"] {
			c.DataDir = *dataDir
		}
		if set["listen"] {
			c.Listen = *listen
		}
	}})
	if err != nil {
		fmt.Fprintf(stderr, "edgenode: %v\n", err)
		return 1
	}
	log, err := node.NewLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "edgenode: %v\n", err)
		return 1
	}
	for _, k := range node.UnknownEnv(env) {
		log.Warn("environment variable is not a config key (misspelt?)", "name", k)
	}
	n, err := node.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "edgenode: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := n.Start(ctx); err != nil {
		n.Close()
		fmt.Fprintf(stderr, "edgenode: %v\n", err)
		return 1
	}
	printBanner(stdout, n.Info())
	if err := n.Serve(ctx); err != nil {
		fmt.Fprintf(stderr, "edgenode: %v\n", err)
		if errors.Is(err, node.ErrShutdownTimeout) {
			return 3
		}
		return 1
	}
	return 0
}

func printBanner(w io.Writer, in node.Info) {
	tok := in.Token
	var note string
	switch {
	case in.TokenSource == "config":
		tok, note = "<your api.token / EDGENODE_API_TOKEN>", "set by config"
	case in.Token == "":
		tok, note = "<token>", "stored in "+in.DataDir+"; not shown because the API is not on loopback (set EDGENODE_API_TOKEN to choose one)"
	case in.TokenSource == "generated":
		note = "generated on first boot and stored in " + in.DataDir
	default:
		note = "stored in " + in.DataDir + "; shown because the API listens on loopback only"
	}
	fmt.Fprintf(w, `
edgenode %s is running (Ctrl-C stops it)
  public URL  %s   (WHIP, players, origin)
  stream API  %s/streaming/streams
  metrics     %s
  health      %s/healthz
  data dir    %s
  API token   %s   (%s)

Create a stream:
  curl -s -X POST -H 'Authorization: APIKey %s' -H 'Content-Type: application/json' \
       -d '{"name":"demo"}' %s/streaming/streams
List streams:
  curl -s -H 'Authorization: APIKey %s' %s/streaming/streams

`, in.Version, in.PublicURL, in.APIURL, in.MetricsURL, in.APIURL, in.DataDir, tok, note, tok, in.APIURL, tok, in.APIURL)
}
