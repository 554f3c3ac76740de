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
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/lists/alias?limit=100", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[taro])
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkEmptyList is the fixed cost of a request: the token lookup on an empty list.
func BenchmarkEmptyList(b *testing.B) {
	e := newEnv(b)
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/lists/decoy", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
