package testenv

import (
	"fmt"
	"os"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true, set by .ci/run), where every peer and
// facility they need must be present.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends a test that cannot run here for want of what msg names (say which package
// provides it): in CI it fails, elsewhere it is skipped.
func Missing(t testing.TB, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if InCI() {
		t.Fatalf("%s (CI=true: this test must run, not skip)", msg)
	}
	t.Skipf("skipped: %s", msg)
}
