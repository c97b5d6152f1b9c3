package node

import "errors"

var (
	// ErrShutdownTimeout: a graceful stop did not finish within
	// shutdown_timeout; Run returns it and the process should exit anyway.
	ErrShutdownTimeout = errors.New("node: shutdown timed out")
	// ErrNotStarted: a method that needs the running node (store, listeners)
	// was called before Start or after Close.
	ErrNotStarted = errors.New("node: not started")
)
