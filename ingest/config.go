package ingest

import (
	"fmt"
	"net"
	"time"
)

// Config is the `ingest` section of the node's configuration. The zero
// value of every field means its documented default.
type Config struct {
	// UDPPort is the single UDP port that carries the media of every
	// session (ICE UDP mux). Default 8189; -1 picks an ephemeral port
	// (tests), see Server.UDPAddr.
	UDPPort int `yaml:"udp_port"`
	// TCPPort is the ICE-TCP passive port. Default 8189; -1 picks an
	// ephemeral port; see Server.TCPAddr.
	TCPPort int `yaml:"tcp_port"`
	// UDPReadBuffer is the socket receive buffer of the UDP mux, in bytes.
	// Default 4 MiB (50 publishers at 1 Mbit/s overflow Linux's 208 KiB
	// default). The kernel caps it at net.core.rmem_max.
	UDPReadBuffer int `yaml:"udp_read_buffer"`
	// DisableTCP turns ICE-TCP candidates off. Default false (offered).
	DisableTCP bool `yaml:"disable_tcp"`
	// NAT1To1IPs are public addresses announced as host candidates instead
	// of the local ones (a node behind 1:1 NAT). Default none.
	NAT1To1IPs []string `yaml:"nat_1to1_ips"`
	// Interfaces limits candidates to these network interface names.
	// Default: every interface.
	Interfaces []string `yaml:"interfaces"`
	// IncludeLoopback also gathers loopback candidates (needed for a
	// browser or encoder on the same machine). Default true.
	IncludeLoopback *bool `yaml:"include_loopback"`
	// MaxSessions caps concurrent publisher sessions; above it POST gets
	// 503 with Retry-After. Default 100.
	MaxSessions int `yaml:"max_sessions"`
	// StaleTimeout is how long a publisher that vanished (ICE consent
	// lost) keeps its stream before the stream is freed. Default 5s.
	StaleTimeout time.Duration `yaml:"stale_timeout"`
	// PLIInterval is how often a keyframe is requested with RTCP PLI
	// (the segment cadence). Default 1s; negative disables the timer
	// (PLIs on loss are still sent).
	PLIInterval time.Duration `yaml:"pli_interval"`
	// StartKeyframe: this long after a session's first keyframe another is
	// requested, so that the origin can close a short first segment and
	// players (hls.js waits for one complete segment) start sooner; the
	// PLI timer restarts from it. Default 350ms (Chromium ignores a PLI
	// that comes within 300 ms of the one before: the start PLI); negative
	// disables.
	StartKeyframe time.Duration `yaml:"start_keyframe"`
	// PostRate is how many WHIP requests per second one client address
	// may make (token bucket); above it: 429. Default 5 per second.
	PostRate float64 `yaml:"post_rate"`
	// PostBurst is the bucket size of PostRate. Default 20 requests.
	PostBurst int `yaml:"post_burst"`
	// StartBitrateKbps is put in the answer as x-google-start-bitrate so
	// Chromium starts near its target resolution. Default 2500 kbit/s.
	StartBitrateKbps int `yaml:"start_bitrate_kbps"`
	// ReorderPackets is the size of the RTP reorder buffer, in packets.
	// Default 128.
	ReorderPackets int `yaml:"reorder_packets"`
	// ICEServers are the STUN URLs announced to publishers in
	// `Link: rel="ice-server"` headers when no TURN provider is wired
	// (Deps.ICEServers nil). Default none.
	ICEServers []string `yaml:"ice_servers"`
	// PublicURL is the scheme://host[:port] prefix used for Location
	// headers. Default: relative Location.
	PublicURL string `yaml:"public_url"`
}

