// Package hwenc turns each published stream into an ABR ladder through
// encoder plugins (plugins/x264, plugins/vaapi, plugins/nvenc), each a
// separate process spoken to over hashicorp/go-plugin (plugins/shared).
//
// Start probes every plugin in the plugin directory, chooses one (auto:
// nvenc, then vaapi, then x264) and subscribes to the source rendition of
// every stream in the hub. Per stream it runs one plugin process with one
// Transcode session and publishes each rung back into the hub as
// hub.Key{Stream, rung name}: H.264 at the rung's fixed size plus AAC-LC
// 48 kHz, on the source's timeline with keyframes exactly where the source
// has them.
//
// The source rendition never depends on a plugin: the hub never blocks its
// publisher on a consumer. A plugin (or its ffmpeg) that dies or stalls is
// restarted with back-off at the next source keyframe; a hardware plugin
// that keeps failing is replaced by x264 mid-stream.
package hwenc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/plugins/shared"
)

// Deps are what the node hands in.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	Hub     *hub.Hub
}

// PluginStatus is one plugin's probe result.
type PluginStatus struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	Available bool   `json:"available"`
	Hardware  bool   `json:"hardware"`
	// Reason says why the plugin cannot be used here.
	Reason          string  `json:"reason,omitempty"`
	Encoder         string  `json:"encoder,omitempty"`
	TestEncodeMS    float64 `json:"test_encode_ms,omitempty"`
	ProtocolVersion int     `json:"protocol_version,omitempty"`
}

