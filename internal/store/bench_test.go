package store_test

import (
	"fmt"
	"testing"

	"github.com/edgenode/edgenode/internal/store"
)

// BenchmarkStreamLookup is the per-publish cost (ingest checks the key and
// active flag of the stream on every WHIP POST), among 1000 streams.
// Compare with BenchmarkCreateStreamNoSync/Sync: a read is a read-only
// transaction, a write is one commit (plus one fsync when durable).
func BenchmarkStreamLookup(b *testing.B) {
	s, err := store.Open(b.TempDir(), store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 1000 {
		if _, err := s.CreateStream(fmt.Sprint("s", i), true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i = i%1000 + 1
		if _, err := s.Stream(i); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkCreate(b *testing.B, noSync bool) {
	s, err := store.Open(b.TempDir(), store.Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.CreateStream(fmt.Sprint("s", i), true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateStreamSync is what the API pays: one fsync per commit.
func BenchmarkCreateStreamSync(b *testing.B) { benchmarkCreate(b, false) }

// BenchmarkCreateStreamNoSync is the same commit without fsync: the
// difference is the cost of durability on this disk.
func BenchmarkCreateStreamNoSync(b *testing.B) { benchmarkCreate(b, true) }
