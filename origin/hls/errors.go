package hls

import "errors"

// ErrBadRequest: malformed or contradictory _HLS_ query parameters
// (§6.2.5.2: 400).
var ErrBadRequest = errors.New("hls: bad request")
