// Package store keeps the node's durable metadata in a bbolt database: the
// streams (id, name, active flag, secret stream key, times), node secrets and
// a small key/value area per component (the origin's counters, TURN's
// secrets). It is the only package of the node that imports bbolt.
//
// bbolt holds metadata only, never media: every write is one transaction and
// one fsync, so a stream that CreateStream returned survives a power loss.
//
// The database lives in <data dir>/edgenode.db; Open creates the data dir with
// mode 0700 and the file with 0600. bbolt takes an exclusive flock on the
// file, so a second node on the same data dir fails with ErrLocked after
// Options.Timeout instead of waiting forever.
package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/edgenode/edgenode/internal/media"
)

// FileName is the database file inside the data dir.
const FileName = "edgenode.db"

// SchemaVersion is the layout this binary writes. Bump it together with a
// new entry in migrations.
const SchemaVersion = 1

// MaxNameLen is the longest stream name accepted, in bytes.
const MaxNameLen = 255

// Buckets. Stream records are JSON under their id as 8 big-endian bytes, so
// that cursor order is id order; names maps name → id for uniqueness.
var (
	bucketMeta    = []byte("meta")
	bucketStreams = []byte("streams")
	bucketNames   = []byte("stream_names")
	bucketSecrets = []byte("secrets")
	bucketState   = []byte("state")

	keySchema = []byte("schema_version")
)

// migrations[i] upgrades a database at schema version i to version i+1,
// inside the transaction that then records the new version. Version 0 is a
// fresh file. Append an entry (never edit a shipped one) when the layout
// changes, and bump SchemaVersion.
var migrations = []func(tx *bolt.Tx) error{
	0: func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketStreams, bucketNames, bucketSecrets, bucketState} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
}

// Options tune Open. The zero value is usable.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another
	// process before failing with ErrLocked. Default 1 s.
	Timeout time.Duration
	// NoSync skips fsync after each commit. Tests only: a crash loses data.
	NoSync bool
}

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
}

// Stream is one stream as stored.
type Stream struct {
	// ID comes from the streams bucket's sequence: 1, 2, 3, ... never reused.
	ID     uint64 `json:"id"`
	Name   string `json:"name"`
	Active bool   `json:"active"`
	// Key is the secret stream key a publisher presents (32 lowercase hex
	// digits from crypto/rand, so it never contains '_' or '/').
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Ladder is reserved for a per-stream ladder override; nil means the
	// node's default ladder.
	Ladder []media.Rendition `json:"ladder,omitempty"`
}

// Open opens (creating if needed) the database in dataDir.
func Open(dataDir string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if dataDir == "" {
		return nil, fmt.Errorf("%w: empty data dir", ErrInvalid)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	// MkdirAll keeps the mode of an existing dir: tighten it to 0700, but
	// never a shared dir such as /tmp (world-writable or sticky), which is
	// a mistake to refuse rather than a dir to take over.
	fi, err := os.Stat(dataDir)
	if err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: data dir %s is not a directory", ErrInvalid, dataDir)
	}
	if fi.Mode().Perm()&0o002 != 0 || fi.Mode()&os.ModeSticky != 0 {
		return nil, fmt.Errorf("%w: data dir %s is a shared directory (mode %s); use a directory of its own", ErrInvalid, dataDir, fi.Mode())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: data dir: %w", err)
		}
	}
	path := filepath.Join(dataDir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("data dir %s is in use by another edgenode (%w)", dataDir, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{db: db, path: path}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close releases the database and its lock.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		v := 0
		if b := meta.Get(keySchema); b != nil {
			if len(b) != 8 {
				return fmt.Errorf("store: corrupt schema version")
			}
			v = int(binary.BigEndian.Uint64(b))
		}
		if v > SchemaVersion {
			return fmt.Errorf("%w: database has %d, this binary knows %d", ErrSchemaTooNew, v, SchemaVersion)
		}
		for ; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("store: migrate schema %d→%d: %w", v, v+1, err)
			}
		}
		return meta.Put(keySchema, u64(uint64(SchemaVersion)))
	})
}

