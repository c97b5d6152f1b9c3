package hwenc

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgenode/edgenode/internal/media"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		yaml, err string
	}{
		{"", ""},
		{"mode: auto\nplugin_dir: /opt/p\nrestart_backoff: 100ms\nrestart_backoff_max: 2s\nfallback_after: 5\nstall_timeout: 1s", ""},
		{"mode: qsv", "'mode' must be one of"},
		{"ladder: [{name: source}, {name: 720p, width: 1280, height: 720, bitrate: 2500000}]", ""},
		{"ladder: [{name: 'a b', width: 640, height: 360, bitrate: 600000}]", "'ladder[0].name'"},
		{"ladder: [{name: x, width: 641, height: 360, bitrate: 600000}]", "'ladder[0].width'"},
		{"ladder: [{name: x, width: 640, height: 0, bitrate: 600000}]", "'ladder[0].height'"},
		{"ladder: [{name: x, width: 640, height: 360}]", "'ladder[0].bitrate'"},
		{"ladder: [{name: x, width: 640, height: 360, bitrate: 600000}, {name: x, width: 320, height: 180, bitrate: 200000}]", "listed twice"},
		{"ladder: [{name: source, width: 640}]", "source rendition takes no"},
		{"ladder: [{name: aac, width: 640, height: 360, bitrate: 600000}]", "reserved"},
		{"restart_backoff: 2s\nrestart_backoff_max: 1s", "'restart_backoff_max'"},
		{"stall_timeout: 10ms", "'stall_timeout'"},
		{"fallback_after: -1", "'fallback_after'"},
		{"audio_bitrate: 5", "'audio_bitrate'"},
	} {
		var c Config
		dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && tc.yaml != "" {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		err := c.Validate()
		if tc.err == "" && err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Mode != ModeAuto || c.FallbackAfter != 3 || c.RestartBackoff != 250*time.Millisecond || c.StallTimeout != 3*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	want := []media.Rendition{{Name: "source"},
		{Name: "480p", Width: 854, Height: 480, Bitrate: 1200000}, {Name: "360p", Width: 640, Height: 360, Bitrate: 600000}}
	if len(c.Ladder) != len(want) {
		t.Fatalf("ladder %+v", c.Ladder)
	}
	for i := range want {
		if c.Ladder[i] != want[i] {
			t.Errorf("ladder[%d] = %+v, want %+v", i, c.Ladder[i], want[i])
		}
	}
}

func TestChoose(t *testing.T) {
	x := PluginStatus{Name: "x264", Available: true}
	v := PluginStatus{Name: "vaapi", Available: true, Hardware: true}
	vNo := PluginStatus{Name: "vaapi", Reason: "no /dev/dri"}
	n := PluginStatus{Name: "nvenc", Available: true, Hardware: true}
	nNo := PluginStatus{Name: "nvenc", Reason: "no nvidia"}
	for _, tc := range []struct {
		mode  string
		found []PluginStatus
		want  string
	}{
		{ModeAuto, []PluginStatus{x, v, n}, "nvenc"},
		{ModeAuto, []PluginStatus{x, v, nNo}, "vaapi"},
		{ModeAuto, []PluginStatus{x, vNo, nNo}, "x264"},
		{ModeAuto, []PluginStatus{vNo, nNo}, ""},
		{ModeVAAPI, []PluginStatus{x, v, n}, "vaapi"},
		{ModeVAAPI, []PluginStatus{x, vNo, n}, "x264"},
		{ModeNVENC, []PluginStatus{nNo}, ""},
		{ModeX264, []PluginStatus{x, v, n}, "x264"},
	} {
		got, why := choose(tc.mode, tc.found)
		if got != tc.want {
			t.Errorf("choose(%s) = %q (%s), want %q", tc.mode, got, why, tc.want)
		}
		if why == "" {
			t.Errorf("choose(%s): no reason given", tc.mode)
		}
	}
}

func TestLifecycleWithoutStart(t *testing.T) {
	if _, err := New(Config{Mode: "bogus"}, Deps{}); err == nil || !strings.Contains(err.Error(), "'mode'") {
		t.Fatalf("New with a bad config: %v", err)
	}
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Fatal("New without a hub succeeded")
	}
}
