package interop

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/password"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/testenv"
)

const (
	harvesterIP = "127.0.0.7" // fetches the pages
	spammerIP   = "127.0.0.8" // mails what was harvested
	siteHost    = "www.interop.test"
	appHost     = "mx.interop.test" // the hostname, so the built-in app's host
	harvesterUA = "InteropHarvester/1.0 (+curl)"
)

// trapRE finds the planted address in a page.
var trapRE = regexp.MustCompile(`<a href="mailto:([a-z2-7]{16}@example\.jp)" hidden aria-hidden="true" tabindex="-1" style="display:none">([^<]*)</a>`)

// runCurl runs curl (insecure TLS: the servers' certificates are self-signed) with args and
// returns the HTTP status and the body.
func runCurl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	args = append([]string{"-sS", "-k", "--max-time", "10", "-w", "\n%{http_code}"}, args...)
	out, err := runCmd(30*time.Second, requireBin(t, "curl", "curl"), args...)
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	i := strings.LastIndexByte(out, '\n')
	code, _ := strconv.Atoi(out[i+1:])
	return code, out[:i]
}

// curlFrom fetches an HTTPS URL of the web server as client ip (curl --interface), with the
// host resolved to 127.0.0.1 where the server listens. It returns the status and body.
func curlFrom(t *testing.T, ip, webAddr, host, path string) (int, string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(webAddr)
	return runCurl(t, "--interface", ip, "--resolve", host+":"+port+":127.0.0.1", "-A", harvesterUA, "https://"+host+":"+port+path)
}

// trapIn returns the one planted address of a page.
func trapIn(t *testing.T, what, page string) string {
	t.Helper()
	m := trapRE.FindAllStringSubmatch(page, -1)
	if len(m) != 1 || m[0][1] != m[0][2] {
		t.Fatalf("%s: want exactly one hidden trap link, found %d:\n%s", what, len(m), page)
	}
	return m[0][1]
}

