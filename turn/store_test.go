package turn_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/store"
	"github.com/edgenode/edgenode/turn"
	"github.com/edgenode/edgenode/turn/turntest"
)

var _ turn.Secrets = (*store.Store)(nil)

// TestSecretInNodeStore: with the node's bbolt store, the secret made on
// first boot survives a restart, and so does a rotation with its grace.
func TestSecretInNodeStore(t *testing.T) {
	dir := t.TempDir()
	boot := func(rotate bool) (cur, prev []byte, user, pass string) {
		st, err := store.Open(dir, store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		s := turn.New(turntest.Config(), turn.Deps{Secrets: st, Logger: slog.New(slog.DiscardHandler), DataDir: dir})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}()
		if rotate {
			if err := s.RotateSecret(); err != nil {
				t.Fatal(err)
			}
		}
		cur, _, err = st.Secret(turn.SecretName, nil)
		if err != nil {
			t.Fatal(err)
		}
		prev, _, err = st.Secret(turn.PrevSecretName, nil)
		if err != nil {
			t.Fatal(err)
		}
		user, pass, _ = s.Credentials(1)
		return cur, prev, user, pass
	}
	a, prevA, _, _ := boot(false)
	if len(a) != 32 || !bytes.Equal(prevA, make([]byte, 8)) {
		t.Fatalf("first boot: secret %d bytes, prev % x", len(a), prevA)
	}
	b, _, _, _ := boot(false)
	if !bytes.Equal(a, b) {
		t.Fatal("secret changed across restarts")
	}
	c, prevC, _, _ := boot(true)
	if bytes.Equal(c, a) || !bytes.Equal(prevC[8:], a) {
		t.Fatal("rotation not persisted")
	}
	// After a restart the old secret is still accepted within the grace.
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := turntest.StartWith(t, turntest.Config(), st, nil)
	oldUser := turn.Username(time.Now().Add(time.Hour), 9)
	if _, err := dial(t, srv, "udp", oldUser, turn.Password(a, oldUser)).Allocate(); err != nil {
		t.Fatalf("credential signed with the pre-rotation secret after restart: %v", err)
	}
}
