package ingest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/edgenode/edgenode/internal/hub"
)

// Media types of RFC 9725 §4.2 and §4.3.1 (RFC 8840).
const (
	contentTypeSDP  = "application/sdp"
	contentTypeFrag = "application/trickle-ice-sdpfrag"
)

// negotiateTimeout bounds answering an offer (ICE gathering included).
const negotiateTimeout = 10 * time.Second

// retryAfterOverload is the Retry-After of a 503 (RFC 9725 §4.5), seconds.
const retryAfterOverload = "5"

// RegisterRoutes adds the WHIP endpoint (/whip/<id>_<key>, or /whip/<id>
// with `Authorization: Bearer <key>`), its session resources
// (/whip/<id>/<session>) and the Go Live page (/live/<id>_<key>) to mux.
func (s *Server) RegisterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /whip/{path}", s.counted("POST", s.handlePost))
	mux.HandleFunc("OPTIONS /whip/{path}", s.counted("OPTIONS", s.handleOptions))
	mux.HandleFunc("GET /whip/{path}", s.counted("GET", s.handleGet))
	mux.HandleFunc("PATCH /whip/{path}/{session}", s.counted("PATCH", s.handlePatch))
	mux.HandleFunc("DELETE /whip/{path}/{session}", s.counted("DELETE", s.handleDelete))
	mux.HandleFunc("GET /whip/{path}/{session}", s.counted("GET", s.handleGetSession))
	mux.HandleFunc("OPTIONS /whip/{path}/{session}", s.counted("OPTIONS", s.handleOptions))
	mux.HandleFunc("GET /live/{path}", s.handleLive)
}

// statusWriter remembers the status for the request counter.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) counted(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		cors(sw.Header())
		h(sw, r)
		s.metrics.requests.WithLabelValues(method, strconv.Itoa(sw.code)).Inc()
	}
}

// cors lets browser WHIP clients on other origins publish and read the
// headers they need (FACTS: Location, ETag, Link, Allow-Methods).
func cors(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "OPTIONS, GET, POST, PATCH, DELETE")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Expose-Headers",
		"Location, ETag, Link, Accept-Post, Accept-Patch, Retry-After, Access-Control-Allow-Methods")
	h.Set("Access-Control-Max-Age", "86400")
}

// writeError writes the JSON error body and the status from statusOf.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	switch status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", retryAfterOverload)
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case http.StatusInternalServerError:
		s.log.Error("WHIP request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status != http.StatusInternalServerError {
		s.log.Debug("WHIP request refused", "method", r.Method, "status", status, "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// clientKey is the rate limiter's key: the client's IP address.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// parsePath splits "<id>_<key>" (or "<id>" with a Bearer token, RFC 9725
// §4.7 / RFC 6750) into the stream id and key.
func parsePath(path string, r *http.Request) (uint64, string, bool) {
	idStr, key, hasKey := strings.Cut(path, "_")
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil {
		return 0, "", false
	}
	if !hasKey || key == "" {
		auth := r.Header.Get("Authorization")
		scheme, tok, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return id, "", true
		}
		key = strings.TrimSpace(tok)
	}
	return id, key, true
}

// authorize checks the stream and its key; errors wrap ErrForbidden.
func (s *Server) authorize(path string, r *http.Request) (uint64, error) {
	id, key, ok := parsePath(path, r)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a stream path; publish to /whip/<id>_<key>", ErrForbidden, path)
	}
	if key == "" {
		return 0, fmt.Errorf("%w: no stream key: publish to /whip/<id>_<key> or send Authorization: Bearer <key>", ErrForbidden)
	}
	want, active, found, err := s.deps.Streams.LookupStream(id)
	if err != nil {
		return 0, fmt.Errorf("%w: stream %d: %v", ErrUnavailable, id, err)
	}
	if !found || subtle.ConstantTimeCompare([]byte(want), []byte(key)) != 1 {
		return 0, fmt.Errorf("%w: unknown stream or wrong key", ErrForbidden)
	}
	if !active {
		return 0, fmt.Errorf("%w: stream %d is deactivated", ErrForbidden, id)
	}
	return id, nil
}

