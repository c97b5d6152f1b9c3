package origin

import "errors"

// ErrNoHub: Deps.Hub is nil.
var ErrNoHub = errors.New("origin: Deps.Hub is required")

// ErrClosed: Start after Close.
var ErrClosed = errors.New("origin: closed")
