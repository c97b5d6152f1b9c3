// Package node is the edgenode daemon: it loads the configuration, opens the
// state store, serves the stream API, /healthz, /readyz and /metrics, and
// runs the node's components (TURN, encoders, origin, ingest) between Start
// and Close.
//
// Lifecycle: New (no side effects) → Start (store, listeners, components,
// HTTP) → Close (reverse order), or Run, which does Start, tells systemd
// READY=1, pings its watchdog, waits for ctx and stops within
// shutdown_timeout.
package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/store"
	"github.com/edgenode/edgenode/node/api"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/dash"
	"github.com/edgenode/edgenode/origin/player"
	"github.com/edgenode/edgenode/origin/ts"
	"github.com/edgenode/edgenode/turn"
)

// Version is set at build time (-X github.com/edgenode/edgenode/node.Version=…).
var Version = "dev"

// PublisherControl drops a stream's live publisher (the ingest server
// implements it). The API calls it on deactivate, key rotation and delete.
type PublisherControl = api.PublisherControl

// component is what the node runs. Start must return once the component is
// serving (goroutines it starts run until Close); Close must be safe after a
// failed or partial Start and wait for every goroutine.
type component interface {
	Start(ctx context.Context) error
	Close() error
}

// Optional component interfaces.
type (
	// publicRouter mounts routes on the public listener (WHIP, origin, pages).
	publicRouter interface{ RegisterRoutes(mux *http.ServeMux) }
	// apiRouter mounts routes on the management listener.
	apiRouter interface{ RegisterAPIRoutes(mux *http.ServeMux) }
	// readiness takes part in /readyz.
	readiness interface{ Ready() error }
)

type namedComponent struct {
	name string
	c    component
}

// tokenSecret is the store secret holding a generated API token.
const tokenSecret = "api_token"

// Info describes the running node for the start-up banner.
type Info struct {
	Version string
	// PublicURL is the base of the URLs handed out.
	PublicURL string
	// APIURL is where the management API answers, MetricsURL the
	// Prometheus endpoint.
	APIURL, MetricsURL string
	// PublicAddr and APIAddr are the bound listener addresses.
	PublicAddr, APIAddr string
	DataDir             string
	// Token is the API token when it should be shown: generated on this
	// boot, or a stored token while the API listens on loopback only (dev).
	// Empty otherwise.
	Token string
	// TokenSource: "config" (api.token / EDGENODE_API_TOKEN), "generated"
	// (this boot) or "stored" (generated on an earlier boot).
	TokenSource string
}

// Node is one edgenode daemon.
type Node struct {
	cfg Config
	log *slog.Logger
	reg *prometheus.Registry

	mu      sync.Mutex
	st      *store.Store
	api     *api.API
	pc      PublisherControl
	comps   []namedComponent // started ones, in start order
	servers []*http.Server
	info    Info
	cancel  context.CancelFunc
	closed  bool
	// publicURL is the resolved public_url, set in Start before the
	// components are built.
	publicURL string
	// tls is the HTTPS configuration of the HTTP listeners (nil: plain
	// HTTP and h2c), set in Start.
	tls *tls.Config

	// extra components appended after components() (tests).
	extra []namedComponent

	ready    atomic.Bool
	wg       sync.WaitGroup
	serveErr chan error
}

// New checks cfg and prepares a node; it opens nothing.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "edgenode_build_info",
		Help: "Always 1; the version label says which edgenode runs.",
	}, []string{"version"})
	build.WithLabelValues(Version).Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("node: metrics: %w", err)
		}
	}
	return &Node{cfg: cfg.withDefaults(), log: log, reg: reg, serveErr: make(chan error, 2)}, nil
}

// Registry is the Prometheus registry served on /metrics; components
// register their collectors into it.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// Config is the configuration with defaults applied.
func (n *Node) Config() Config { return n.cfg }

// Store is the open state store (nil before Start).
func (n *Node) Store() *store.Store {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st
}

// PublicURL is the base of the URLs handed out (public_url, or
// http://<bound public address>), without a trailing slash; "" until Start
// has bound the listeners. Components built in components() may use it.
func (n *Node) PublicURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.publicURL
}

