package player

import "errors"

// ErrConfig wraps every Config.Validate failure.
var ErrConfig = errors.New("player: invalid config")