// Version is the schema version recorded in the database.
func (s *Store) Version() (int, error) {
	var v int
	err := s.view(func(tx *bolt.Tx) error {
		v = int(binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keySchema)))
		return nil
	})
	return v, err
}

// Check walks the whole database and reports the first inconsistency bbolt
// finds (tests call it on cleanup).
func (s *Store) Check() error {
	return s.view(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

func (s *Store) view(fn func(*bolt.Tx) error) error   { return wrapClosed(s.db.View(fn)) }
func (s *Store) update(fn func(*bolt.Tx) error) error { return wrapClosed(s.db.Update(fn)) }

func wrapClosed(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// NewStreamKey returns a fresh secret stream key: 128 bits from crypto/rand
// as 32 lowercase hex digits.
func NewStreamKey() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("store: stream key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ValidateName checks a stream name: 1..MaxNameLen bytes of UTF-8 without
// control characters. The error wraps ErrInvalid.
func ValidateName(name string) error {
	if p := NameProblem(name); p != "" {
		return fmt.Errorf("%w: name %s", ErrInvalid, p)
	}
	return nil
}

// NameProblem says what is wrong with a stream name ("must not be empty"),
// or "" when it is acceptable; callers put their own subject in front.
func NameProblem(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "must not be empty"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("must be at most %d bytes", MaxNameLen)
	case !utf8.ValidString(name):
		return "must be valid UTF-8"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "must not contain control characters"
	}
	return ""
}

// CreateStream stores a new active stream with a fresh key.
func (s *Store) CreateStream(name string, active bool) (Stream, error) {
	if err := ValidateName(name); err != nil {
		return Stream{}, err
	}
	key, err := NewStreamKey()
	if err != nil {
		return Stream{}, err
	}
	var st Stream
	err = s.update(func(tx *bolt.Tx) error {
		names := tx.Bucket(bucketNames)
		if names.Get([]byte(name)) != nil {
			return fmt.Errorf("%w: %q", ErrNameTaken, name)
		}
		b := tx.Bucket(bucketStreams)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		st = Stream{ID: id, Name: name, Active: active, Key: key, CreatedAt: now, UpdatedAt: now}
		if err := names.Put([]byte(name), u64(id)); err != nil {
			return err
		}
		return putStream(b, &st)
	})
	if err != nil {
		return Stream{}, err
	}
	return st, nil
}

func putStream(b *bolt.Bucket, st *Stream) error {
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return b.Put(u64(st.ID), v)
}

func getStream(b *bolt.Bucket, id uint64) (Stream, error) {
	v := b.Get(u64(id))
	if v == nil {
		return Stream{}, fmt.Errorf("%w: stream %d", ErrNotFound, id)
	}
	var st Stream
	if err := json.Unmarshal(v, &st); err != nil {
		return Stream{}, fmt.Errorf("store: decode stream %d: %w", id, err)
	}
	return st, nil
}

// Stream returns the stream with that id, or ErrNotFound.
func (s *Store) Stream(id uint64) (Stream, error) {
	var st Stream
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		st, err = getStream(tx.Bucket(bucketStreams), id)
		return err
	})
	return st, err
}

// ListStreams returns up to limit streams with id > afterID in id order, and
// whether more follow.
func (s *Store) ListStreams(afterID uint64, limit int) ([]Stream, bool, error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("%w: limit must be positive", ErrInvalid)
	}
	out := []Stream{}
	more := false
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketStreams).Cursor()
		start := u64(afterID)
		k, v := c.Seek(start)
		if k != nil && bytes.Equal(k, start) {
			k, v = c.Next()
		}
		for ; k != nil; k, v = c.Next() {
			if len(out) == limit {
				more = true
				return nil
			}
			var st Stream
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("store: decode stream %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, st)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// CountStreams is the number of streams.
func (s *Store) CountStreams() (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketStreams).Stats().KeyN
		return nil
	})
	return n, err
}