// Info describes the running node (zero before Start).
func (n *Node) Info() Info {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.info
}

// SetPublisherControl sets the hook that drops live publishers. It may be
// called before or after Start.
func (n *Node) SetPublisherControl(pc PublisherControl) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pc = pc
	if n.api != nil {
		n.api.SetPublisherControl(pc)
	}
}

// LookupStream tells ingest whether a publish to stream id may go ahead:
// the stream's secret key and whether it is active. found is false for an
// unknown (or deleted) stream.
func (n *Node) LookupStream(id uint64) (key string, active, found bool, err error) {
	st := n.Store()
	if st == nil {
		return "", false, false, ErrNotStarted
	}
	s, err := st.Stream(id)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, err
	}
	return s.Key, s.Active, true, nil
}

// components builds the node's parts in start order (they stop in reverse):
// TURN → encoders → origin (CMAF + LL-HLS, LL-DASH, HLS-TS, player) →
// ingest. Data flows one way through the hub: ingest publishes the source
// rendition, the encoders publish the ladder, the origin packages every
// rendition. The store, registry, logger and public URL are ready when it
// runs.
func (n *Node) components(ctx context.Context) ([]namedComponent, error) {
	cfg := n.cfg
	st := n.Store()
	h := hub.New(0)
	var out []namedComponent

	// ingest is built last but TURN needs its media addresses; the
	// closure reads it once ingest has started.
	var in *ingest.Server

	var turnSrv *turn.Server
	if cfg.TURN.IsEnabled() {
		tc := cfg.TURN
		if isLoopback(cfg.Listen) { // dev: keep TURN on loopback too
			for p, v := range map[*string]string{&tc.UDPListen: "127.0.0.1:3478", &tc.TCPListen: "127.0.0.1:3478", &tc.TLSListen: "127.0.0.1:5349"} {
				if *p == "" {
					*p = v
				}
			}
		}
		if tc.PublicHost == "" { // what presenters reach is what public_url names
			if u, err := url.Parse(n.publicURL); err == nil && u.Hostname() != "" {
				tc.PublicHost = u.Hostname()
			}
		}
		turnSrv = turn.New(tc, turn.Deps{
			Logger:  n.log.With("component", "turn"),
			Metrics: n.reg,
			Secrets: st,
			DataDir: cfg.DataDir,
			MediaAddrs: func() []netip.AddrPort {
				if in == nil {
					return nil
				}
				return turn.AddrPorts(in.UDPAddrs())
			},
		})
		out = append(out, namedComponent{"turn", turnSrv})
	}

	enc, err := hwenc.New(cfg.Encoders, hwenc.Deps{Logger: n.log, Metrics: n.reg, Hub: h})
	if err != nil {
		return nil, err
	}
	out = append(out, namedComponent{"encoders", encoderRoutes{enc, n.api}})
	n.api.SetEncoderSource(encoderSource{enc})

	org, err := origin.New(cfg.Origin.Config, origin.Deps{
		Logger: n.log.With("component", "origin"), Metrics: n.reg, Hub: h, State: st, Streams: n,
		AudioRendition: hwenc.AudioRendition, Ladders: enc,
	})
	if err != nil {
		return nil, err
	}
	out = append(out, namedComponent{"origin", org})
	ds, err := dash.New(cfg.Origin.DASH, org.Registry(), n.reg, n.log.With("component", "dash"))
	if err != nil {
		return nil, err
	}
	ds.SetKnown(func(id uint64) bool { // unknown ids get their 404 at once
		_, _, found, err := n.LookupStream(id)
		return found || err != nil
	})
	out = append(out, namedComponent{"dash", ds})
	tsrv, err := ts.New(cfg.Origin.HLSTS, h, st, n.reg, n.log.With("component", "hls-ts"))
	if err != nil {
		return nil, err
	}
	tsrv.SetKnown(func(id uint64) bool {
		_, _, found, err := n.LookupStream(id)
		return found || err != nil
	})
	out = append(out, namedComponent{"hls-ts", tsrv})
	pl, err := player.New(cfg.Origin.Player, n.log.With("component", "player"))
	if err != nil {
		return nil, err
	}
	out = append(out, namedComponent{"player", pl})

	ic := cfg.Ingest
	if ic.PublicURL == "" {
		ic.PublicURL = n.publicURL
	}
	deps := ingest.Deps{Logger: n.log, Metrics: n.reg, Hub: h, Streams: n}
	if turnSrv != nil {
		deps.ICEServers = turnSrv.ICEServers
	}
	in, err = ingest.New(ic, deps)
	if err != nil {
		return nil, err
	}
	out = append(out, namedComponent{"ingest", in})
	n.mu.Lock()
	injected := n.pc != nil // tests put their own in
	n.mu.Unlock()
	if !injected {
		n.SetPublisherControl(in)
	}
	return out, nil
}

