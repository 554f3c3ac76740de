package api_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/sekisho/sekisho/internal/store"
)

// BenchmarkListAliases is one authenticated GET of a user's aliases (a page of 100) from a
// store of 10,000 aliases of 100 users, over a real HTTP connection to SQLite: the token
// lookup (with its last-used write), the owner check and the query.
func BenchmarkListAliases(b *testing.B) {
	e := newEnv(b)
	for i := range 10000 {
		owner := fmt.Sprintf("user%d@example.jp", i%100)
		if i%100 == 0 {
			owner = taro
		}
		e.put(store.Entry{List: store.Alias, Key: fmt.Sprintf("alias%05d@example.jp", i), Owner: owner, Target: owner})
	}
	benchGet(b, e, taro, "/api/v1/lists/alias?limit=100")
}

// BenchmarkEmptyList is the fixed cost of a request: the token lookup on an empty list.
func BenchmarkEmptyList(b *testing.B) {
	benchGet(b, newEnv(b), "admin", "/api/v1/lists/decoy")
}

func benchGet(b *testing.B, e *env, who, path string) {
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[who])
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
	}
}
