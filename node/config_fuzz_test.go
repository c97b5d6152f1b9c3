package node

import (
	"os"
	"strings"
	"testing"
)

// FuzzDecodeYAML: config decoding never panics (keysByLine walks whatever
// yaml.v3 makes of the input), and what it accepts re-validates without
// panicking. Seeds: testdata/fuzz/FuzzDecodeYAML and the example config.
func FuzzDecodeYAML(f *testing.F) {
	if b, err := os.ReadFile("../docs/edgenode.example.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{"", "listen: a:1\n", "api:\n  tokn: x\n", "log: [1]\n", "shutdown_timeout: 1h\n", "a: &x 1\nb: *x\n", "- 1\n- 2\n", "listen: a\n---\nx: 1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Config
		err := decodeYAML(b, &c)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			return
		}
		_ = c.Validate()
	})
}