// encoderRoutes puts the encoders' API (status, per-stream ladder) on the
// management listener behind the API token.
type encoderRoutes struct {
	*hwenc.Manager
	api *api.API
}

func (e encoderRoutes) RegisterRoutes(*http.ServeMux) {}

func (e encoderRoutes) RegisterAPIRoutes(mux *http.ServeMux) {
	sub := http.NewServeMux()
	e.Manager.RegisterRoutes(sub)
	mux.Handle("/api/", e.api.Authenticated(sub))
}

// encoderSource is the "encoder" object of GET /streaming/streams/{id}
// (api.EncoderSource) over the hwenc Manager.
type encoderSource struct{ m *hwenc.Manager }

func (e encoderSource) StreamEncoder(id uint64) (api.Encoder, bool) {
	st := e.m.Status()
	out := api.Encoder{
		Mode: st.Mode, Chosen: st.Chosen, Why: st.Why,
		Ladder:     e.m.Ladder(id),
		Renditions: []media.Rendition{},
		Plugins:    make([]api.EncoderPlugin, 0, len(st.Plugins)),
	}
	for _, p := range st.Plugins {
		out.Plugins = append(out.Plugins, api.EncoderPlugin{Name: p.Name, Available: p.Available, Hardware: p.Hardware, Reason: p.Reason})
	}
	if ss, ok := e.m.StreamStatus(id); ok {
		out.Live = true
		out.Plugin, out.FellBackFrom, out.PID = ss.Plugin, ss.FellBackFrom, ss.PID
		out.Restarts, out.LastError = ss.Restarts, ss.LastError
		out.State, out.Speed = ss.State, ss.Speed
		if ss.Renditions != nil {
			out.Renditions = ss.Renditions
		}
	}
	return out, true
}

