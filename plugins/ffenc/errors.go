package ffenc

import "errors"

// ErrFaultInjected is returned by a session that a test build was told to
// fail (EDGENODE_FAULT_<NAME>_FAIL_AFTER).
var ErrFaultInjected = errors.New("ffenc: fault injected")

// ErrNothingToEncode: a Transcode config with neither renditions nor audio.
var ErrNothingToEncode = errors.New("ffenc: nothing to encode")
