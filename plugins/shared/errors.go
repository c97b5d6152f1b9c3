package shared

import "errors"

// ErrNoConfig is returned to the host when a Transcode stream does not
// start with a Config.
var ErrNoConfig = errors.New("encoder plugin: transcode stream must start with a config")
