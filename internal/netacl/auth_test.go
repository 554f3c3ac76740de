package netacl

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
)

// countingUsers counts lookups on a real store.
type countingUsers struct {
	Users
	n atomic.Int64
}

func (c *countingUsers) GetUser(ctx context.Context, a string) (store.User, error) {
	c.n.Add(1)
	return c.Users.GetUser(ctx, a)
}

func TestAuthenticator(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hash, err := password.Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutUser(ctx, store.User{Address: "alice@example.jp", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutUser(ctx, store.User{Address: "broken@example.jp", PasswordHash: "not a hash"}); err != nil {
		t.Fatal(err)
	}
	users := &countingUsers{Users: st}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewAuthenticator(users, time.Minute, func() time.Time { return now })

	tests := []struct {
		name, user, pass string
		want             bool
	}{
		{"good", "alice@example.jp", "s3cret", true},
		{"canonical form of the address", "Alice@EXAMPLE.jp", "s3cret", true},
		{"wrong password", "alice@example.jp", "s3cret!", false},
		{"unknown user", "bob@example.jp", "s3cret", false},
		{"empty password", "alice@example.jp", "", false},
		{"empty user", "", "s3cret", false},
		{"malformed stored hash", "broken@example.jp", "not a hash", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Check(ctx, tt.user, tt.pass)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Check(%q, %q) = %v, want %v", tt.user, tt.pass, got, tt.want)
			}
		})
	}

	// Good credentials are remembered for the TTL, then checked again.
	before := users.n.Load()
	if ok, _ := a.Check(ctx, "alice@example.jp", "s3cret"); !ok {
		t.Fatal("cached check failed")
	}
	if n := users.n.Load(); n != before {
		t.Errorf("cached credentials looked up again (%d lookups)", n-before)
	}
	if err := st.DeleteUser(ctx, "alice@example.jp"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if ok, _ := a.Check(ctx, "alice@example.jp", "s3cret"); ok {
		t.Error("deleted user still accepted after the cache TTL")
	}

	// A store failure is an error, not a refusal.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Check(canceled, "carol@example.jp", "x"); err == nil {
		t.Error("Check with a canceled context: no error")
	} else if errors.Is(err, store.ErrNotFound) {
		t.Errorf("Check error = %v", err)
	}
}