// Start opens the store, binds the listeners, starts the components and
// serves HTTP. On error, call Close.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.closed || n.cancel != nil {
		n.mu.Unlock()
		return errors.New("node: Start called twice or after Close")
	}
	ctx, n.cancel = context.WithCancel(ctx)
	n.mu.Unlock()

	st, err := store.Open(n.cfg.DataDir, store.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.st = st
	n.mu.Unlock()
	streams := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edgenode_streams",
		Help: "Streams in the database.",
	}, func() float64 {
		c, err := st.CountStreams()
		if err != nil {
			return -1
		}
		return float64(c)
	})
	if err := n.reg.Register(streams); err != nil {
		return fmt.Errorf("node: metrics: %w", err)
	}

	token, source, err := n.token(st)
	if err != nil {
		return err
	}

	scheme := "http"
	if n.cfg.TLS.Enabled() {
		certs, err := newCertReloader(n.cfg.TLS)
		if err != nil {
			return err
		}
		n.tls = certs.serverTLS()
		scheme = "https"
	}
	publicLn, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	publicAddr := publicLn.Addr().String()
	publicMux := http.NewServeMux()
	apiMux := publicMux
	var apiLn net.Listener
	apiAddr := publicAddr
	if n.cfg.API.Listen != "" {
		if apiLn, err = net.Listen("tcp", n.cfg.API.Listen); err != nil {
			publicLn.Close()
			return fmt.Errorf("api.listen: %w", err)
		}
		apiAddr = apiLn.Addr().String()
		apiMux = http.NewServeMux()
	}
	publicURL := n.cfg.PublicURL
	if publicURL == "" {
		publicURL = scheme + "://" + displayAddr(publicAddr)
		if host, _, _ := net.SplitHostPort(publicAddr); net.ParseIP(host).IsUnspecified() {
			n.log.Warn("public_url not set and listen is a wildcard address: handing out URLs with the host name; set public_url", "public_url", publicURL)
		}
	}
	publicURL = strings.TrimRight(publicURL, "/")

	a, err := api.New(st, api.Options{PublicURL: publicURL, Token: token, MaxBodyBytes: n.cfg.API.MaxBodyBytes}, n.log, n.reg)
	if err != nil {
		publicLn.Close()
		if apiLn != nil {
			apiLn.Close()
		}
		return err
	}
	n.mu.Lock()
	n.api = a
	n.publicURL = publicURL
	a.SetPublisherControl(n.pc)
	n.mu.Unlock()

	comps, err := n.components(ctx)
	comps = append(comps, n.extra...)
	if err != nil {
		publicLn.Close()
		if apiLn != nil {
			apiLn.Close()
		}
		return err
	}

	health := func(mux *http.ServeMux) {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok\n")
		})
		mux.HandleFunc("GET /readyz", n.readyz)
	}
	health(publicMux)
	a.RegisterRoutes(apiMux)
	apiMux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg}))
	if apiMux != publicMux {
		health(apiMux)
	}
	for _, nc := range comps {
		if err := mountRoutes(nc, publicMux, apiMux); err != nil {
			publicLn.Close()
			if apiLn != nil {
				apiLn.Close()
			}
			return err
		}
	}

	for _, nc := range comps {
		n.log.Debug("starting component", "component", nc.name)
		if err := nc.c.Start(ctx); err != nil {
			nc.c.Close() // safe after a partial start
			publicLn.Close()
			if apiLn != nil {
				apiLn.Close()
			}
			return fmt.Errorf("start %s: %w", nc.name, err)
		}
		n.mu.Lock()
		n.comps = append(n.comps, nc)
		n.mu.Unlock()
	}

	n.serve(publicLn, publicMux)
	if apiLn != nil {
		n.serve(apiLn, apiMux)
	}

	info := Info{
		Version:     Version,
		PublicURL:   publicURL,
		PublicAddr:  publicAddr,
		APIAddr:     apiAddr,
		APIURL:      scheme + "://" + displayAddr(apiAddr),
		DataDir:     n.cfg.DataDir,
		TokenSource: source,
	}
	info.MetricsURL = info.APIURL + "/metrics"
	if source == "generated" || (source == "stored" && isLoopback(apiAddr)) {
		info.Token = token
	}
	n.mu.Lock()
	n.info = info
	n.mu.Unlock()
	n.ready.Store(true)
	n.log.Info("edgenode started", "version", Version, "public", publicAddr, "api", apiAddr, "public_url", publicURL, "data_dir", n.cfg.DataDir)
	return nil
}

// mountRoutes lets a component register its routes, turning ServeMux's
// panic on a conflicting pattern into an error naming the component.
func mountRoutes(nc namedComponent, public, mgmt *http.ServeMux) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("routes of %s: %v", nc.name, p)
		}
	}()
	if r, ok := nc.c.(publicRouter); ok {
		r.RegisterRoutes(public)
	}
	if r, ok := nc.c.(apiRouter); ok {
		r.RegisterAPIRoutes(mgmt)
	}
	return nil
}

// token returns the API token and where it came from.
func (n *Node) token(st *store.Store) (string, string, error) {
	if n.cfg.API.Token != "" {
		return n.cfg.API.Token, "config", nil
	}
	b, created, err := st.Secret(tokenSecret, func() ([]byte, error) {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		return []byte(base64.RawURLEncoding.EncodeToString(raw)), nil
	})
	if err != nil {
		return "", "", fmt.Errorf("api token: %w", err)
	}
	if created {
		return string(b), "generated", nil
	}
	return string(b), "stored", nil
}

