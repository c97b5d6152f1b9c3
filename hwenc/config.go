package hwenc

import (
	"fmt"
	"regexp"
	"time"

	"github.com/edgenode/edgenode/internal/hub"
	"github.com/edgenode/edgenode/internal/media"
)

// Modes of Config.Mode.
const (
	ModeAuto  = "auto"
	ModeX264  = "x264"
	ModeVAAPI = "vaapi"
	ModeNVENC = "nvenc"
	ModeOff   = "off"
)

// Config is the `encoders` section. The zero value means every default.
type Config struct {
	// Mode picks the encoder plugin: auto (default: nvenc, then vaapi, then
	// x264, whichever probes available), x264, vaapi, nvenc, or off (no
	// transcoding: the source rendition only, audio stays Opus).
	Mode string `yaml:"mode" json:"mode"`
	// PluginDir holds the plugin binaries (default: "plugins" in the
	// directory of the running binary, i.e. bin/plugins for bin/edgenode).
	PluginDir string `yaml:"plugin_dir" json:"plugin_dir"`
	// Ladder is the node's default ladder (default: source + 480p
	// 1.2 Mbit/s + 360p 600 kbit/s; see DefaultLadder). Widths and heights
	// in pixels, even; bitrate in bit/s. Rungs taller than the tallest
	// picture the publisher has sent are left out (never upscale).
	Ladder []media.Rendition `yaml:"ladder" json:"ladder"`
	// AudioBitrate of the AAC audio in bit/s (default 128000).
	AudioBitrate int `yaml:"audio_bitrate" json:"audio_bitrate"`
	// RestartBackoff is the wait before the first restart of a failed
	// encoder (default 250ms); it doubles per consecutive failure.
	RestartBackoff time.Duration `yaml:"restart_backoff" json:"restart_backoff"`
	// RestartBackoffMax caps the back-off (default 5s).
	RestartBackoffMax time.Duration `yaml:"restart_backoff_max" json:"restart_backoff_max"`
	// FallbackAfter is the number of consecutive failures of a hardware
	// plugin after which the stream switches to x264 (default 3).
	FallbackAfter int `yaml:"fallback_after" json:"fallback_after"`
	// StallTimeout: an encoder that takes input but returns nothing for
	// this long is restarted (default 3s; before its first output a session
	// gets three times as long, at least 5s).
	StallTimeout time.Duration `yaml:"stall_timeout" json:"stall_timeout"`
}

// AudioRendition is the hub rendition name under which each stream's AAC
// audio is published on its own (Tracks: one AAC track), from the start
// of the stream and even when no video rung fits the source: packagers use
// it for the source rendition's audio in HLS and TS.
const AudioRendition = "aac"

// DefaultLadder is the default ladder.
//
// It has no 720p rung: a browser presenter sends at most 1280x720
// (Chromium's default capture), so a 720p rung re-encoded that same
// picture at a higher bitrate than the source's (2.5 Mbit/s against
// ~1.2), which ABR players then ranked above the source, and it was half
// the ladder's CPU: ffmpeg 5.1 encodes every rung in one thread, and with
// it a 720p30 browser ladder needed most of one core (20 s of 720p30
// test video: 720p 8.6 s, 480p 4.1 s, 360p 2.9 s of x264 veryfast, 2.1 s
// to decode), more than a 2-core box gives it next to WebRTC and the
// packager: the rungs fell 10-17 s behind the source. A node fed 1080p
// (OBS) is configured with a 720p rung (docs/edgenode.example.yaml).
func DefaultLadder() []media.Rendition {
	return []media.Rendition{
		{Name: hub.Source},
		{Name: "480p", Width: 854, Height: 480, Bitrate: 1_200_000},
		{Name: "360p", Width: 640, Height: 360, Bitrate: 600_000},
	}
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeAuto
	}
	if len(c.Ladder) == 0 {
		c.Ladder = DefaultLadder()
	}
	if c.AudioBitrate == 0 {
		c.AudioBitrate = 128000
	}
	if c.RestartBackoff == 0 {
		c.RestartBackoff = 250 * time.Millisecond
	}
	if c.RestartBackoffMax == 0 {
		c.RestartBackoffMax = 5 * time.Second
	}
	if c.FallbackAfter == 0 {
		c.FallbackAfter = 3
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 3 * time.Second
	}
	return c
}

// Validate checks c; errors name the key relative to the section.
func (c Config) Validate() error {
	switch c.Mode {
	case "", ModeAuto, ModeX264, ModeVAAPI, ModeNVENC, ModeOff:
	default:
		return fmt.Errorf("'mode' must be one of auto, x264, vaapi, nvenc, off (got %q)", c.Mode)
	}
	if err := validateLadder(c.Ladder, "ladder"); err != nil {
		return err
	}
	if c.AudioBitrate < 0 || (c.AudioBitrate > 0 && (c.AudioBitrate < 16000 || c.AudioBitrate > 512000)) {
		return fmt.Errorf("'audio_bitrate' must be 16000..512000 bit/s")
	}
	if c.RestartBackoff < 0 {
		return fmt.Errorf("'restart_backoff' must not be negative")
	}
	if c.RestartBackoffMax < 0 || (c.RestartBackoffMax > 0 && c.RestartBackoffMax < c.RestartBackoff) {
		return fmt.Errorf("'restart_backoff_max' must be >= 'restart_backoff'")
	}
	if c.FallbackAfter < 0 {
		return fmt.Errorf("'fallback_after' must not be negative")
	}
	if c.StallTimeout < 0 || (c.StallTimeout > 0 && c.StallTimeout < 500*time.Millisecond) {
		return fmt.Errorf("'stall_timeout' must be at least 500ms")
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,32}$`)

func validateLadder(l []media.Rendition, key string) error {
	seen := map[string]bool{}
	for i, r := range l {
		k := fmt.Sprintf("%s[%d]", key, i)
		if !nameRE.MatchString(r.Name) {
			return fmt.Errorf("'%s.name' must be 1-32 of [a-zA-Z0-9_-] (got %q)", k, r.Name)
		}
		if seen[r.Name] {
			return fmt.Errorf("'%s.name' %q is listed twice", k, r.Name)
		}
		seen[r.Name] = true
		if r.Name == AudioRendition {
			return fmt.Errorf("'%s.name' %q is reserved for the AAC audio rendition", k, r.Name)
		}
		if r.Name == hub.Source {
			if r.Width != 0 || r.Height != 0 || r.Bitrate != 0 {
				return fmt.Errorf("'%s': the source rendition takes no width, height or bitrate", k)
			}
			continue
		}
		if r.Width < 16 || r.Width > 7680 || r.Width%2 != 0 {
			return fmt.Errorf("'%s.width' must be even and 16..7680", k)
		}
		if r.Height < 16 || r.Height > 4320 || r.Height%2 != 0 {
			return fmt.Errorf("'%s.height' must be even and 16..4320", k)
		}
		if r.Bitrate < 50_000 || r.Bitrate > 50_000_000 {
			return fmt.Errorf("'%s.bitrate' must be 50000..50000000 bit/s", k)
		}
	}
	return nil
}
