package hls

import (
	"errors"
	"fmt"
	"time"
)

// Config of the LL-HLS server (keys of the yaml section origin.hls).
type Config struct {
	// PartHoldBack is EXT-X-SERVER-CONTROL PART-HOLD-BACK: how far behind
	// the live edge players stay. Default and minimum 3 × part_target
	// (0.75 s; §4.4.3.8, see DefaultHoldBack). Unit:
	// duration.
	PartHoldBack time.Duration `yaml:"part_hold_back"`
	// BlockTimeout: a blocking playlist request held longer gets 503
	// (§6.2.5.2). Default 3 × target duration.
	BlockTimeout time.Duration `yaml:"block_timeout"`
	// StartTimeout: how long a multivariant or media playlist request for
	// a stream that has no part yet waits before 404. Default 3s.
	StartTimeout time.Duration `yaml:"start_timeout"`
}

// Validate checks c against the part target of the packager; errors name
// the key.
func (c Config) Validate(partTarget time.Duration) error {
	var errs []error
	if c.PartHoldBack != 0 && c.PartHoldBack < 3*partTarget {
		errs = append(errs, fmt.Errorf("'part_hold_back' must be at least 3 × part_target (%v), got %v", 3*partTarget, c.PartHoldBack))
	}
	if c.BlockTimeout < 0 {
		errs = append(errs, fmt.Errorf("'block_timeout' must not be negative"))
	}
	if c.StartTimeout < 0 || c.StartTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("'start_timeout' must be 0..1m"))
	}
	return errors.Join(errs...)
}
