package dash

import "errors"

// ErrConfig wraps every Config.Validate failure.
var ErrConfig = errors.New("dash: invalid config")

// ErrNotFound: unknown stream, or a stream without any segment yet. HTTP 404.
var ErrNotFound = errors.New("dash: not found")

// ErrBadRequest: a malformed query (the `next` of an MPD update URL). HTTP 400.
var ErrBadRequest = errors.New("dash: bad request")
