package ingest

import (
	"errors"
	"net/http"
)

// Sentinel errors. The HTTP boundary maps them to WHIP status codes in
// statusOf, the one table of the package.
var (
	// ErrConfig wraps every Config.Validate failure.
	ErrConfig = errors.New("ingest: invalid config")
	// ErrContentType: the request body has the wrong media type (415).
	ErrContentType = errors.New("unsupported content type")
	// ErrBadSDP: the offer or sdpfrag cannot be parsed (400).
	ErrBadSDP = errors.New("malformed SDP")
	// ErrUnservable: a well-formed offer this node cannot serve (422).
	ErrUnservable = errors.New("offer cannot be served")
	// ErrForbidden: unknown stream, wrong key or deactivated stream (403).
	ErrForbidden = errors.New("forbidden")
	// ErrBusy: someone is already publishing to the path (400, as the
	// service we replace answers).
	ErrBusy = errors.New("someone is already publishing")
	// ErrOverloaded: more sessions than max_sessions (503 + Retry-After).
	ErrOverloaded = errors.New("too many sessions")
	// ErrRateLimited: the client sends requests too fast (429).
	ErrRateLimited = errors.New("too many requests")
	// ErrNoSession: the session resource does not exist (404).
	ErrNoSession = errors.New("no such session")
	// ErrPreconditionRequired: PATCH without If-Match (428).
	ErrPreconditionRequired = errors.New("If-Match required")
	// ErrPreconditionFailed: PATCH with a stale If-Match (412).
	ErrPreconditionFailed = errors.New("If-Match does not match the session's ETag")
	// ErrClosed: the server is shutting down (503).
	ErrClosed = errors.New("ingest server closed")
	// ErrUnavailable: the node cannot look the stream up just now (its
	// store failed to answer); the publisher may retry (503).
	ErrUnavailable = errors.New("stream lookup unavailable")
)

// statusOf maps an error to its HTTP status (RFC 9725 §4.2, §4.3.1, §4.5).
func statusOf(err error) int {
	for _, e := range []struct {
		err    error
		status int
	}{
		{ErrContentType, http.StatusUnsupportedMediaType},
		{ErrBadSDP, http.StatusBadRequest},
		{ErrUnservable, http.StatusUnprocessableEntity},
		{ErrForbidden, http.StatusForbidden},
		{ErrBusy, http.StatusBadRequest},
		{ErrOverloaded, http.StatusServiceUnavailable},
		{ErrClosed, http.StatusServiceUnavailable},
		{ErrUnavailable, http.StatusServiceUnavailable},
		{ErrRateLimited, http.StatusTooManyRequests},
		{ErrNoSession, http.StatusNotFound},
		{ErrPreconditionRequired, http.StatusPreconditionRequired},
		{ErrPreconditionFailed, http.StatusPreconditionFailed},
	} {
		if errors.Is(err, e.err) {
			return e.status
		}
	}
	return http.StatusInternalServerError
}
