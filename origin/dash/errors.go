package dash

import "errors"

// ErrConfig wraps every Config.Validate failure.
var ErrConfig = errors.New("dash: invalid config")

// ErrNotFound: unknown stream, or a stream without any segment yet. HTTP 404.
var ErrNotFound = errors.New("dash: not found")
