// Package player serves the node's test/preview page, /player/{id}: one
// <video> that plays a stream as LL-HLS (hls.js), LL-DASH (dash.js) or
// legacy HLS-TS (hls.js), with a format switch and the live latency, target
// latency and buffer shown on the page.
//
// The players are vendored verbatim from npm (see assets/VERSIONS) and
// embedded in the binary: the page never loads anything from the internet.
// Its Content-Security-Policy only allows scripts from the node itself. The
// page uses relative URLs, so it works the same behind a CDN; opened with
// ?base=https://cdn.example it plays from that origin instead (which must
// send CORS headers, as the node's origin does). ?format=ll-hls|ll-dash|hls-ts
// picks the format.
//
// For tests and monitoring the page keeps its figures in window.edgenode
// (format, currentTime, latency, libLatency, targetLatency, buffer, stalls,
// playing, width, height, errors, firstFrameMs).
package player

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/httpx"
)

//go:embed assets
var assetFS embed.FS

// Formats the page can play, as used in ?format= and Config.DefaultFormat.
const (
	FormatLLHLS  = "ll-hls"
	FormatLLDASH = "ll-dash"
	FormatHLSTS  = "hls-ts"
)

// URL layout of the origin the page plays from (relative to the node or
// to ?base=). %s is the stream id.
const (
	LLHLSPath  = "/cmaf/%s/master.m3u8"
	LLDASHPath = "/cmaf/%s/index.mpd"
	HLSTSPath  = "/hls/%s/master.m3u8"
)

// AssetsPath is where the page's scripts are served.
const AssetsPath = "/player/assets"

// Config of the player page (the `origin.player` section).
type Config struct {
	// DefaultFormat is opened when the URL names none: "ll-hls" (default),
	// "ll-dash" or "hls-ts".
	DefaultFormat string `yaml:"default_format"`
	// TargetLatency asked of dash.js (its streaming.delay.liveDelay, a
	// duration). Default 1.5s, as docs/players.md advises for stock
	// dash.js: it reloads the MPD no sooner than a second after each
	// answer, so it learns of a segment up to a second after it starts,
	// and at the MPD's 1 s target that emptied its buffer after ~40 s.
	TargetLatency time.Duration `yaml:"target_latency"`
	// TimePath is the node's time endpoint (ISO 8601 body), used by the page
	// to measure latency on the node's clock and by dash.js as its fallback
	// UTCTiming source. Default "/time".
	TimePath string `yaml:"time_path"`
}

// Validate checks c; errors name the key relative to this section.
func (c Config) Validate() error {
	switch c.DefaultFormat {
	case "", FormatLLHLS, FormatLLDASH, FormatHLSTS:
	default:
		return fmt.Errorf("%w: 'default_format' must be one of ll-hls, ll-dash, hls-ts", ErrConfig)
	}
	if c.TargetLatency < 0 || c.TargetLatency > time.Minute {
		return fmt.Errorf("%w: 'target_latency' must be 0..1m", ErrConfig)
	}
	if c.TimePath != "" && !strings.HasPrefix(c.TimePath, "/") {
		return fmt.Errorf("%w: 'time_path' must start with /", ErrConfig)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.DefaultFormat == "" {
		c.DefaultFormat = FormatLLHLS
	}
	if c.TargetLatency == 0 {
		c.TargetLatency = 1500 * time.Millisecond
	}
	if c.TimePath == "" {
		c.TimePath = "/time"
	}
	return c
}

// Server serves the player page and its embedded scripts.
type Server struct {
	cfg  Config
	log  *slog.Logger
	page *template.Template

	once   sync.Once
	assets map[string]*asset
}

type asset struct {
	name string
	body []byte
	gz   []byte // nil when compression does not help
	etag string
	ctyp string
}

// idRE is what a stream id in a URL may look like.
var idRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// New validates cfg and returns a Server. It has no side effects.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	page, err := template.ParseFS(assetFS, "assets/player.html")
	if err != nil {
		return nil, fmt.Errorf("player: page template: %w", err)
	}
	return &Server{cfg: cfg.withDefaults(), log: log, page: page}, nil
}

// Start does nothing: the page has no background work. It exists so the
// origin can treat every sub-server alike.
func (s *Server) Start(context.Context) error { return nil }

// Close does nothing; see Start.
func (s *Server) Close() error { return nil }

// RegisterRoutes adds GET/HEAD /player/{id} and /player/assets/{name}.
func (s *Server) RegisterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /player/{id}", s.servePage)
	mux.HandleFunc("GET "+AssetsPath+"/{name}", s.serveAsset)
}

type pageConfig struct {
	Stream        string            `json:"stream"`
	DefaultFormat string            `json:"defaultFormat"`
	URLs          map[string]string `json:"urls"`
	TargetLatency float64           `json:"targetLatency"`
	TimePath      string            `json:"timePath"`
}

// csp keeps the page to the node's own scripts; media and XHR may reach
// another origin only when the viewer asks for one with ?base=.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' blob:; worker-src 'self' blob:; connect-src *; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors *"

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !idRE.MatchString(id) {
		http.Error(w, "no such stream", http.StatusNotFound)
		return
	}
	pc := pageConfig{
		Stream:        id,
		DefaultFormat: s.cfg.DefaultFormat,
		URLs: map[string]string{
			FormatLLHLS:  fmt.Sprintf(LLHLSPath, id),
			FormatLLDASH: fmt.Sprintf(LLDASHPath, id),
			FormatHLSTS:  fmt.Sprintf(HLSTSPath, id),
		},
		TargetLatency: s.cfg.TargetLatency.Seconds(),
		TimePath:      s.cfg.TimePath,
	}
	var buf bytes.Buffer
	err := s.page.Execute(&buf, map[string]any{
		"Assets":     AssetsPath,
		"TimePath":   s.cfg.TimePath,
		"ConfigJSON": pc,
	})
	if err != nil {
		s.log.Error("player page", "stream", id, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

var contentTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
	".md":   "text/plain; charset=utf-8",
	".html": "text/plain; charset=utf-8", // the template itself, as source
}

func (s *Server) loadAssets() {
	s.assets = map[string]*asset{}
	entries, err := fs.ReadDir(assetFS, "assets")
	if err != nil {
		s.log.Error("player assets", "err", err)
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := fs.ReadFile(assetFS, "assets/"+e.Name())
		if err != nil {
			s.log.Error("player asset", "name", e.Name(), "err", err)
			continue
		}
		sum := sha256.Sum256(body)
		a := &asset{name: e.Name(), body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		a.ctyp = contentTypes[path.Ext(e.Name())]
		if a.ctyp == "" {
			a.ctyp = "text/plain; charset=utf-8" // LICENSE, VERSIONS
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if gz.Len() < len(body)*9/10 {
			a.gz = gz.Bytes()
		}
		s.assets[e.Name()] = a
	}
}

func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request) {
	s.once.Do(s.loadAssets)
	a, ok := s.assets[r.PathValue("name")]
	if !ok {
		w.Header().Set("Cache-Control", "public, max-age=60")
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctyp)
	// The names carry no version: let caches keep them for a day and
	// revalidate by ETag.
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	body, etag := a.body, a.etag
	if a.gz != nil && httpx.AcceptsGzip(r) {
		body = a.gz
		etag = strings.TrimSuffix(a.etag, `"`) + `-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
