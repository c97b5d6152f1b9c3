package node

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A section shaped like the ones other packages will add: env overrides
// and validation must reach it without code changes in node.
type fakeSection struct {
	UDPPort int           `yaml:"udp_port"`
	Hosts   []string      `yaml:"hosts"`
	Enabled bool          `yaml:"enabled"`
	Rate    uint32        `yaml:"rate"`
	Gain    float64       `yaml:"gain"`
	Hold    time.Duration `yaml:"hold"`
	Inner   struct {
		Name string `yaml:"name"`
	} `yaml:"inner"`
	skipped string
	NoTag   string `yaml:"-"`
}

func (s fakeSection) Validate() error {
	var errs []error
	if s.UDPPort < 0 || s.UDPPort > 65535 {
		errs = append(errs, errors.New("'udp_port' must be 1..65535"))
	}
	if s.Rate == 99 {
		errs = append(errs, errors.New("fake: invalid config: 'rate' must not be 99"))
	}
	if s.Inner.Name == "bad" {
		errs = append(errs, errors.New("inner name is bad"))
	}
	return errors.Join(errs...)
}

type inlined struct {
	PartTarget time.Duration `yaml:"part_target"`
}

func (c inlined) Validate() error {
	if c.PartTarget < 0 {
		return errors.New("'part_target' must not be negative")
	}
	return nil
}

// originLike embeds its packager keys inline and has no Validate itself.
type originLike struct {
	inlined `yaml:",inline"`
	Linger  time.Duration `yaml:"linger"`
	Enabled *bool         `yaml:"enabled"`
	Port    *int          `yaml:"port"`
}

type fakeConfig struct {
	Listen string      `yaml:"listen"`
	Origin originLike  `yaml:"origin"`
	Ingest fakeSection `yaml:"ingest"`
	Plain  struct {
		Sub fakeSection `yaml:"sub"`
	} `yaml:"plain"`
}

func TestEnvReachesNestedSections(t *testing.T) {
	var c fakeConfig
	err := applyEnv(reflect.ValueOf(&c).Elem(), []string{
		"EDGENODE_INGEST_UDP_PORT=5004",
		"EDGENODE_INGEST_HOSTS= a.example, b.example ,",
		"EDGENODE_INGEST_ENABLED=true",
		"EDGENODE_INGEST_RATE=7",
		"EDGENODE_INGEST_GAIN=0.5",
		"EDGENODE_INGEST_HOLD=2m",
		"EDGENODE_INGEST_INNER_NAME=n",
		"EDGENODE_PLAIN_SUB_UDP_PORT=9",
		"EDGENODE_INGEST_NOTAG=x",
		"EDGENODE_ORIGIN_PART_TARGET=500ms",
		"EDGENODE_ORIGIN_LINGER=1m",
		"EDGENODE_ORIGIN_ENABLED=false",
		"EDGENODE_ORIGIN_PORT=7",
	})
	if err != nil {
		t.Fatal(err)
	}
	in := c.Ingest
	if in.UDPPort != 5004 || !reflect.DeepEqual(in.Hosts, []string{"a.example", "b.example"}) || !in.Enabled ||
		in.Rate != 7 || in.Gain != 0.5 || in.Hold != 2*time.Minute || in.Inner.Name != "n" || in.NoTag != "" || c.Plain.Sub.UDPPort != 9 {
		t.Fatalf("%+v", c)
	}
	o := c.Origin
	if o.PartTarget != 500*time.Millisecond || o.Linger != time.Minute || o.Enabled == nil || *o.Enabled || o.Port == nil || *o.Port != 7 {
		t.Fatalf("origin %+v", o)
	}
	err = applyEnv(reflect.ValueOf(&c).Elem(), []string{"EDGENODE_INGEST_RATE=-1", "EDGENODE_INGEST_ENABLED=maybe"})
	if err == nil || !strings.Contains(err.Error(), "'ingest.rate'") || !strings.Contains(err.Error(), "'ingest.enabled'") {
		t.Fatalf("bad values: %v", err)
	}
}

func TestValidateSectionsPrefixesKeys(t *testing.T) {
	var c fakeConfig
	c.Ingest.UDPPort = 70000
	c.Ingest.Inner.Name = "bad"
	c.Ingest.Rate = 99
	c.Plain.Sub.UDPPort = -1
	c.Origin.PartTarget = -1
	err := errors.Join(validateSections(reflect.ValueOf(c), "")...)
	msg := err.Error()
	for _, want := range []string{"'ingest.udp_port' must be 1..65535", "ingest: inner name is bad", "'plain.sub.udp_port' must be", "'origin.part_target' must not be negative", "fake: invalid config: 'ingest.rate' must not be 99"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	c = fakeConfig{}
	if errs := validateSections(reflect.ValueOf(c), ""); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
}
