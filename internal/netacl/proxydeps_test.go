package netacl

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
)

func TestPrepare(t *testing.T) {
	if _, err := (ProxyDeps{}).Prepare(false); err == nil || !strings.Contains(err.Error(), "Lists") {
		t.Fatalf("Prepare without Lists = %v, want an error naming Lists", err)
	}
	l := lists.New()
	if _, err := (ProxyDeps{Lists: l}).Prepare(true); err == nil || !strings.Contains(err.Error(), "Users") {
		t.Fatalf("Prepare with auth and no Users = %v, want an error naming Users", err)
	}
	p, err := (ProxyDeps{Lists: l}).Prepare(false)
	if err != nil {
		t.Fatal(err)
	}
	if p.Logger == nil || p.Now == nil || p.Resolver == nil || p.Dial == nil || p.Dialer.Dial == nil || p.Auth != nil {
		t.Fatalf("Prepare left defaults unset or made an Authenticator without Users: %+v", p)
	}
	if p.Lists.BlackIP(netip.MustParseAddr("192.0.2.1"), time.Now()) {
		t.Fatal("Lists not kept")
	}
}