// TestHarvestTrap: curl fetches a static page and an app page as 127.0.0.7 and finds one
// hidden address (the same on both, a day's address per visitor); 127.0.0.8 gets another.
// swaks mails the first from 127.0.0.8: the RCPT is refused as a decoy, and then both IPs
// are refused everywhere (SMTP 554 at the greeting, web 403), and the store links the
// visit to the spam.
func TestHarvestTrap(t *testing.T) {
	requireBin(t, "swaks", "swaks")
	requireBin(t, "curl", "curl")
	root := t.TempDir()
	pageHTML := "<!doctype html>\n<html><head><title>Contact</title></head>\n<body>\n<h1>Contact us</h1>\n<p>Write to info at example dot jp.</p>\n</body>\n</html>\n"
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte(pageHTML), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSekisho(t, sekishoConf{servers: []string{deadAddr(t)}, extra: fmt.Sprintf(`
[web]
listen = ["127.0.0.1:0"]
decoy_seed = "example.jp"

[[web.route]]
host = %q
root = %q
`, siteHost, root)})
	webAddr := s.webAddr()
	st, err := sqlite.Open(t.Context(), filepath.Join(s.dataDir, "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// An app page: the confirmation page of a token made for this test.
	token, hash := challenge.NewToken()
	if err := st.Put(t.Context(), store.Entry{List: store.Audir, Key: hash, Target: "sender@partner.test", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	code, static := curlFrom(t, harvesterIP, webAddr, siteHost, "/")
	if code != 200 {
		t.Fatalf("static page: %d\n%s", code, static)
	}
	trap := trapIn(t, "static page", static)
	if !strings.Contains(static, "<p>Write to info at example dot jp.</p>\n"+trapRE.FindString(static)+"</body>") {
		t.Errorf("the link is not just before </body>:\n%s", static)
	}
	code, app := curlFrom(t, harvesterIP, webAddr, appHost, "/c/"+token)
	if code != 200 {
		t.Fatalf("app page /c/TOKEN: %d\n%s", code, app)
	}
	if got := trapIn(t, "app page", app); got != trap {
		t.Errorf("one visitor, one day: the app page has %s, the static page %s", got, trap)
	}
	_, again := curlFrom(t, harvesterIP, webAddr, siteHost, "/index.html")
	if got := trapIn(t, "second fetch", again); got != trap {
		t.Errorf("second fetch from %s: %s, first %s", harvesterIP, got, trap)
	}
	_, other := curlFrom(t, spammerIP, webAddr, siteHost, "/")
	if got := trapIn(t, "fetch from another IP", other); got == trap {
		t.Errorf("%s and %s got the same address %s", harvesterIP, spammerIP, got)
	}

	// The trap is stored with the visit, in DECOY, and the server's lists have it.
	if !testenv.Eventually(10*time.Second, func() bool {
		es, err := st.Entries(t.Context(), store.Decoy, store.Query{Q: trap})
		return err == nil && len(es) == 1
	}) {
		t.Fatalf("%s did not reach DECOY", trap)
	}
	s.syncLists()

	r := swaks(t, append(serverArgs(s.addr()), "--local-interface", spammerIP, "--ehlo", "spam.test",
		"-f", "bulk@spam.test", "-t", trap, "--quit-after", "RCPT")...)
	if !strings.Contains(r.out, "<** 550 5.1.1") {
		t.Fatalf("RCPT to the trap not refused 550 5.1.1 as a decoy:\n%s", r.out)
	}

	for _, ip := range []string{harvesterIP, spammerIP} {
		c, greet := dialFrom(t, ip, s.addr())
		c.conn.Close()
		if !strings.HasPrefix(greet, "554 5.7.1") {
			t.Errorf("SMTP greeting to %s = %q, want 554 5.7.1", ip, greet)
		}
		if code, body := curlFrom(t, ip, webAddr, siteHost, "/"); code != 403 {
			t.Errorf("web answer to %s = %d, want 403\n%s", ip, code, body)
		}
	}
	black, err := st.Entries(t.Context(), store.Black, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, e := range black {
		sources[e.Key] = e.Source
	}
	if sources[harvesterIP] != "harvest" || sources[spammerIP] != "decoy" {
		t.Errorf("BLACK sources = %v, want %s harvest and %s decoy", sources, harvesterIP, spammerIP)
	}
	hits, err := st.TrapHits(t.Context(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 {
		t.Fatalf("TrapHits = %+v, want one", hits)
	}
	h := hits[0]
	if h.Trap.Address != trap || h.Trap.IP != harvesterIP || h.Trap.UserAgent != harvesterUA ||
		!strings.HasPrefix(h.Trap.URL, "https://"+siteHost+":") || h.IP != spammerIP || h.Sender != "bulk@spam.test" {
		t.Errorf("TrapHits[0] = %+v, want the visit of %s (%s) linked to the mail from %s", h, harvesterIP, harvesterUA, spammerIP)
	}
	if time.Since(h.Trap.Planted) > time.Minute || h.At.Before(h.Trap.Planted) {
		t.Errorf("times: planted %v, hit %v", h.Trap.Planted, h.At)
	}

	// An admin, from 127.0.0.1 (in admin_networks), sees the link on the harvest-trap page.
	pwHash, err := password.Hash("interop-admin-pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutUser(t.Context(), store.User{Address: "admin@example.jp", PasswordHash: pwHash, Admin: true}); err != nil {
		t.Fatal(err)
	}
	jar := filepath.Join(t.TempDir(), "cookies")
	_, port, _ := net.SplitHostPort(webAddr)
	admin := func(path string, form ...string) (int, string) {
		t.Helper()
		args := []string{"--interface", "127.0.0.1", "-c", jar, "-b", jar, "--resolve", appHost + ":" + port + ":127.0.0.1"}
		for _, f := range form {
			args = append(args, "--data-urlencode", f)
		}
		return runCurl(t, append(args, "https://"+appHost+":"+port+path)...)
	}
	_, form := admin("/login")
	m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(form)
	if m == nil {
		t.Fatalf("login form:\n%s", form)
	}
	if code, body := admin("/login", "token="+m[1], "address=admin@example.jp", "password=interop-admin-pw"); code != 303 {
		t.Fatalf("admin login: %d\n%s", code, body)
	}
	code, page := admin("/admin/traps")
	if code != 200 {
		t.Fatalf("GET /admin/traps: %d\n%s", code, page)
	}
	for _, want := range []string{trap, harvesterIP, "InteropHarvester/1.0", spammerIP, "bulk@spam.test"} {
		if !strings.Contains(page, want) {
			t.Errorf("the harvest-trap admin page lacks %q\n%s", want, page)
		}
	}
}
