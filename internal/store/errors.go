package store

import "errors"

var (
	// ErrNotFound: no stream (or secret, or state value) with that id or key.
	ErrNotFound = errors.New("store: not found")
	// ErrNameTaken: another stream already has that name (names are unique).
	ErrNameTaken = errors.New("store: stream name already taken")
	// ErrInvalid: a value the store refuses to keep (empty name, empty
	// component or key, ...). The message says which.
	ErrInvalid = errors.New("store: invalid value")
	// ErrLocked: another process holds the database (a second edgenode on
	// the same data dir).
	ErrLocked = errors.New("store: database locked")
	// ErrSchemaTooNew: the database was written by a newer edgenode whose
	// schema this binary does not know; refusing to touch it.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this edgenode")
	// ErrClosed: the store was used after Close.
	ErrClosed = errors.New("store: closed")
)
