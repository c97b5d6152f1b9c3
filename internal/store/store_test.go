package store_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edgenode/edgenode/internal/media"
	"github.com/edgenode/edgenode/internal/store"
	"github.com/edgenode/edgenode/internal/store/storetest"
)

func TestStreamLifecycle(t *testing.T) {
	s := storetest.Open(t)
	a, err := s.CreateStream("demo", true)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != 1 || a.Name != "demo" || !a.Active || len(a.Key) != 32 || a.CreatedAt.IsZero() || !a.CreatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("created %+v", a)
	}
	if strings.ContainsAny(a.Key, "_/") {
		t.Fatalf("key %q has a URL separator", a.Key)
	}
	b, err := s.CreateStream("second", false)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != 2 || b.Active || b.Key == a.Key {
		t.Fatalf("second %+v (first key %s)", b, a.Key)
	}
	got, err := s.Stream(a.ID)
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("Stream(1) = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.CreateStream("demo", true); !errors.Is(err, store.ErrNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	up, err := s.UpdateStream(a.ID, func(st *store.Stream) error {
		st.Active = false
		st.Name = "renamed"
		st.ID = 99 // ignored
		st.Ladder = []media.Rendition{{Name: "360p", Width: 640, Height: 360, Bitrate: 800_000}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != 1 || up.Active || up.Name != "renamed" || up.UpdatedAt.Before(a.UpdatedAt) || !up.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("updated %+v", up)
	}
	// The old name is free again, the new one is taken.
	if _, err := s.UpdateStream(b.ID, func(st *store.Stream) error { st.Name = "renamed"; return nil }); !errors.Is(err, store.ErrNameTaken) {
		t.Fatalf("rename onto taken name: %v", err)
	}
	c, err := s.CreateStream("demo", true)
	if err != nil || c.ID != 3 {
		t.Fatalf("reuse freed name: %+v %v", c, err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateStream(b.ID, func(st *store.Stream) error { st.Name = "x"; return boom }); err != boom {
		t.Fatalf("fn error: %v", err)
	}
	if got, _ := s.Stream(b.ID); got.Name != "second" {
		t.Fatalf("failed update was stored: %+v", got)
	}
	if _, err := s.UpdateStream(b.ID, func(st *store.Stream) error { st.Name = ""; return nil }); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
	if err := s.DeleteStream(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stream(a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.DeleteStream(a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.UpdateStream(42, func(*store.Stream) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	// Ids are never reused.
	d, _ := s.CreateStream("renamed", true)
	if d.ID != 4 {
		t.Fatalf("id after delete = %d, want 4", d.ID)
	}
}

func TestValidateName(t *testing.T) {
	for _, bad := range []string{"", "   ", "a\x00b", "tab\there", strings.Repeat("x", store.MaxNameLen+1), "\xff"} {
		if err := store.ValidateName(bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v", bad, err)
		}
	}
	for _, good := range []string{"demo", "Émission du lundi", strings.Repeat("x", store.MaxNameLen)} {
		if err := store.ValidateName(good); err != nil {
			t.Errorf("ValidateName(%q) = %v", good, err)
		}
	}
}

func TestListStreamsPages(t *testing.T) {
	s := storetest.Open(t)
	var want []uint64
	for i := range 7 {
		st, err := s.CreateStream(strings.Repeat("n", i+1), true)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, st.ID)
	}
	// An update keeps the stream in its place.
	if _, err := s.UpdateStream(want[0], func(*store.Stream) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	after := uint64(0)
	pages := 0
	for {
		page, more, err := s.ListStreams(after, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, st := range page {
			got = append(got, st.ID)
			after = st.ID
		}
		if !more {
			break
		}
	}
	if !reflect.DeepEqual(got, want) || pages != 3 {
		t.Fatalf("walked %v in %d pages, want %v in 3", got, pages, want)
	}
	// after an id that does not exist (deleted) continues with the next one.
	if err := s.DeleteStream(3); err != nil {
		t.Fatal(err)
	}
	page, _, err := s.ListStreams(2, 1)
	if err != nil || len(page) != 1 || page[0].ID != 4 {
		t.Fatalf("after deleted id: %+v %v", page, err)
	}
	if n, err := s.CountStreams(); err != nil || n != 6 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if _, _, err := s.ListStreams(0, 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("limit 0: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var created []store.Stream
	for _, n := range []string{"a", "b", "c"} {
		st, err := s.CreateStream(n, true)
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, st)
	}
	tok, made, err := s.Secret("api_token", func() ([]byte, error) { return []byte("t0k"), nil })
	if err != nil || !made || string(tok) != "t0k" {
		t.Fatalf("secret: %q %v %v", tok, made, err)
	}
	if err := s.PutState("origin", "msn/1", []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stream(1); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("use after close: %v", err)
	}

	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v %v", fi.Mode(), err)
	}
	fi, err = os.Stat(filepath.Join(dir, store.FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("db mode %v %v", fi.Mode(), err)
	}

	s, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range created {
		got, err := s.Stream(want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("after reopen %+v %v, want %+v", got, err, want)
		}
	}
	tok, made, err = s.Secret("api_token", func() ([]byte, error) { return nil, errors.New("must not generate") })
	if err != nil || made || string(tok) != "t0k" {
		t.Fatalf("secret after reopen: %q %v %v", tok, made, err)
	}
	if v, err := s.GetState("origin", "msn/1"); err != nil || string(v) != "\x01\x02" {
		t.Fatalf("state after reopen %v %v", v, err)
	}
	if v, err := s.Version(); err != nil || v != store.SchemaVersion {
		t.Fatalf("version %d %v", v, err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenFailsWithLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = store.Open(dir, store.Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if !strings.Contains(err.Error(), "in use by another edgenode") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("message %q does not say what happened", err)
	}
}

func TestDataDirModes(t *testing.T) {
	parent := t.TempDir()
	shared := filepath.Join(parent, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(shared, 0o1777) // like /tmp
	_, err := store.Open(shared, store.Options{})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "shared directory") {
		t.Fatalf("open on a /tmp-like dir: %v", err)
	}
	if fi, _ := os.Stat(shared); fi.Mode().Perm() != 0o777 {
		t.Fatalf("Open changed the mode of a shared dir: %v", fi.Mode())
	}
	file := filepath.Join(parent, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := store.Open(file, store.Options{}); err == nil {
		t.Fatal("a file as data dir was accepted")
	}
	// An existing private dir is tightened to 0700, a new one made 0700.
	loose := filepath.Join(parent, "loose")
	os.Mkdir(loose, 0o755)
	nested := filepath.Join(parent, "a", "b")
	for _, dir := range []string{loose, nested} {
		s, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
			t.Fatalf("data dir %s mode %v", dir, fi.Mode())
		}
	}
}

func TestSchemaTooNewIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, store.SchemaVersion+1)
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(dir, store.Options{}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("open newer schema: %v", err)
	}
}

func TestSecretGetOrCreateIsAtomic(t *testing.T) {
	s := storetest.Open(t)
	var wg sync.WaitGroup
	vals := make([]string, 8)
	for i := range vals {
		wg.Go(func() {
			v, _, err := s.Secret("turn", func() ([]byte, error) { return []byte{byte('a' + i)}, nil })
			if err != nil {
				t.Error(err)
			}
			vals[i] = string(v)
		})
	}
	wg.Wait()
	for _, v := range vals {
		if v != vals[0] {
			t.Fatalf("callers saw different secrets: %q", vals)
		}
	}
	if err := s.PutSecret("turn", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if v, made, _ := s.Secret("turn", nil); string(v) != "new" || made {
		t.Fatalf("after PutSecret: %q %v", v, made)
	}
	if _, _, err := s.Secret("empty", func() ([]byte, error) { return nil, nil }); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty generated secret: %v", err)
	}
}

func TestState(t *testing.T) {
	s := storetest.Open(t)
	if v, err := s.GetState("origin", "k"); v != nil || err != nil {
		t.Fatalf("missing: %q %v, want nil, nil", v, err)
	}
	if err := s.PutState("origin", "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetState("turn", "k"); v != nil || err != nil {
		t.Fatalf("components are separate: %q %v", v, err)
	}
	if err := s.PutState("origin", "k", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetState("origin", "k"); v != nil || err != nil {
		t.Fatalf("after delete: %q %v", v, err)
	}
	if err := s.PutState("", "k", []byte("x")); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty component: %v", err)
	}
}
