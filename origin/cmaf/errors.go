package cmaf

import "errors"

// ErrNotFound: the stream, rendition, track, segment or part does not exist
// (never did, or left the window).
var ErrNotFound = errors.New("cmaf: not found")

// ErrEnded: the track ended before the awaited part or segment was written.
var ErrEnded = errors.New("cmaf: track ended")

// ErrTooFar: a wait asked for a segment too far in the future (more than
// two segments past the last one, LL-HLS §6.2.5.2).
var ErrTooFar = errors.New("cmaf: segment too far in the future")

// ErrUnsupported: an access unit or track uses a codec the packager does
// not handle.
var ErrUnsupported = errors.New("cmaf: unsupported codec")

// ErrStateUnavailable: the rendition's numbering could not be read from
// State (a store error, a damaged record). The rendition does not start
// until it can be read: starting at 1 again would reuse segment URLs a
// CDN may still hold with other media.
var ErrStateUnavailable = errors.New("cmaf: numbering state unavailable")
