package hwenc

import "errors"

// ErrNoPlugin: no usable encoder plugin was found in plugin_dir; streams
// keep only their source rendition (Opus audio).
var ErrNoPlugin = errors.New("hwenc: no usable encoder plugin")

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("hwenc: closed")

// ErrStalled ends a transcode session that takes input but produces
// nothing for stall_timeout.
var ErrStalled = errors.New("hwenc: encoder stalled")

// ErrBadLadder is returned by SetLadder for an invalid ladder.
var ErrBadLadder = errors.New("hwenc: invalid ladder")
