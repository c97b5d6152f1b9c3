package node

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgenode/edgenode/hwenc"
	"github.com/edgenode/edgenode/ingest"
	"github.com/edgenode/edgenode/origin"
	"github.com/edgenode/edgenode/origin/dash"
	"github.com/edgenode/edgenode/origin/player"
	"github.com/edgenode/edgenode/origin/ts"
	"github.com/edgenode/edgenode/turn"
)

// EnvPrefix starts every environment variable that overrides a config key:
// the key's YAML path in upper case joined by '_' (api.listen →
// EDGENODE_API_LISTEN, ingest.udp_port → EDGENODE_INGEST_UDP_PORT).
const EnvPrefix = "EDGENODE_"

// Dev defaults, used for keys left at their zero value.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultDataDir         = "./data"
	DefaultShutdownTimeout = 4 * time.Second
)

// Config is the whole node configuration: one YAML file, every key
// overridable by an EDGENODE_… variable. The zero value is the dev setup:
// everything on 127.0.0.1:8080, data in ./data.
//
// Sections of other packages are added as fields here (a struct with a
// yaml tag; if it has a `Validate() error` method, Validate calls it and
// prefixes its errors with the section key). Loading, env overrides and
// validation find them by reflection; nothing else needs to change.
type Config struct {
	// Listen is the public address: WHIP, pages, origin. Default
	// 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// PublicURL is the base of every URL the node hands out (WHIP push
	// URL, playlists, pages): what presenters and the CDN reach. Default
	// http://<listen> (with the real port when listen's port is 0).
	PublicURL string `yaml:"public_url"`
	// DataDir holds the database (mode 0700). Default ./data.
	DataDir string `yaml:"data_dir"`
	// ShutdownTimeout bounds a graceful stop (SIGTERM/SIGINT). Default 4s;
	// at most 5s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Log configures the structured log on stderr.
	Log LogConfig `yaml:"log"`
	// API configures the management API (streams) and /metrics.
	API APIConfig `yaml:"api"`
	// TLS turns the HTTP listeners (public and API) into HTTPS with
	// HTTP/2. Default: none (plain HTTP and h2c; TLS ends at a proxy or
	// the CDN).
	TLS TLSConfig `yaml:"tls"`

	// Ingest is WHIP ingest (UDP/TCP media ports, limits, keyframe policy).
	Ingest ingest.Config `yaml:"ingest"`
	// Origin is what the CDN pulls: CMAF packager and LL-HLS keys at its
	// top (parts, segments, window), LL-DASH, HLS-TS and the player page in
	// its sub-sections.
	Origin OriginSection `yaml:"origin"`
	// TURN is the embedded STUN/TURN server. In dev (listen on loopback)
	// its listeners default to 127.0.0.1.
	TURN turn.Config `yaml:"turn"`
	// Encoders is the transcoder: plugin choice and ABR ladder.
	Encoders hwenc.Config `yaml:"encoders"`
}

// OriginSection is the `origin` section.
type OriginSection struct {
	origin.Config `yaml:",inline"`
	// DASH is LL-DASH over the same CMAF segments (origin.dash).
	DASH dash.Config `yaml:"dash"`
	// HLSTS is legacy HLS with MPEG-TS segments (origin.hls_ts).
	HLSTS ts.Config `yaml:"hls_ts"`
	// Player is the /player/{id} page (origin.player).
	Player player.Config `yaml:"player"`
}

// Validate checks the packager keys and each sub-section, naming the
// sub-section in front of its keys.
func (o OriginSection) Validate() error {
	var errs []error
	if err := o.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, sub := range []struct {
		key string
		v   interface{ Validate() error }
	}{{"dash", o.DASH}, {"hls_ts", o.HLSTS}, {"player", o.Player}} {
		if err := sub.v.Validate(); err != nil {
			errs = append(errs, &SectionError{Section: sub.key, Err: err})
		}
	}
	return errors.Join(errs...)
}

// LogConfig is the `log` section.
type LogConfig struct {
	// Level: debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format: text or json. Default text.
	Format string `yaml:"format"`
}

// APIConfig is the `api` section.
type APIConfig struct {
	// Listen is the address of the management API and /metrics. Default ""
	// = served on the public listener. Set it (e.g. 127.0.0.1:9090 or a
	// management VLAN address) to keep the API off the public address.
	Listen string `yaml:"listen"`
	// Token authenticates API calls (EDGENODE_API_TOKEN). Default: one is
	// generated on first boot and kept in the database.
	Token string `yaml:"token"`
	// MaxBodyBytes caps request bodies, in bytes. Default 65536.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Validate checks the `log` section.
func (c LogConfig) Validate() error {
	var errs []error
	if _, err := parseLevel(c.Level); err != nil {
		errs = append(errs, err)
	}
	switch c.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("'format' must be text or json, not %q", c.Format))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("'level' must be debug, info, warn or error, not %q", s)
}