// StreamStatus is the transcoder's view of one stream.
type StreamStatus struct {
	Stream uint64 `json:"stream"`
	// Plugin currently encoding ("" while none runs).
	Plugin string `json:"plugin"`
	// PID of the plugin process (0 while none runs).
	PID        int               `json:"pid,omitempty"`
	Renditions []media.Rendition `json:"renditions"`
	Restarts   int               `json:"restarts"`
	// FellBackFrom names the hardware plugin this stream gave up on.
	FellBackFrom string  `json:"fell_back_from,omitempty"`
	FPS          float64 `json:"fps"`
	Speed        float64 `json:"speed"`
	// State is the encoder's own: "running", or "shedding" while it is
	// behind real time and leaves out whole GOPs to stay near the live
	// edge (the rungs then have gap segments).
	State     string `json:"state,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Status is what the stream API shows.
type Status struct {
	Mode string `json:"mode"`
	// Chosen is the plugin new streams use ("" when none: source only).
	Chosen string `json:"chosen"`
	// Why explains the choice.
	Why     string            `json:"why"`
	Plugins []PluginStatus    `json:"plugins"`
	Ladder  []media.Rendition `json:"ladder"`
	Streams []StreamStatus    `json:"streams"`
}

// Manager is the transcoding service. Create with New.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	hub  *hub.Hub
	mets *metrics

	mu        sync.Mutex
	started   bool
	closed    bool
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	plugins   map[string]PluginStatus
	chosen    string
	why       string
	overrides map[uint64][]media.Rendition
	workers   map[uint64]*worker
}

// New checks cfg and returns a Manager; nothing runs until Start.
func New(cfg Config, deps Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Hub == nil {
		return nil, fmt.Errorf("hwenc: Deps.Hub is required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := deps.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Manager{
		cfg: cfg.withDefaults(), log: log.With("component", "hwenc"), hub: deps.Hub,
		plugins: map[string]PluginStatus{}, overrides: map[uint64][]media.Rendition{}, workers: map[uint64]*worker{},
	}
	mets, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	m.mets = mets
	return m, nil
}

// preference orders plugins for mode auto.
var preference = []string{ModeNVENC, ModeVAAPI, ModeX264}

// Start probes the plugins, chooses one and starts transcoding every
// stream published from now on (and those live already). ctx bounds the
// probing only.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.started {
		m.mu.Unlock()
		return nil
	}
	m.started = true
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.mu.Unlock()

	if m.cfg.Mode == ModeOff {
		m.setChoice("", "mode is off: source rendition only, audio stays Opus")
		m.log.Info("transcoding off")
		return nil
	}
	found := m.probeAll(ctx)
	chosen, why := choose(m.cfg.Mode, found)
	m.mu.Lock()
	for _, p := range found {
		m.plugins[p.Name] = p
	}
	m.mu.Unlock()
	for _, p := range found {
		m.mets.available.WithLabelValues(p.Name).Set(b2f(p.Available))
		m.mets.info.WithLabelValues(p.Name, fmt.Sprint(p.Available), p.Encoder, p.Reason).Set(1)
		if p.Available {
			m.log.Info("encoder plugin available", "plugin", p.Name, "encoder", p.Encoder, "hardware", p.Hardware, "test_encode_ms", p.TestEncodeMS, "path", p.Path)
		} else {
			m.log.Info("encoder plugin rejected", "plugin", p.Name, "reason", p.Reason, "path", p.Path)
		}
	}
	m.setChoice(chosen, why)
	if chosen == "" {
		m.log.Warn("no encoder plugin usable: streams keep their source rendition only", "why", why)
		return nil
	}
	m.log.Info("encoder plugin chosen", "plugin", chosen, "why", why, "ladder", m.cfg.Ladder)
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed { // Close ran while we probed
		return ErrClosed
	}
	m.hub.AddConsumer("hwenc", func(k hub.Key) bool { return k.Rendition == hub.Source }, m.consume)
	return nil
}

func (m *Manager) setChoice(chosen, why string) {
	m.mu.Lock()
	m.chosen, m.why = chosen, why
	m.mu.Unlock()
	for _, n := range preference {
		m.mets.chosen.WithLabelValues(n).Set(b2f(n == chosen))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// choose applies the mode to the probe results.
func choose(mode string, found []PluginStatus) (string, string) {
	byName := map[string]PluginStatus{}
	for _, p := range found {
		byName[p.Name] = p
	}
	avail := func(n string) bool { return byName[n].Available }
	reason := func(n string) string {
		p, ok := byName[n]
		if !ok {
			return "not installed"
		}
		return p.Reason
	}
	switch mode {
	case ModeAuto:
		var skipped []string
		for _, n := range preference {
			if avail(n) {
				why := "auto: " + n + " is the best available"
				if len(skipped) > 0 {
					why += " (" + strings.Join(skipped, "; ") + ")"
				}
				return n, why
			}
			skipped = append(skipped, n+": "+reason(n))
		}
		return "", "auto: no plugin available (" + strings.Join(skipped, "; ") + ")"
	default:
		if avail(mode) {
			return mode, "mode " + mode
		}
		if mode != ModeX264 && avail(ModeX264) {
			return ModeX264, "mode " + mode + " unavailable (" + reason(mode) + "): using x264"
		}
		return "", "mode " + mode + " unavailable (" + reason(mode) + ")"
	}
}

// pluginDir resolves Config.PluginDir.
func (m *Manager) pluginDir() string {
	if m.cfg.PluginDir != "" {
		return m.cfg.PluginDir
	}
	exe, err := os.Executable()
	if err != nil {
		return "plugins"
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}

// probeAll launches every executable in the plugin dir and probes it, in
// parallel.
func (m *Manager) probeAll(ctx context.Context) []PluginStatus {
	dir := m.pluginDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		m.log.Warn("cannot read plugin_dir", "dir", dir, "err", err)
	}
	var (
		mu  sync.Mutex
		out []PluginStatus
		wg  sync.WaitGroup
	)
	seen := map[string]bool{}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0o111 == 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		seen[e.Name()] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := m.probe(ctx, path)
			mu.Lock()
			out = append(out, st)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, n := range preference {
		if !seen[n] {
			out = append(out, PluginStatus{Name: n, Path: filepath.Join(dir, n), Reason: "plugin binary not found in " + dir})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *Manager) probe(ctx context.Context, path string) PluginStatus {
	st := PluginStatus{Name: filepath.Base(path), Path: path}
	p, err := m.launch(path)
	if err != nil {
		st.Reason = "plugin does not start: " + err.Error()
		return st
	}
	defer p.kill()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep, err := p.enc.Probe(ctx)
	if err != nil {
		st.Reason = "probe failed: " + err.Error()
		return st
	}
	if rep.GetName() != "" {
		st.Name = rep.GetName()
	}
	st.Available, st.Hardware, st.Reason = rep.GetAvailable(), rep.GetHardware(), rep.GetReason()
	st.Encoder, st.TestEncodeMS = rep.GetEncoder(), rep.GetTestEncodeMs()
	st.ProtocolVersion = p.client.NegotiatedVersion()
	return st
}

// proc is one running plugin process.
type proc struct {
	client *plugin.Client
	enc    *shared.Client
	pid    int
}

func (m *Manager) launch(path string) (*proc, error) {
	log := m.log.With("plugin", filepath.Base(path))
	cfg := shared.NewClientConfig(exec.Command(path), newHCLog(log))
	cfg.StartTimeout = 10 * time.Second
	c := plugin.NewClient(cfg)
	rpc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, err
	}
	raw, err := rpc.Dispense(shared.PluginName)
	if err != nil {
		c.Kill()
		return nil, err
	}
	enc, ok := raw.(*shared.Client)
	if !ok {
		c.Kill()
		return nil, fmt.Errorf("plugin dispensed %T", raw)
	}
	p := &proc{client: c, enc: enc}
	if rc := c.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	return p, nil
}

func (p *proc) kill() { p.client.Kill() }

// Close stops every session and waits for them. Safe after a partial
// Start and more than once.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
	return nil
}

// consume is the hub consumer for source renditions.
func (m *Manager) consume(k hub.Key, sub *hub.Subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.ctx == nil {
		go sub.Close() // must not call the hub from inside the consumer
		return
	}
	w := newWorker(m, k.Stream, sub)
	m.workers[k.Stream] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(m.ctx)
		m.mu.Lock()
		if m.workers[k.Stream] == w {
			delete(m.workers, k.Stream)
		}
		m.mu.Unlock()
	}()
}

// Status reports the choice, every plugin's probe and every stream.
func (m *Manager) Status() Status {
	m.mu.Lock()
	st := Status{Mode: m.cfg.Mode, Chosen: m.chosen, Why: m.why, Ladder: slices.Clone(m.cfg.Ladder)}
	for _, p := range m.plugins {
		st.Plugins = append(st.Plugins, p)
	}
	workers := make([]*worker, 0, len(m.workers))
	for _, w := range m.workers {
		workers = append(workers, w)
	}
	m.mu.Unlock()
	sort.Slice(st.Plugins, func(i, j int) bool { return st.Plugins[i].Name < st.Plugins[j].Name })
	for _, w := range workers {
		st.Streams = append(st.Streams, w.status())
	}
	sort.Slice(st.Streams, func(i, j int) bool { return st.Streams[i].Stream < st.Streams[j].Stream })
	return st
}

// StreamStatus reports one stream; false when it is not being transcoded.
func (m *Manager) StreamStatus(id uint64) (StreamStatus, bool) {
	m.mu.Lock()
	w := m.workers[id]
	m.mu.Unlock()
	if w == nil {
		return StreamStatus{}, false
	}
	return w.status(), true
}

// Ladder returns the ladder stream id uses (its override or the default).
func (m *Manager) Ladder(id uint64) []media.Rendition {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.overrides[id]; ok {
		return slices.Clone(l)
	}
	return slices.Clone(m.cfg.Ladder)
}

// Rungs names the rungs stream id's encoder makes now (none while it is
// not transcoded).
func (m *Manager) Rungs(id uint64) []string {
	st, ok := m.StreamStatus(id)
	if !ok {
		return nil
	}
	names := make([]string, 0, len(st.Renditions))
	for _, r := range st.Renditions {
		names = append(names, r.Name)
	}
	return names
}

// SetLadder overrides the ladder of stream id (nil: back to the node
// default). A live stream switches at its next keyframe.
func (m *Manager) SetLadder(id uint64, l []media.Rendition) error {
	if err := validateLadder(l, "ladder"); err != nil {
		return fmt.Errorf("%w: %v", ErrBadLadder, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l == nil {
		delete(m.overrides, id)
	} else {
		m.overrides[id] = slices.Clone(l)
	}
	return nil
}

// hclog → slog bridge for go-plugin, which logs through hclog and forwards
// the plugin's stderr lines.
func newHCLog(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: slogWriter{l}, Level: hclog.Info})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
