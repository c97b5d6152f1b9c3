// Package api serves the stream API a backend calls to create streams and
// get back the URLs a presenter and a CDN need. It is shaped like the
// streaming service edgenode replaces, so existing backend code ports over:
//
//	POST   /streaming/streams        {"name":"demo"}                → 201 Stream
//	GET    /streaming/streams?after=&limit=                         → 200 [Stream, ...]
//	GET    /streaming/streams/{id}                                  → 200 Stream (+ "encoder")
//	PATCH  /streaming/streams/{id}   {"active":false} {"name":…} {"rotate_key":true} → 200 Stream
//	DELETE /streaming/streams/{id}                                  → 204
//
// Requests carry `Authorization: APIKey <token>` or `Bearer <token>`.
// Errors are {"error":"…"} with the status from one table (errors.go).
package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgenode/edgenode/internal/store"
)

// DefaultMaxBodyBytes caps request bodies when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 64 << 10

// PublisherControl drops live publishers. The ingest server implements it;
// the API calls Kick after a stream is deactivated, deleted or gets a new
// key, once the change is stored (so a reconnect is already refused). Kick
// reports whether a publisher was live and has been dropped.
type PublisherControl interface {
	Kick(streamID uint64) bool
}

// Options configure an API.
type Options struct {
	// PublicURL is the base of the URLs handed out (no trailing slash
	// needed), e.g. "https://ingest1.example.com".
	PublicURL string
	// Token is the API token clients present. Required.
	Token string
	// MaxBodyBytes caps request bodies (413 beyond). Default 64 KiB.
	MaxBodyBytes int64
}

// API is the stream API. Create it with New and mount it with
// RegisterRoutes.
type API struct {
	st        *store.Store
	log       *slog.Logger
	base      string
	tokenHash [sha256.Size]byte
	maxBody   int64

	mu sync.RWMutex
	pc PublisherControl
	es EncoderSource

	requests *prometheus.CounterVec
}

// New builds an API over st. reg may be nil (no metrics).
func New(st *store.Store, opts Options, log *slog.Logger, reg prometheus.Registerer) (*API, error) {
	if opts.Token == "" {
		return nil, fmt.Errorf("api: empty token")
	}
	u, err := url.Parse(opts.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: public URL %q must be an absolute http(s) URL", opts.PublicURL)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &API{
		st:        st,
		log:       log,
		base:      strings.TrimRight(opts.PublicURL, "/"),
		tokenHash: sha256.Sum256([]byte(opts.Token)),
		maxBody:   opts.MaxBodyBytes,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgenode_api_requests_total",
			Help: "Stream API requests by method and status code.",
		}, []string{"method", "code"}),
	}
	if reg != nil {
		if err := reg.Register(a.requests); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	return a, nil
}

// SetPublisherControl sets (or, with nil, clears) the hook that drops live
// publishers. Safe to call while serving.
func (a *API) SetPublisherControl(pc PublisherControl) {
	a.mu.Lock()
	a.pc = pc
	a.mu.Unlock()
}

func (a *API) kick(id uint64, why string) {
	a.mu.RLock()
	pc := a.pc
	a.mu.RUnlock()
	if pc != nil && pc.Kick(id) {
		a.log.Info("api: dropped live publisher", "stream", id, "reason", why)
	}
}

// RegisterRoutes mounts the API on mux.
func (a *API) RegisterRoutes(mux *http.ServeMux) {
	h := func(f func(http.ResponseWriter, *http.Request) error) http.Handler {
		return a.wrap(f)
	}
	mux.Handle("POST /streaming/streams", h(a.create))
	mux.Handle("GET /streaming/streams", h(a.list))
	mux.Handle("/streaming/streams", h(methodNotAllowed("GET, HEAD, POST")))
	mux.Handle("GET /streaming/streams/{id}", h(a.get))
	mux.Handle("PATCH /streaming/streams/{id}", h(a.patch))
	mux.Handle("DELETE /streaming/streams/{id}", h(a.delete))
	mux.Handle("/streaming/streams/{id}", h(methodNotAllowed("GET, HEAD, PATCH, DELETE")))
	mux.Handle("/streaming/", h(func(http.ResponseWriter, *http.Request) error {
		return newError(ErrNoRoute, "no such API resource")
	}))
}

// statusWriter records the status for the metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (a *API) wrap(f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		err := a.authorize(r)
		if err == nil {
			err = f(w, r)
		}
		if err != nil {
			a.writeError(w, r, err)
		}
		code := w.code
		if code == 0 {
			code = http.StatusOK
		}
		a.requests.WithLabelValues(r.Method, strconv.Itoa(code)).Inc()
	})
}

// Authenticated wraps h (another component's management routes, e.g. the
// encoders') in the API's token check and error format.
func (a *API) Authenticated(h http.Handler) http.Handler {
	return a.wrap(func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	})
}

// authorize accepts `APIKey <token>` and `Bearer <token>` (RFC 6750 §2.1),
// scheme case-insensitive, comparing in constant time.
func (a *API) authorize(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return newError(ErrUnauthorized, "missing Authorization header; send 'APIKey <token>' or 'Bearer <token>'")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || (!strings.EqualFold(scheme, "APIKey") && !strings.EqualFold(scheme, "Bearer")) {
		return newError(ErrUnauthorized, "Authorization must be 'APIKey <token>' or 'Bearer <token>'")
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
		return newError(ErrUnauthorized, "invalid API token")
	}
	return nil
}

