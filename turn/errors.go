package turn

import "errors"

var (
	// ErrInvalidConfig wraps every error Config.Validate returns.
	ErrInvalidConfig = errors.New("turn: invalid config")

	// ErrBadCredential is returned when a TURN-REST username/password pair is
	// malformed, wrongly signed, expired, or expires too far in the future.
	// On the wire it becomes 401 (RFC 8489 §9.2.4).
	ErrBadCredential = errors.New("turn: bad credential")

	// ErrPeerDenied is returned when a client asks to relay to a peer the
	// relay policy forbids. On the wire it becomes 403 (RFC 8656 §9.2).
	ErrPeerDenied = errors.New("turn: peer address forbidden by relay policy")

	// ErrCapacity is returned when the node-wide allocation limit is reached
	// (508 Insufficient Capacity, RFC 8656 §7.2).
	ErrCapacity = errors.New("turn: allocation capacity reached")

	// ErrNotStarted is returned by methods that need a started server.
	ErrNotStarted = errors.New("turn: server not started")

	// ErrSecrets is returned when the node secret cannot be loaded or stored.
	ErrSecrets = errors.New("turn: secret store")
)
