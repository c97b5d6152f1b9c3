package turn

import "errors"

var (
	// ErrInvalidConfig wraps every error Config.Validate returns.
	ErrInvalidConfig = errors.New("turn: invalid config")

	// ErrBadCredential is returned when a TURN-REST username is malformed,
	// expired, or expires too far in the future, or names another realm.
	// On the wire it becomes 401 (RFC 8489 §9.2.4).
	ErrBadCredential = errors.New("turn: bad credential")

	// ErrIntegrity is returned when a request's MESSAGE-INTEGRITY matches
	// no node secret (wrong password or secret). On the wire it becomes 401
	// (RFC 8489 §9.2.4).
	ErrIntegrity = errors.New("turn: MESSAGE-INTEGRITY does not match any node secret")

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
