package cmaf

import (
	"errors"
	"fmt"
	"time"
)

// Config of the packager (yaml section origin, see origin.Config).
type Config struct {
	// PartTarget is the target duration of a part (LL-HLS PART-TARGET,
	// LL-DASH chunk). Parts are cut on frame boundaries and never exceed it
	// unless one frame does. Default 200ms.
	PartTarget time.Duration `yaml:"part_target"`
	// SegmentDuration: a segment is cut at the first IDR at or after this
	// duration. Default 1s (the ingest keyframe interval).
	SegmentDuration time.Duration `yaml:"segment_duration"`
	// Window is how much media each track keeps downloadable. Default 30s.
	Window time.Duration `yaml:"window"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.PartTarget == 0 {
		c.PartTarget = 200 * time.Millisecond
	}
	if c.SegmentDuration == 0 {
		c.SegmentDuration = time.Second
	}
	if c.Window == 0 {
		c.Window = 30 * time.Second
	}
	return c
}

// PartLimit is the longest a part may be and what playlists advertise as
// PART-TARGET: PartTarget plus a tenth, for the jitter of real frame
// timestamps. A browser's 30 fps frames are 33.3 ms give or take a
// fraction, so six of them are 0.2 s give or take a millisecond: with
// the limit at exactly PartTarget six frames did not fit and most parts
// of a browser's stream were five frames, 0.167 s, below the 85 % of
// PART-TARGET that draft-pantos-hls-rfc8216bis §4.4.4.9 requires of
// every part that is neither INDEPENDENT nor a segment's last. Parts aim
// at PartTarget and never exceed PartLimit.
func (c Config) PartLimit() time.Duration {
	c = c.WithDefaults()
	return c.PartTarget + c.PartTarget/10
}

// Validate checks c (after defaults); errors name the key.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if c.PartTarget < 20*time.Millisecond || c.PartTarget > 5*time.Second {
		errs = append(errs, fmt.Errorf("'part_target' must be 20ms..5s, got %v", c.PartTarget))
	}
	if c.SegmentDuration < c.PartTarget || c.SegmentDuration > 30*time.Second {
		errs = append(errs, fmt.Errorf("'segment_duration' must be part_target..30s, got %v", c.SegmentDuration))
	}
	if c.Window < 3*c.SegmentDuration {
		errs = append(errs, fmt.Errorf("'window' must be at least 3 × segment_duration, got %v", c.Window))
	}
	return errors.Join(errs...)
}

// State persists numbering across restarts. The node's bbolt store
// implements it; tests use a map. GetState returns (nil, nil) for a
// missing key.
type State interface {
	GetState(component, key string) ([]byte, error)
	PutState(component, key string, value []byte) error
}