func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// handlePost creates a session from an SDP offer (RFC 9725 §4.2).
func (s *Server) handlePost(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.limiter.allow(clientKey(r)) {
		s.writeError(w, r, fmt.Errorf("%w: slow down (post_rate)", ErrRateLimited))
		return
	}
	if mt := mediaType(r); mt != contentTypeSDP {
		s.writeError(w, r, fmt.Errorf("%w: Content-Type must be %s, got %q", ErrContentType, contentTypeSDP, r.Header.Get("Content-Type")))
		return
	}
	path := r.PathValue("path")
	id, err := s.authorize(path, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOfferSize+1))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: reading body: %v", ErrBadSDP, err))
		return
	}
	offer, sum, err := checkOffer(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err := s.reserve(id, path, sum)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), negotiateTimeout)
	defer cancel()
	answer, err := sess.negotiate(ctx, offer)
	if err == nil {
		var pub *hub.Publisher
		pub, err = s.deps.Hub.Publish(hub.Key{Stream: id, Rendition: hub.Source},
			hub.Session{ID: sess.id, Tracks: sess.tracks, Started: start})
		if errors.Is(err, hub.ErrBusy) {
			err = fmt.Errorf("%w to the path '%s'", ErrBusy, path)
		} else if err == nil && !sess.setPublisher(pub) {
			err = fmt.Errorf("%w: the session ended while it was created", ErrClosed)
		}
	}
	if err != nil {
		sess.end("negotiation failed")
		sess.wait()
		s.writeError(w, r, err)
		return
	}
	sess.mu.Lock()
	etag := sess.etag
	sess.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", contentTypeSDP)
	h.Set("Location", s.cfg.PublicURL+"/whip/"+strconv.FormatUint(id, 10)+"/"+sess.id)
	// RFC 9725 §4.3.1: a strong ETag announces ICE restart support.
	h.Set("ETag", etag)
	h.Set("Accept-Patch", contentTypeFrag)
	h.Set("Cache-Control", "no-store")
	s.linkICEServers(h, id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	s.metrics.postTime.Observe(time.Since(start).Seconds())
	sess.log.Info("publisher session created", "video", sum.Video, "audio", sum.Audio,
		"profiles", sum.VideoProfiles, "took", time.Since(start).Round(time.Millisecond))
}

