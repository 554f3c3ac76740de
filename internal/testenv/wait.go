package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond every 5 ms until it holds (true) or timeout passes (false).
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// WaitFor polls cond until it holds, failing the test after 5 s with what it waited for.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Eventually(5*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}
