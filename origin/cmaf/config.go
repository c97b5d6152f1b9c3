package cmaf

import (
	"errors"
	"fmt"
	"time"
)

// Config of the packager (yaml section origin, see origin.Config).
type Config struct {
	// PartTarget is the longest a part (LL-HLS partial segment, LL-DASH
	// chunk) may be and what playlists advertise as PART-TARGET. Parts are
	// cut on frame boundaries between 85 % of it and all of it
	// (partWindow). Default 250ms.
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
		c.PartTarget = 250 * time.Millisecond
	}
	if c.SegmentDuration == 0 {
		c.SegmentDuration = time.Second
	}
	if c.Window == 0 {
		c.Window = 30 * time.Second
	}
	return c
}

// partWindow is where a part may end (draft-pantos-hls-rfc8216bis
// §4.4.4.9): no longer than PART-TARGET and, unless it is INDEPENDENT or
// a segment's last, at least 85 % of it (plus a millisecond, for the
// microseconds playlists list durations longer by). Parts aim at the
// middle.
//
// The window is 15 % of PART-TARGET wide, and a frame that does not fit
// in it leaves no legal cut: at 0.22 s (the old 200 ms target plus a
// tenth) it was 33 ms, and a browser's frames are 33 ms at 30 fps, 36 ms
// at the 27-28 fps of a loaded box, and land on its 16.7 ms display
// grid, so a 50 ms gap after five frames (0.18 s) left the choice of a
// part too short or too long. At 250 ms it is 37.5 ms: any run of frames
// of at most 50 ms on that grid has an end inside it, as have 25-30 fps
// with a few ms of jitter and an exact 24 fps. No one PART-TARGET under
// 0.34 s serves every rate: at 250 ms, 20 fps and 15 fps (a browser
// shedding load) and a jittery 24 fps have no frame count inside the
// window and give short parts; a PART-TARGET fitted to the stream's rate
// (chosen before the first playlist, kept for the stream) would.
func (c Config) partWindow() (lo, aim, hi time.Duration) {
	c = c.WithDefaults()
	hi = c.PartTarget
	lo = hi*85/100 + time.Millisecond
	return lo, (lo + hi) / 2, hi
}

// endPart reports whether a part that has lasted p so far ends before a
// frame expected to last next (the frame before's duration: a guess).
// Below the window it never does: if the next frame does not fit after
// all, the part ends before it once its duration is known (a frame
// later, and short because no cut was legal); ending it on the guess
// made short parts where a frame after a 50 ms gap was 33 ms again.
// Inside the window a wrong guess still leaves a legal part.
func (c Config) endPart(p, next time.Duration) bool {
	lo, aim, hi := c.partWindow()
	switch {
	case p < lo:
		return false
	case p+next > hi: // never past PART-TARGET
		return true
	}
	return aim-p <= p+next-aim // nearer the aim now than a frame later
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
// missing key, the only answer that means "never numbered": any error is
// a failed read (ErrStateUnavailable), never a fresh start.
type State interface {
	GetState(component, key string) ([]byte, error)
	PutState(component, key string, value []byte) error
}