func (n *Node) serve(ln net.Listener, h http.Handler) {
	// LL-HLS wants HTTP/2 (HLS authoring spec, App. B.1): with `tls`
	// HTTPS with HTTP/2 by ALPN; without it HTTP/1.1 and HTTP/2 with prior
	// knowledge (h2c), TLS ending at the proxy or CDN.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if n.tls != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	srv := &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		TLSConfig:         n.tls.Clone(), // per server: net/http adds to it
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	n.mu.Lock()
	n.servers = append(n.servers, srv)
	n.mu.Unlock()
	n.wg.Go(func() {
		var err error
		if n.tls != nil {
			err = srv.ServeTLS(ln, "", "") // certificates from TLSConfig.GetCertificate
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server failed", "addr", ln.Addr().String(), "err", err)
			n.serveErr <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	})
}

func (n *Node) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !n.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready\n")
		return
	}
	n.mu.Lock()
	comps := n.comps
	n.mu.Unlock()
	for _, nc := range comps {
		if r, ok := nc.c.(readiness); ok {
			if err := r.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "%s not ready: %v\n", nc.name, err)
				return
			}
		}
	}
	io.WriteString(w, "ready\n")
}

// Close stops HTTP (letting requests in flight finish for up to half of
// shutdown_timeout), closes the components in reverse start order and then
// the store. Safe after a partial Start and more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	servers, comps, st, cancel := n.servers, n.comps, n.st, n.cancel
	n.mu.Unlock()
	n.ready.Store(false)

	var errs []error
	ctx, stop := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout/2)
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close() // long-polls still open: cut them
		}
	}
	stop()
	if cancel != nil {
		cancel()
	}
	for i := len(comps) - 1; i >= 0; i-- {
		if err := comps[i].c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", comps[i].name, err))
		}
	}
	n.wg.Wait()
	if st != nil {
		if err := st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Run is Start followed by Serve.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(ctx); err != nil {
		n.Close()
		return err
	}
	return n.Serve(ctx)
}

// Serve, after a successful Start, reports READY=1 to systemd (when
// NOTIFY_SOCKET is set) and pings its watchdog, serves until ctx is
// cancelled (or a listener fails), reports STOPPING=1 and closes the node.
// It returns ErrShutdownTimeout if closing takes longer than
// shutdown_timeout (the caller should exit anyway).
func (n *Node) Serve(ctx context.Context) error {
	notify(n.log, daemon.SdNotifyReady+"\nSTATUS=serving on "+n.Info().PublicAddr)

	watchdogDone := make(chan struct{})
	stopWatchdog := make(chan struct{})
	go func() {
		defer close(watchdogDone)
		n.watchdog(stopWatchdog)
	}()

	var runErr error
	select {
	case <-ctx.Done():
		n.log.Info("stopping", "reason", context.Cause(ctx))
	case runErr = <-n.serveErr:
	}
	notify(n.log, daemon.SdNotifyStopping)
	close(stopWatchdog)
	<-watchdogDone

	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	timer := time.NewTimer(n.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case err := <-closed:
		if err != nil {
			n.log.Error("shutdown", "err", err)
		}
		n.log.Info("edgenode stopped")
		return errors.Join(runErr, err)
	case <-timer.C:
		n.log.Error("shutdown did not finish in time", "shutdown_timeout", n.cfg.ShutdownTimeout)
		return errors.Join(runErr, ErrShutdownTimeout)
	}
}

// watchdog pings systemd at half the WatchdogSec interval until stop.
func (n *Node) watchdog(stop <-chan struct{}) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog settings unreadable", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if n.ready.Load() {
				notify(n.log, daemon.SdNotifyWatchdog)
			}
		}
	}
}

func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// displayAddr makes a bound address usable in a URL: a wildcard host
// becomes the host name (or 127.0.0.1 if there is none).
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewLogger builds the node's logger on w from the `log` section.
func NewLogger(c LogConfig, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
