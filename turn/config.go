package turn

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Defaults applied by Config.withDefaults to zero-valued fields.
const (
	DefaultRealm         = "edgenode"
	DefaultUDPListen     = "0.0.0.0:3478"
	DefaultTCPListen     = "0.0.0.0:3478"
	DefaultTLSListen     = "0.0.0.0:5349"
	DefaultRelayBind     = "0.0.0.0"
	DefaultCredentialTTL = 12 * time.Hour
	DefaultMaxTTL        = 24 * time.Hour
	DefaultUserQuota     = 10
	DefaultTotalQuota    = 1000
	DefaultMaxLifetime   = 24 * time.Hour
	DefaultBandwidthCap  = 5_000_000 // bytes/s, 40 Mbit/s
	DefaultAllocRate     = 5.0
	DefaultAllocBurst    = 30
)

// Off disables a listener when given as its address.
const Off = "off"

// Config is the `turn` section of the node configuration. The zero value
// is a valid configuration meaning "all defaults".
type Config struct {
	// Enabled turns the embedded TURN server on. Default true (nil).
	Enabled *bool `yaml:"enabled"`
	// Realm is the long-term-credential realm (RFC 8489 §9.2). Default "edgenode".
	Realm string `yaml:"realm"`

	// UDPListen is the STUN/TURN-over-UDP listen address, host:port; "off"
	// disables it. Default "0.0.0.0:3478". Port 0 picks a free port.
	UDPListen string `yaml:"udp_listen"`
	// TCPListen is the STUN/TURN-over-TCP listen address. Default "0.0.0.0:3478".
	TCPListen string `yaml:"tcp_listen"`
	// TLSListen is the STUN/TURN-over-TLS listen address. Default
	// "0.0.0.0:5349" (the appliance image sets ":443").
	TLSListen string `yaml:"tls_listen"`

	// PublicHost is the host name or IP put into the stun:/turn:/turns: URLs
	// handed to clients. Default: the UDP listener's IP when it is a specific
	// address, else the first global unicast IPv4 address of this machine,
	// else 127.0.0.1.
	PublicHost string `yaml:"public_host"`
	// RelayIP is the IP announced as XOR-RELAYED-ADDRESS. Default: PublicHost
	// when it is an IP, else derived like PublicHost.
	RelayIP string `yaml:"relay_ip"`
	// RelayBind is the local IP relay sockets are bound to. Default "0.0.0.0".
	RelayBind string `yaml:"relay_bind"`
	// RelayPortMin and RelayPortMax bound the relay ports (inclusive).
	// Default 0/0: any ephemeral port.
	RelayPortMin uint16 `yaml:"relay_port_min"`
	RelayPortMax uint16 `yaml:"relay_port_max"`

	// CertFile and KeyFile are the PEM certificate chain and key of the TLS
	// listener. Default: a self-signed certificate generated on first start
	// and kept in the data directory (turn-cert.pem, turn-key.pem).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`

	// CredentialTTL is how long credentials from ICEServers stay valid for
	// new allocations. Default 12h. An allocation made in time may keep
	// being refreshed with its credential until MaxLifetime.
	CredentialTTL time.Duration `yaml:"credential_ttl"`
	// MaxTTL caps how far in the future a credential's expiry may lie;
	// further ones are refused with 401. Default 24h.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// SecretGrace is how long the previous node secret keeps working after
	// RotateSecret. Default: MaxTTL.
	SecretGrace time.Duration `yaml:"secret_grace"`

	// AllowedPeers adds relay peers beyond the node's own media addresses:
	// each entry is a CIDR ("203.0.113.0/24", any port) or an ip:port
	// ("127.0.0.1:9000"). Special-purpose ranges stay refused unless an
	// entry lies inside them (an explicit carve-out); unspecified,
	// multicast and broadcast addresses are always refused. Default none.
	AllowedPeers []string `yaml:"allowed_peers"`

	// UserQuota is the number of simultaneous allocations per username;
	// beyond it Allocate gets 486. Default 10.
	UserQuota int `yaml:"user_quota"`
	// TotalQuota is the number of simultaneous allocations on the node;
	// beyond it Allocate gets 508. Default 1000.
	TotalQuota int `yaml:"total_quota"`
	// MaxLifetime is the age at which an allocation is torn down however
	// often it was refreshed. Default 24h.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// BandwidthCap is the relayed rate allowed per allocation and direction,
	// in bytes per second; excess datagrams are dropped. Default 5000000.
	BandwidthCap int64 `yaml:"bandwidth_cap"`
	// AllocRate is the sustained rate of authenticated Allocate requests
	// (allocation attempts, good or bad) accepted per client IP, per second;
	// AllocBurst the burst. Excess gets 486.
	// Defaults 5 and 30.
	AllocRate  float64 `yaml:"alloc_rate"`
	AllocBurst int     `yaml:"alloc_burst"`
}

