package api

import (
	"errors"
	"net/http"

	"github.com/edgenode/edgenode/internal/store"
)

// Sentinels of the HTTP layer. Errors a client caused carry a message for
// the client (see clientError); every error becomes a status in exactly one
// place, errorTable.
var (
	// ErrBadRequest: malformed JSON, a bad field or query parameter.
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: no, or a wrong, API token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnsupportedMediaType: POST/PATCH body not application/json.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrMethodNotAllowed: the resource exists but not with this method.
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrNoRoute: no API resource at this path.
	ErrNoRoute = errors.New("no such resource")
	// ErrTooLarge: the body exceeds the configured cap.
	ErrTooLarge = errors.New("request body too large")
)

// clientError carries the message shown to the client next to the sentinel
// that decides the status.
type clientError struct {
	kind error
	msg  string
}

func (e *clientError) Error() string { return e.msg }
func (e *clientError) Unwrap() error { return e.kind }

func newError(kind error, msg string) error { return &clientError{kind: kind, msg: msg} }

// errorTable maps errors to statuses, first match wins. msg replaces the
// error's text for errors that do not carry a client message.
var errorTable = []struct {
	err    error
	status int
	msg    string
}{
	{ErrBadRequest, http.StatusBadRequest, ""},
	{ErrUnauthorized, http.StatusUnauthorized, ""},
	{ErrNoRoute, http.StatusNotFound, ""},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed, ""},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, ""},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, ""},
	{store.ErrNotFound, http.StatusNotFound, "stream not found"},
	{store.ErrNameTaken, http.StatusConflict, "a stream with this name already exists"},
	{store.ErrInvalid, http.StatusBadRequest, ""},
}

// statusOf returns the status and client message for err.
func statusOf(err error) (int, string) {
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			msg := row.msg
			var ce *clientError
			if msg == "" && errors.As(err, &ce) {
				msg = ce.msg
			}
			if msg == "" {
				msg = err.Error()
			}
			return row.status, msg
		}
	}
	return http.StatusInternalServerError, "internal error"
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusOf(err)
	if status == http.StatusInternalServerError {
		a.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		a.log.Debug("api: request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="edgenode"`)
	}
	writeJSON(w, status, errorBody{Error: msg})
}

type errorBody struct {
	Error string `json:"error"`
}