// Validate checks the `api` section.
func (c APIConfig) Validate() error {
	var errs []error
	if c.Listen != "" {
		if err := checkHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("'listen' %w", err))
		}
	}
	if strings.ContainsFunc(c.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		errs = append(errs, errors.New("'token' must not contain spaces or control characters"))
	}
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > 64<<20 {
		errs = append(errs, errors.New("'max_body_bytes' must be 0..67108864"))
	}
	return errors.Join(errs...)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port (%q)", s)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("has an invalid host %q", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("must have a port 0..65535 (%q)", s)
	}
	return nil
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

func validHostname(h string) bool { return len(h) <= 253 && hostnameRE.MatchString(h) }

// Validate checks the top-level keys, then every section that has a
// Validate method, naming the offending key in each error. It has no side
// effects. Several problems are joined into one error, one per line.
func (c Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if err := checkHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("'listen' %w", err))
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("'public_url' must be an absolute http(s) URL without query, not %q", c.PublicURL))
		}
	}
	if c.ShutdownTimeout < 0 || c.ShutdownTimeout > 5*time.Second {
		errs = append(errs, fmt.Errorf("'shutdown_timeout' must be 0..5s, not %s", c.ShutdownTimeout))
	}
	errs = append(errs, validateSections(reflect.ValueOf(c), "")...)
	return errors.Join(errs...)
}

var validatorType = reflect.TypeFor[interface{ Validate() error }]()

// validateSections calls Validate on every struct field of v that has it
// (not recursing further: a section validates its own subsections) and
// recurses into struct fields that do not.
func validateSections(v reflect.Value, prefix string) []error {
	var errs []error
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		fv := v.Field(i)
		if isInline(f) {
			// Its keys are the parent's, and so is its Validate (promoted).
			continue
		}
		key := yamlKey(f)
		if key == "" || f.Type.Kind() != reflect.Struct || f.Type == reflect.TypeFor[time.Time]() {
			continue
		}
		if f.Type.Implements(validatorType) {
			if err := fv.Interface().(interface{ Validate() error }).Validate(); err != nil {
				errs = append(errs, &SectionError{Section: prefix + key, Err: err})
			}
			continue
		}
		errs = append(errs, validateSections(fv, prefix+key+".")...)
	}
	return errs
}

// SectionError is a section's Validate error with the section key in front
// of the first quoted key the section named: "'udp_port' must be …" from
// section ingest reads "'ingest.udp_port' must be …", and "player: invalid
// config: 'default_format' …" from origin.player reads "player: invalid
// config: 'origin.player.default_format' …". A line naming no key gets the
// section in front: "ingest: …".
type SectionError struct {
	Section string
	Err     error
}

// quotedKeyRE finds the key a section's message names ('udp_port').
var quotedKeyRE = regexp.MustCompile(`'[A-Za-z0-9_][A-Za-z0-9_.]*'`)

func (e *SectionError) Error() string {
	lines := strings.Split(e.Err.Error(), "\n")
	for i, l := range lines {
		if loc := quotedKeyRE.FindStringIndex(l); loc != nil {
			lines[i] = l[:loc[0]+1] + e.Section + "." + l[loc[0]+1:]
		} else {
			lines[i] = e.Section + ": " + l
		}
	}
	return strings.Join(lines, "\n")
}

func (e *SectionError) Unwrap() error { return e.Err }

// isInline reports a struct field whose keys sit at its parent's level
// (`yaml:",inline"`).
func isInline(f reflect.StructField) bool {
	_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return (f.IsExported() || f.Anonymous) && f.Type.Kind() == reflect.Struct && strings.Contains(","+opts+",", ",inline,")
}

// yamlKey is the YAML key of a struct field, "" if it has none.
func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || name == "" {
		return ""
	}
	return name
}

// LoadOptions say where Load takes values from, in order of precedence
// (lowest first): defaults (zero values), File, Env, Override.
type LoadOptions struct {
	// File is a YAML config file; "" = none.
	File string
	// Env is the environment as os.Environ returns it; nil = none.
	Env []string
	// Override applies command-line flags last.
	Override func(*Config)
}

