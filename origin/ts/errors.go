package ts

import "errors"

// ErrConfig wraps every Config.Validate failure.
var ErrConfig = errors.New("ts: invalid config")

// ErrNotFound: unknown stream, rendition or segment (never existed or left
// the window). HTTP 404.
var ErrNotFound = errors.New("ts: not found")

// ErrClosed: the server was closed. HTTP 503.
var ErrClosed = errors.New("ts: server closed")

// ErrNoVideo: a session publishes no track this packager can carry.
var ErrNoVideo = errors.New("ts: no H.264 or AAC track in session")

// ErrStateUnavailable: a rendition's numbering could not be read from
// State (a store error, a damaged record); the rendition does not start
// until it can be.
var ErrStateUnavailable = errors.New("ts: numbering state unavailable")