// UpdateStream applies fn to the stream in one transaction and stores the
// result (with UpdatedAt set) unless fn returns an error, which UpdateStream
// then returns unchanged. fn must not change ID or CreatedAt.
func (s *Store) UpdateStream(id uint64, fn func(*Stream) error) (Stream, error) {
	var st Stream
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStreams)
		old, err := getStream(b, id)
		if err != nil {
			return err
		}
		st = old
		st.Ladder = append([]media.Rendition(nil), old.Ladder...)
		if err := fn(&st); err != nil {
			return err
		}
		st.ID, st.CreatedAt = old.ID, old.CreatedAt
		if st.Name != old.Name {
			if err := ValidateName(st.Name); err != nil {
				return err
			}
			names := tx.Bucket(bucketNames)
			if names.Get([]byte(st.Name)) != nil {
				return fmt.Errorf("%w: %q", ErrNameTaken, st.Name)
			}
			if err := names.Delete([]byte(old.Name)); err != nil {
				return err
			}
			if err := names.Put([]byte(st.Name), u64(id)); err != nil {
				return err
			}
		}
		if st.Key == "" {
			return fmt.Errorf("%w: empty stream key", ErrInvalid)
		}
		st.UpdatedAt = time.Now().UTC()
		return putStream(b, &st)
	})
	if err != nil {
		return Stream{}, err
	}
	return st, nil
}

// DeleteStream removes the stream, or returns ErrNotFound.
func (s *Store) DeleteStream(id uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStreams)
		st, err := getStream(b, id)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketNames).Delete([]byte(st.Name)); err != nil {
			return err
		}
		return b.Delete(u64(id))
	})
}

// Secret returns the node secret called name, creating it with gen (in the
// same transaction, so two callers never see different values) when it does
// not exist yet. created reports whether gen was used.
func (s *Store) Secret(name string, gen func() ([]byte, error)) (value []byte, created bool, err error) {
	if name == "" {
		return nil, false, fmt.Errorf("%w: empty secret name", ErrInvalid)
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		if v := b.Get([]byte(name)); v != nil {
			value = bytes.Clone(v)
			return nil
		}
		v, err := gen()
		if err != nil {
			return err
		}
		if len(v) == 0 {
			return fmt.Errorf("%w: generated secret %q is empty", ErrInvalid, name)
		}
		value, created = bytes.Clone(v), true
		return b.Put([]byte(name), v)
	})
	if err != nil {
		return nil, false, err
	}
	return value, created, nil
}

// PutSecret stores (replaces) the node secret called name.
func (s *Store) PutSecret(name string, value []byte) error {
	if name == "" || len(value) == 0 {
		return fmt.Errorf("%w: secret name and value must not be empty", ErrInvalid)
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSecrets).Put([]byte(name), value)
	})
}

// GetState returns the value a component stored under key, or (nil, nil)
// when there is none: the components' State contract (cmaf.State,
// ts.State), where only a missing key means "never numbered" and any
// error is a read that failed.
func (s *Store) GetState(component, key string) ([]byte, error) {
	if component == "" || key == "" {
		return nil, fmt.Errorf("%w: state component and key must not be empty", ErrInvalid)
	}
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketState).Bucket([]byte(component)); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				out = bytes.Clone(v)
			}
		}
		return nil
	})
	return out, err
}

// PutState stores value under (component, key). A nil value deletes it.
func (s *Store) PutState(component, key string, value []byte) error {
	if component == "" || key == "" {
		return fmt.Errorf("%w: state component and key must not be empty", ErrInvalid)
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketState).CreateBucketIfNotExists([]byte(component))
		if err != nil {
			return err
		}
		if value == nil {
			return b.Delete([]byte(key))
		}
		return b.Put([]byte(key), value)
	})
}