// Load reads the configuration: defaults → YAML file (strict: an unknown key
// is an error naming it and its line) → EDGENODE_… environment → flags →
// Validate.
func Load(opts LoadOptions) (Config, error) {
	var c Config
	if opts.File != "" {
		b, err := os.ReadFile(opts.File)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := decodeYAML(b, &c); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", opts.File, err)
		}
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), opts.Env); err != nil {
		return Config{}, err
	}
	if opts.Override != nil {
		opts.Override(&c)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// yaml.v3 reports problems as "line 3: field listne not found in type
// node.Config" or "line 1: cannot unmarshal !!str `soon` into
// time.Duration"; we rewrite them to name the full key.
var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type \S+$`)
	lineRE         = regexp.MustCompile(`^line (\d+): (.*)$`)
)

func decodeYAML(b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(c)
	if errors.Is(err, io.EOF) {
		return nil // empty file: all defaults
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		keys := keysByLine(b)
		msgs := make([]string, 0, len(te.Errors))
		for _, m := range te.Errors {
			if g := unknownFieldRE.FindStringSubmatch(m); g != nil {
				key := g[2]
				if p := keys[g[1]]; p != "" {
					key = p
				}
				m = fmt.Sprintf("line %s: field '%s' not found (unknown key)", g[1], key)
			} else if g := lineRE.FindStringSubmatch(m); g != nil && keys[g[1]] != "" {
				m = fmt.Sprintf("line %s: '%s': %s", g[1], keys[g[1]], g[2])
			}
			msgs = append(msgs, m)
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	if err != nil {
		return err
	}
	// A second document would be silently ignored: refuse it.
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

// keysByLine maps a line number (as yaml.v3 prints it) to the dotted path
// of the mapping key on that line, or of the key whose value starts there.
func keysByLine(b []byte) map[string]string {
	out := map[string]string{}
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil {
		return out
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				path := prefix + k.Value
				out[strconv.Itoa(k.Line)] = path
				if l := strconv.Itoa(v.Line); out[l] == "" {
					out[l] = path
				}
				walk(v, path+".")
			}
		}
	}
	walk(&root, "")
	return out
}

// EnvName is the environment variable overriding the config key path
// ("api.listen" → "EDGENODE_API_LISTEN").
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// EnvKeys lists every overridable key path and its variable.
func EnvKeys() map[string]string {
	out := map[string]string{}
	walkLeaves(reflect.TypeFor[Config](), "", func(path string, _ []int) { out[path] = EnvName(path) })
	return out
}

// UnknownEnv returns the EDGENODE_… variables in env that match no key
// (probably misspelt), for a warning.
func UnknownEnv(env []string) []string {
	known := map[string]bool{EnvPrefix + "CONFIG": true}
	for _, v := range EnvKeys() {
		known[v] = true
	}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix) && !known[k] {
			out = append(out, k)
		}
	}
	return out
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

func isLeaf(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshalerType) || t == reflect.TypeFor[time.Duration]() {
		return true
	}
	switch t.Kind() {
	case reflect.Pointer: // *bool, *int, ...: "unset" distinct from zero
		return t.Elem().Kind() != reflect.Pointer && isLeaf(t.Elem())
	case reflect.Struct, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan:
		return false
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return true
}

func walkLeaves(t reflect.Type, prefix string, fn func(path string, index []int)) {
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int(nil), index...), i)
			if isInline(f) {
				walk(f.Type, prefix, idx)
				continue
			}
			k := yamlKey(f)
			if k == "" {
				continue
			}
			switch {
			case isLeaf(f.Type):
				fn(prefix+k, idx)
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, prefix+k+".", idx)
			}
		}
	}
	walk(t, prefix, nil)
}

// applyEnv sets every leaf key whose EDGENODE_… variable is in env.
func applyEnv(v reflect.Value, env []string) error {
	vals := map[string]string{}
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			vals[k] = val
		}
	}
	var errs []error
	walkLeaves(v.Type(), "", func(path string, index []int) {
		name := EnvName(path)
		s, ok := vals[name]
		if !ok {
			return
		}
		if err := setFromString(v.FieldByIndex(index), s); err != nil {
			errs = append(errs, fmt.Errorf("config: %s: '%s' %w", name, path, err))
		}
	})
	return errors.Join(errs...)
}

func setFromString(f reflect.Value, s string) error {
	if f.Kind() == reflect.Pointer && !f.Type().Implements(textUnmarshalerType) {
		p := reflect.New(f.Type().Elem())
		if err := setFromString(p.Elem(), s); err != nil {
			return err
		}
		f.Set(p)
		return nil
	}
	if tu, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := tu.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("is invalid: %w", err)
		}
		return nil
	}
	if f.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("must be a duration like 5s or 250ms, not %q", s)
		}
		f.SetInt(int64(d))
		return nil
	}
	s2 := strings.TrimSpace(s)
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s2)
		if err != nil {
			return fmt.Errorf("must be true or false, not %q", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s2, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be an integer, not %q", s)
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s2, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be a non-negative integer, not %q", s)
		}
		f.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s2, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be a number, not %q", s)
		}
		f.SetFloat(n)
	case reflect.Slice: // []string, comma-separated
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		sl := reflect.MakeSlice(f.Type(), len(parts), len(parts))
		for i, p := range parts {
			sl.Index(i).SetString(p)
		}
		f.Set(sl)
	default:
		return fmt.Errorf("cannot be set from the environment (type %s)", f.Type())
	}
	return nil
}

// withDefaults fills zero values with the dev defaults (public_url stays
// empty: it depends on the bound address).
func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}
