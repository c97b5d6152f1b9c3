package origin

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgenode/edgenode/origin/hls"
)

func hlsCfg(hold time.Duration) hls.Config { return hls.Config{PartHoldBack: hold} }

func TestConfigYAML(t *testing.T) {
	src := `
part_target: 250ms
segment_duration: 2s
window: 20s
end_grace: 5s
linger: 30s
media_wait: 4s
hls:
  part_hold_back: 1s
  block_timeout: 5s
  start_timeout: 2s
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.PartTarget != 250*time.Millisecond || c.SegmentDuration != 2*time.Second || c.Window != 20*time.Second ||
		c.EndGrace != 5*time.Second || c.HLS.PartHoldBack != time.Second {
		t.Errorf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	var zero Config
	if err := zero.Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	for _, bad := range []struct {
		c   Config
		key string
	}{
		{Config{EndGrace: -1}, "'end_grace'"},
		{Config{HLS: hlsCfg(100 * time.Millisecond)}, "'part_hold_back'"},
		{func() Config { c := Config{}; c.PartTarget = time.Millisecond; return c }(), "'part_target'"},
		{func() Config { c := Config{}; c.Window = time.Second; return c }(), "'window'"},
	} {
		err := bad.c.Validate()
		if err == nil || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%+v: %v, want an error naming %s", bad.c, err, bad.key)
		}
	}
}