func methodNotAllowed(allow string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", allow)
		return newError(ErrMethodNotAllowed, fmt.Sprintf("method %s not allowed; allowed: %s", r.Method, allow))
	}
}

// readJSON enforces the content type and body cap, then returns the body.
func (a *API) readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, newError(ErrUnsupportedMediaType, "Content-Type must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, newError(ErrTooLarge, fmt.Sprintf("request body is larger than %d bytes", mbe.Limit))
	}
	return body, err
}

// Stream is the JSON shape of a stream in responses.
type Stream struct {
	ID        uint64    `json:"id"`
	Name      string    `json:"name"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// PushURLWHIP is where the presenter publishes: <public>/whip/<id>_<key>.
	PushURLWHIP string `json:"push_url_whip"`
	// HLSCMAFURL is the LL-HLS (fMP4) multivariant playlist.
	HLSCMAFURL string `json:"hls_cmaf_url"`
	// DASHURL is the LL-DASH manifest.
	DASHURL string `json:"dash_url"`
	// HLSMPEGTSURL is the HLS (MPEG-TS) multivariant playlist.
	HLSMPEGTSURL string `json:"hls_mpegts_url"`
	// PlayerURL is the node's own player page.
	PlayerURL string `json:"player_url"`
	// GoLiveURL is the node's browser publishing page (carries the key).
	GoLiveURL string `json:"golive_url"`
	// Encoder is the transcoder's state for this stream (GET of one
	// stream only, when the node has encoders; absent otherwise).
	Encoder *Encoder `json:"encoder,omitempty"`
}

// View renders st with URLs under base.
func View(st store.Stream, base string) Stream {
	id := strconv.FormatUint(st.ID, 10)
	secret := id + "_" + st.Key
	return Stream{
		ID:           st.ID,
		Name:         st.Name,
		Active:       st.Active,
		CreatedAt:    st.CreatedAt,
		UpdatedAt:    st.UpdatedAt,
		PushURLWHIP:  base + "/whip/" + secret,
		HLSCMAFURL:   base + "/cmaf/" + id + "/master.m3u8",
		DASHURL:      base + "/cmaf/" + id + "/index.mpd",
		HLSMPEGTSURL: base + "/hls/" + id + "/master.m3u8",
		PlayerURL:    base + "/player/" + id,
		GoLiveURL:    base + "/live/" + secret,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)              // bodies are JSON for programs, never HTML
	if err := enc.Encode(v); err != nil { // only our own types are written; cannot happen
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	body, err := a.readJSON(w, r)
	if err != nil {
		return err
	}
	req, err := DecodeCreate(body)
	if err != nil {
		return err
	}
	active := req.Active == nil || *req.Active
	st, err := a.st.CreateStream(req.Name, active)
	if err != nil {
		return err
	}
	a.log.Info("api: stream created", "stream", st.ID, "name", st.Name, "active", st.Active)
	w.Header().Set("Location", "/streaming/streams/"+strconv.FormatUint(st.ID, 10))
	writeJSON(w, http.StatusCreated, View(st, a.base))
	return nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	after, limit, err := ParseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, more, err := a.st.ListStreams(after, limit)
	if err != nil {
		return err
	}
	total, err := a.st.CountStreams()
	if err != nil {
		return err
	}
	out := make([]Stream, 0, len(page))
	for _, st := range page {
		out = append(out, View(st, a.base))
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	if more {
		next := strconv.FormatUint(page[len(page)-1].ID, 10)
		w.Header().Set("X-Next-After", next)
		w.Header().Set("Link", fmt.Sprintf(`</streaming/streams?after=%s&limit=%d>; rel="next"`, next, limit))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	id, err := ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	st, err := a.st.Stream(id)
	if err != nil {
		return err
	}
	v := View(st, a.base)
	v.Encoder = a.encoder(id)
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (a *API) patch(w http.ResponseWriter, r *http.Request) error {
	id, err := ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	body, err := a.readJSON(w, r)
	if err != nil {
		return err
	}
	req, err := DecodePatch(body)
	if err != nil {
		return err
	}
	st, err := a.st.UpdateStream(id, func(st *store.Stream) error {
		if req.Name != nil {
			st.Name = *req.Name
		}
		if req.Active != nil {
			st.Active = *req.Active
		}
		if req.RotateKey {
			k, err := store.NewStreamKey()
			if err != nil {
				return err
			}
			st.Key = k
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.log.Info("api: stream updated", "stream", id, "name", st.Name, "active", st.Active, "key_rotated", req.RotateKey)
	switch {
	case req.Active != nil && !*req.Active:
		a.kick(id, "deactivated")
	case req.RotateKey:
		a.kick(id, "key rotated")
	}
	writeJSON(w, http.StatusOK, View(st, a.base))
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	id, err := ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.st.DeleteStream(id); err != nil {
		return err
	}
	a.log.Info("api: stream deleted", "stream", id)
	a.kick(id, "deleted")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