// IsEnabled reports whether the TURN server should run (default true).
func (c Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

func (c Config) withDefaults() Config {
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.UDPListen == "" {
		c.UDPListen = DefaultUDPListen
	}
	if c.TCPListen == "" {
		c.TCPListen = DefaultTCPListen
	}
	if c.TLSListen == "" {
		c.TLSListen = DefaultTLSListen
	}
	if c.RelayBind == "" {
		c.RelayBind = DefaultRelayBind
	}
	if c.CredentialTTL == 0 {
		c.CredentialTTL = DefaultCredentialTTL
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.SecretGrace == 0 {
		c.SecretGrace = c.MaxTTL
	}
	if c.UserQuota == 0 {
		c.UserQuota = DefaultUserQuota
	}
	if c.TotalQuota == 0 {
		c.TotalQuota = DefaultTotalQuota
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.BandwidthCap == 0 {
		c.BandwidthCap = DefaultBandwidthCap
	}
	if c.AllocRate == 0 {
		c.AllocRate = DefaultAllocRate
	}
	if c.AllocBurst == 0 {
		c.AllocBurst = DefaultAllocBurst
	}
	return c
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
}

// Validate checks the configuration without side effects. Error messages
// name the offending key relative to the `turn` section.
func (c Config) Validate() error {
	c = c.withDefaults()
	if !c.IsEnabled() {
		return nil
	}
	listeners := 0
	for _, l := range []struct{ key, v string }{
		{"udp_listen", c.UDPListen}, {"tcp_listen", c.TCPListen}, {"tls_listen", c.TLSListen},
	} {
		if l.v == Off {
			continue
		}
		listeners++
		if err := checkHostPort(l.v); err != nil {
			return invalid("'%s' must be host:port with port 0..65535 or %q: %v", l.key, Off, err)
		}
	}
	if listeners == 0 {
		return invalid("at least one of 'udp_listen', 'tcp_listen', 'tls_listen' must be on")
	}
	if c.RelayIP != "" {
		if a, err := netip.ParseAddr(c.RelayIP); err != nil || a.IsUnspecified() || !a.Unmap().Is4() {
			return invalid("'relay_ip' must be a specific IPv4 address, got %q", c.RelayIP)
		}
	}
	if a, err := netip.ParseAddr(c.RelayBind); err != nil || !a.Unmap().Is4() {
		return invalid("'relay_bind' must be an IPv4 address, got %q", c.RelayBind)
	}
	if (c.RelayPortMin == 0) != (c.RelayPortMax == 0) || c.RelayPortMin > c.RelayPortMax {
		return invalid("'relay_port_min' and 'relay_port_max' must both be 0 or 1..65535 with min <= max")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return invalid("'cert_file' and 'key_file' must be set together")
	}
	if c.CredentialTTL < 0 || c.MaxTTL < 0 || c.SecretGrace < 0 || c.MaxLifetime < 0 {
		return invalid("'credential_ttl', 'max_ttl', 'secret_grace' and 'max_lifetime' must be positive durations")
	}
	if c.CredentialTTL > c.MaxTTL {
		return invalid("'credential_ttl' (%s) must not exceed 'max_ttl' (%s)", c.CredentialTTL, c.MaxTTL)
	}
	if _, err := parseAllowed(c.AllowedPeers); err != nil {
		return invalid("'allowed_peers': %v", err)
	}
	switch {
	case c.UserQuota < 0:
		return invalid("'user_quota' must be >= 1")
	case c.TotalQuota < 0:
		return invalid("'total_quota' must be >= 1")
	case c.BandwidthCap < 0:
		return invalid("'bandwidth_cap' must be > 0 bytes/s")
	case c.AllocRate < 0:
		return invalid("'alloc_rate' must be > 0 per second")
	case c.AllocBurst < 0:
		return invalid("'alloc_burst' must be >= 1")
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("host must be an IP address: %w", err)
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}
