package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // TURN REST draft: HMAC-SHA1 is the wire format
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	pturn "github.com/pion/turn/v4"
)

// Secrets is the node's secret store; internal/store.Store implements it.
type Secrets interface {
	// Secret returns the value stored under name; when there is none it
	// calls gen, stores its result (never empty) and returns it with
	// created true.
	Secret(name string, gen func() ([]byte, error)) (value []byte, created bool, err error)
	// PutSecret replaces the value stored under name.
	PutSecret(name string, v []byte) error
}

// Names under which the TURN secrets are kept in Secrets.
const (
	SecretName     = "turn.secret"
	PrevSecretName = "turn.secret.prev" // 8-byte big-endian end of grace (unix ns) + secret; 8 zero bytes: none
)

const secretLen = 32

func newSecret() ([]byte, error) {
	b := make([]byte, secretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// keyring holds the current node secret and, during the grace period after
// a rotation, the previous one.
type keyring struct {
	store Secrets
	grace time.Duration

	mu        sync.RWMutex
	cur       []byte
	prev      []byte
	prevUntil time.Time
}

func loadKeyring(store Secrets, grace time.Duration) (k *keyring, created bool, err error) {
	cur, created, err := store.Secret(SecretName, newSecret)
	if err != nil {
		return nil, false, fmt.Errorf("%w: load %s: %w", ErrSecrets, SecretName, err)
	}
	if len(cur) < 16 {
		return nil, false, fmt.Errorf("%w: %s is %d bytes, want >= 16", ErrSecrets, SecretName, len(cur))
	}
	k = &keyring{store: store, grace: grace, cur: cur}
	prev, _, err := store.Secret(PrevSecretName, func() ([]byte, error) { return make([]byte, 8), nil })
	if err != nil {
		return nil, false, fmt.Errorf("%w: load %s: %w", ErrSecrets, PrevSecretName, err)
	}
	if len(prev) > 8 {
		k.prevUntil = time.Unix(0, int64(binary.BigEndian.Uint64(prev[:8])))
		k.prev = prev[8:]
	}
	return k, created, nil
}

// rotate makes a fresh secret current; the old one keeps working for the
// grace period. The previous secret is stored first so that a crash between
// the two writes never loses the secret credentials in flight were signed with.
func (k *keyring) rotate(now time.Time) error {
	next, err := newSecret()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSecrets, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	until := now.Add(k.grace)
	rec := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(k.cur)), uint64(until.UnixNano()))
	rec = append(rec, k.cur...)
	if err := k.store.PutSecret(PrevSecretName, rec); err != nil {
		return fmt.Errorf("%w: store %s: %w", ErrSecrets, PrevSecretName, err)
	}
	if err := k.store.PutSecret(SecretName, next); err != nil {
		return fmt.Errorf("%w: store %s: %w", ErrSecrets, SecretName, err)
	}
	k.prev, k.prevUntil, k.cur = k.cur, until, next
	return nil
}

// secrets returns the secrets a credential may be signed with now, current first.
func (k *keyring) secrets(now time.Time) [][]byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.prev != nil && now.Before(k.prevUntil) {
		return [][]byte{k.cur, k.prev}
	}
	return [][]byte{k.cur}
}

// Password returns the TURN REST password for username under secret:
// base64(HMAC-SHA1(secret, username)) (SPECS.md § TURN; TURN REST draft §2.2).
func Password(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Username formats a TURN REST username "expiry:streamid".
func Username(expiry time.Time, streamID uint64) string {
	return strconv.FormatInt(expiry.Unix(), 10) + ":" + strconv.FormatUint(streamID, 10)
}

// ParseUsername splits a TURN REST username "expiry:user" and checks that
// the expiry lies after now and no further than maxTTL ahead (the REST
// draft leaves the cap to the server; pion's handler has none).
func ParseUsername(username string, now time.Time, maxTTL time.Duration) (expiry time.Time, user string, err error) {
	ts, user, ok := strings.Cut(username, ":")
	if !ok || user == "" || ts == "" || len(ts) > 19 {
		return time.Time{}, "", fmt.Errorf("%w: username %q is not expiry:user", ErrBadCredential, username)
	}
	sec, perr := strconv.ParseInt(ts, 10, 64)
	if perr != nil || sec <= 0 {
		return time.Time{}, "", fmt.Errorf("%w: username %q: bad expiry", ErrBadCredential, username)
	}
	expiry = time.Unix(sec, 0)
	switch {
	case !expiry.After(now):
		return expiry, user, fmt.Errorf("%w: username %q expired at %s", ErrBadCredential, username, expiry.UTC().Format(time.RFC3339))
	case expiry.Sub(now) > maxTTL:
		return expiry, user, fmt.Errorf("%w: username %q expires %s ahead, cap is %s", ErrBadCredential, username, expiry.Sub(now).Round(time.Second), maxTTL)
	}
	return expiry, user, nil
}

// longTermKey is the RFC 8489 §9.2.2 key MD5(username:realm:password).
func longTermKey(username, realm string, secret []byte) []byte {
	return pturn.GenerateAuthKey(username, realm, Password(secret, username))
}
