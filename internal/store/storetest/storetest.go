// Package storetest opens throw-away stores for tests of packages that
// persist state through internal/store.
package storetest

import (
	"testing"

	"github.com/edgenode/edgenode/internal/store"
)

// Open opens a store in a fresh temporary data dir. On cleanup it checks the
// database's consistency (bbolt's tx.Check) and closes it; a failed check
// fails the test.
func Open(tb testing.TB) *store.Store {
	tb.Helper()
	s, err := store.Open(tb.TempDir(), store.Options{NoSync: true})
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Check(); err != nil {
			tb.Errorf("storetest: consistency check: %v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("storetest: close: %v", err)
		}
	})
	return s
}