// reserve claims stream id for a new session, or says why it cannot.
// A previous publisher whose connection is already lost (a presenter who
// reloaded the page) is ended at once instead of blocking the stream until
// stale_timeout.
func (s *Server) reserve(id uint64, path string, sum offerSummary) (*session, error) {
	for range 2 {
		s.mu.Lock()
		if s.closed || !s.started {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		old := s.byStream[id]
		if old == nil {
			if len(s.sessions) >= s.cfg.MaxSessions {
				s.mu.Unlock()
				return nil, fmt.Errorf("%w: %d sessions (max_sessions); retry later", ErrOverloaded, s.cfg.MaxSessions)
			}
			sess := newSession(s, id, path, sum)
			s.sessions[sess.id] = sess
			s.byStream[id] = sess
			s.metrics.sessions.Set(float64(len(s.sessions)))
			s.mu.Unlock()
			return sess, nil
		}
		s.mu.Unlock()
		if !old.lost() {
			break
		}
		old.log.Info("replacing a publisher whose connection is lost")
		old.end("replaced by a new publisher")
		old.wait()
	}
	return nil, fmt.Errorf("%w to the path '%s'", ErrBusy, path)
}

// lost reports whether the session's connection is gone or going.
func (sess *session) lost() bool {
	sess.mu.Lock()
	closing := sess.closing
	sess.mu.Unlock()
	if closing {
		return true
	}
	sess.mu.Lock()
	pc := sess.pc
	sess.mu.Unlock()
	if pc == nil {
		return false // still negotiating
	}
	switch pc.ConnectionState() {
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		return true
	}
	return false
}

// linkICEServers adds one `Link: rel="ice-server"` per URL (RFC 9725 §4.6).
func (s *Server) linkICEServers(h http.Header, id uint64) {
	var servers []webrtc.ICEServer
	if s.deps.ICEServers != nil {
		servers = s.deps.ICEServers(id)
	} else if len(s.cfg.ICEServers) > 0 {
		servers = []webrtc.ICEServer{{URLs: s.cfg.ICEServers}}
	}
	for _, srv := range servers {
		for _, u := range srv.URLs {
			v := "<" + u + `>; rel="ice-server"`
			if cred, ok := srv.Credential.(string); ok && srv.Username != "" {
				v += `; username="` + quoteEscape(srv.Username) + `"; credential="` + quoteEscape(cred) +
					`"; credential-type="password"`
			}
			h.Add("Link", v)
		}
	}
}

func quoteEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// handleOptions answers CORS preflights and plain OPTIONS (RFC 9725 §4.2:
// Accept-Post; ICE servers MAY be on a plain OPTIONS and SHOULD NOT be on
// a preflight).
func (s *Server) handleOptions(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Accept-Post", contentTypeSDP)
	if r.PathValue("session") != "" {
		h.Set("Accept-Patch", contentTypeFrag)
	}
	if r.Header.Get("Access-Control-Request-Method") == "" && r.PathValue("session") == "" {
		if id, err := s.authorize(r.PathValue("path"), r); err == nil {
			s.linkICEServers(h, id)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleGet: GET on the endpoint is 2xx without a body (SPECS §4.2).
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Accept-Post", contentTypeSDP)
	w.WriteHeader(http.StatusNoContent)
}

// lookupSession finds the session of a resource URL.
func (s *Server) lookupSession(r *http.Request) (*session, error) {
	s.mu.Lock()
	sess := s.sessions[r.PathValue("session")]
	s.mu.Unlock()
	idStr, _, _ := strings.Cut(r.PathValue("path"), "_")
	if sess == nil || strconv.FormatUint(sess.streamID, 10) != idStr {
		return nil, fmt.Errorf("%w: %s", ErrNoSession, r.URL.Path)
	}
	return sess, nil
}

func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) {
	if _, err := s.lookupSession(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Accept-Patch", contentTypeFrag)
	w.WriteHeader(http.StatusNoContent)
}

// handleDelete ends a session (RFC 9725 §4.2; the ETag is ignored).
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	if !s.limiter.allow(clientKey(r)) {
		s.writeError(w, r, fmt.Errorf("%w: slow down (post_rate)", ErrRateLimited))
		return
	}
	sess, err := s.lookupSession(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sess.end("publisher sent DELETE")
	sess.wait()
	w.WriteHeader(http.StatusOK)
}

// handlePatch handles trickle ICE and ICE restarts (RFC 9725 §4.3).
func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request) {
	if !s.limiter.allow(clientKey(r)) {
		s.writeError(w, r, fmt.Errorf("%w: slow down (post_rate)", ErrRateLimited))
		return
	}
	sess, err := s.lookupSession(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if mt := mediaType(r); mt != contentTypeFrag {
		s.writeError(w, r, fmt.Errorf("%w: Content-Type must be %s, got %q", ErrContentType, contentTypeFrag, r.Header.Get("Content-Type")))
		return
	}
	// §4.3.1: If-Match is required; "*" or the current ETag.
	ifMatch := strings.TrimSpace(r.Header.Get("If-Match"))
	if ifMatch == "" {
		s.writeError(w, r, fmt.Errorf("%w: PATCH needs If-Match with the session's ETag (RFC 9725 §4.3.1)", ErrPreconditionRequired))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFragSize+1))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%w: reading body: %v", ErrBadSDP, err))
		return
	}
	frag, err := parseSDPFrag(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sess.restart.Lock()
	defer sess.restart.Unlock()
	sess.mu.Lock()
	etag := sess.etag
	sess.mu.Unlock()
	restart := frag.Pwd != ""
	if ifMatch != "*" && ifMatch != etag {
		s.writeError(w, r, ErrPreconditionFailed)
		return
	}
	if !restart {
		if ifMatch == "*" {
			s.writeError(w, r, fmt.Errorf("%w: If-Match: \"*\" is for ICE restarts, which need ice-ufrag and ice-pwd", ErrPreconditionFailed))
			return
		}
		// §4.3.2: trickle; 204 without ETag.
		sess.trickle(frag)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), negotiateTimeout)
	defer cancel()
	out, newTag, err := sess.restartICE(ctx, frag)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", contentTypeFrag)
	w.Header().Set("ETag", newTag)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, out)
}