// Defaults.
const (
	DefaultPort             = 8189
	DefaultMaxSessions      = 100
	DefaultStaleTimeout     = 5 * time.Second
	DefaultPLIInterval      = time.Second
	DefaultStartKeyframe    = 350 * time.Millisecond
	DefaultPostRate         = 5
	DefaultPostBurst        = 20
	DefaultStartBitrateKbps = 2500
	DefaultReorderPackets   = 128
	DefaultUDPReadBuffer    = 4 << 20
)

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.UDPPort == 0 {
		c.UDPPort = DefaultPort
	}
	if c.TCPPort == 0 {
		c.TCPPort = DefaultPort
	}
	if c.IncludeLoopback == nil {
		t := true
		c.IncludeLoopback = &t
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.StaleTimeout == 0 {
		c.StaleTimeout = DefaultStaleTimeout
	}
	if c.PLIInterval == 0 {
		c.PLIInterval = DefaultPLIInterval
	}
	if c.StartKeyframe == 0 {
		c.StartKeyframe = DefaultStartKeyframe
	}
	if c.PostRate == 0 {
		c.PostRate = DefaultPostRate
	}
	if c.PostBurst == 0 {
		c.PostBurst = DefaultPostBurst
	}
	if c.StartBitrateKbps == 0 {
		c.StartBitrateKbps = DefaultStartBitrateKbps
	}
	if c.UDPReadBuffer == 0 {
		c.UDPReadBuffer = DefaultUDPReadBuffer
	}
	if c.ReorderPackets == 0 {
		c.ReorderPackets = DefaultReorderPackets
	}
	return c
}

// Validate checks c without side effects. Errors name the key relative to
// the ingest section.
func (c Config) Validate() error {
	for _, p := range []struct {
		key string
		v   int
	}{{"udp_port", c.UDPPort}, {"tcp_port", c.TCPPort}} {
		if p.v < -1 || p.v > 65535 {
			return fmt.Errorf("%w: '%s' must be 1..65535 (0 = default %d, -1 = ephemeral)", ErrConfig, p.key, DefaultPort)
		}
	}
	if c.UDPReadBuffer < 0 || c.UDPReadBuffer > 1<<30 {
		return fmt.Errorf("%w: 'udp_read_buffer' must be 0..1073741824 bytes", ErrConfig)
	}
	for _, ip := range c.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("%w: 'nat_1to1_ips' entry %q is not an IP address", ErrConfig, ip)
		}
	}
	for _, name := range c.Interfaces {
		if name == "" {
			return fmt.Errorf("%w: 'interfaces' entries must not be empty", ErrConfig)
		}
	}
	if c.MaxSessions < 0 {
		return fmt.Errorf("%w: 'max_sessions' must be >= 0", ErrConfig)
	}
	if c.StaleTimeout < 0 {
		return fmt.Errorf("%w: 'stale_timeout' must be >= 0", ErrConfig)
	}
	if c.StaleTimeout > 0 && c.StaleTimeout < 500*time.Millisecond {
		return fmt.Errorf("%w: 'stale_timeout' must be at least 500ms", ErrConfig)
	}
	if c.PostRate < 0 {
		return fmt.Errorf("%w: 'post_rate' must be >= 0", ErrConfig)
	}
	if c.PostBurst < 0 {
		return fmt.Errorf("%w: 'post_burst' must be >= 0", ErrConfig)
	}
	if c.StartBitrateKbps < 0 || c.StartBitrateKbps > 100000 {
		return fmt.Errorf("%w: 'start_bitrate_kbps' must be 0..100000", ErrConfig)
	}
	if c.ReorderPackets < 0 || c.ReorderPackets > 4096 {
		return fmt.Errorf("%w: 'reorder_packets' must be 0..4096", ErrConfig)
	}
	for _, u := range c.ICEServers {
		if !hasPrefixAny(u, "stun:", "stuns:", "turn:", "turns:") {
			return fmt.Errorf("%w: 'ice_servers' entry %q must be a stun:/turn: URL", ErrConfig, u)
		}
	}
	return nil
}

func hasPrefixAny(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if len(s) >= len(p) && s[:len(p)] == p {
			return true
		}
	}
	return false
}
