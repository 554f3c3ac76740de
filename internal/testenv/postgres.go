package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostgresOptions configure a throwaway PostgreSQL cluster.
type PostgresOptions struct {
	// Conf are extra postgresql.conf lines (ssl = on, ssl_cert_file = 'server.crt', ...).
	// Relative file names are relative to the data directory.
	Conf []string
	// HBA replaces pg_hba.conf; nil: "host all all 127.0.0.1/32 trust".
	HBA []string
	// Files are written into the data directory before the start, mode 0600, owned by the
	// user the server runs as (a TLS key must be).
	Files map[string][]byte
}

// Postgres is a throwaway PostgreSQL cluster on 127.0.0.1, started by StartPostgres and
// stopped (pg_ctl stop -m immediate, then SIGKILL if need be) when the test ends.
type Postgres struct {
	Port    int
	DataDir string
	LogFile string

	bin  string   // directory of initdb, pg_ctl, postgres
	as   []string // runuser prefix when running as root, else nil
	tb   testing.TB
	root string
}

// postgresBinDir returns the newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl, or
// the directory of initdb in PATH; "" when there is none.
func postgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		ok := true
		for _, n := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(d, n)); err != nil || fi.Mode()&0o111 == 0 {
				ok = false
			}
		}
		if ok {
			return d
		}
	}
	return ""
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// StartPostgres runs initdb in a fresh directory and starts the server on a free port of
// 127.0.0.1 (Unix socket in that directory). Without PostgreSQL's binaries the test is
// skipped, or fails under CI=true. As root, the cluster runs as the "postgres" user, since
// PostgreSQL refuses to run as root.
func StartPostgres(tb testing.TB, opts PostgresOptions) *Postgres {
	tb.Helper()
	bin := postgresBinDir()
	if bin == "" {
		Missing(tb, "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or PATH: install the Debian package postgresql")
	}
	root, err := os.MkdirTemp("", "sekisho-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Postgres{bin: bin, tb: tb, root: root, DataDir: filepath.Join(root, "data"), LogFile: filepath.Join(root, "postgres.log")}
	tb.Cleanup(func() { p.cleanup() })

	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("running as root and no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			runuser = "/usr/sbin/runuser"
		}
		p.as = []string{runuser, "-u", "postgres", "--"}
		if err := os.Chown(root, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	if out, err := p.run(60*time.Second, "initdb", "-D", p.DataDir, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}

	p.Port = freeTCPPort(tb)
	conf := []string{
		"",
		"# sekisho test cluster",
		fmt.Sprintf("port = %d", p.Port),
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("unix_socket_directories = '%s'", root),
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
		"log_min_messages = warning",
	}
	conf = append(conf, opts.Conf...)
	p.appendFile("postgresql.conf", strings.Join(conf, "\n")+"\n", uid, gid)
	hba := opts.HBA
	if hba == nil {
		hba = []string{"host all all 127.0.0.1/32 trust"}
	}
	// local connections (the Unix socket) for pg_ctl's readiness checks.
	hba = append([]string{"local all all trust"}, hba...)
	p.writeFile("pg_hba.conf", []byte(strings.Join(hba, "\n")+"\n"), uid, gid)
	for name, data := range opts.Files {
		p.writeFile(name, data, uid, gid)
	}
	p.start()
	return p
}

// DSN returns a postgres:// URL for database postgres as user postgres on 127.0.0.1 (or host,
// when not empty) with the query parameters params.
func (p *Postgres) DSN(host string, params url.Values) string {
	if host == "" {
		host = "127.0.0.1"
	}
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort(host, strconv.Itoa(p.Port)), Path: "/postgres"}
	u.RawQuery = params.Encode()
	return u.String()
}

// Restart runs pg_ctl restart -m mode (smart, fast or immediate) and waits until the server
// accepts connections again.
func (p *Postgres) Restart(mode string) {
	p.tb.Helper()
	if out, err := p.run(60*time.Second, "pg_ctl", "-D", p.DataDir, "-l", p.LogFile, "-m", mode, "-w", "-t", "30", "restart"); err != nil {
		p.tb.Fatalf("pg_ctl restart -m %s: %v\n%s\n%s", mode, err, out, p.Log())
	}
}

// Stop stops the server (pg_ctl stop -m mode); Start starts it again.
func (p *Postgres) Stop(mode string) {
	p.tb.Helper()
	if out, err := p.run(60*time.Second, "pg_ctl", "-D", p.DataDir, "-m", mode, "-w", "-t", "30", "stop"); err != nil {
		p.tb.Fatalf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
}

// Start starts a stopped server.
func (p *Postgres) Start() {
	p.tb.Helper()
	p.start()
}

func (p *Postgres) start() {
	p.tb.Helper()
	if out, err := p.run(60*time.Second, "pg_ctl", "-D", p.DataDir, "-l", p.LogFile, "-w", "-t", "30", "start"); err != nil {
		p.tb.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, p.Log())
	}
}

// Log returns the server's log so far.
func (p *Postgres) Log() string {
	b, _ := os.ReadFile(p.LogFile)
	return string(b)
}

// postmasterPID returns the pid in postmaster.pid, 0 when there is none.
func (p *Postgres) postmasterPID() int {
	b, err := os.ReadFile(filepath.Join(p.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

// cleanup stops the server and removes its directory; a postmaster that survives pg_ctl
// stop is killed, and the test fails if it still runs.
func (p *Postgres) cleanup() {
	pid := p.postmasterPID()
	if pid > 0 {
		if out, err := p.run(30*time.Second, "pg_ctl", "-D", p.DataDir, "-m", "immediate", "-w", "-t", "20", "stop"); err != nil {
			p.tb.Logf("pg_ctl stop -m immediate: %v\n%s", err, out)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			deadline := time.Now().Add(5 * time.Second)
			for alive(pid) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if alive(pid) {
				p.tb.Errorf("postmaster %d of %s still running after pg_ctl stop and SIGKILL", pid, p.DataDir)
			}
		}
	}
	if p.tb.Failed() {
		if l := p.Log(); l != "" {
			p.tb.Logf("--- PostgreSQL log (%s):\n%s", p.LogFile, l)
		}
	}
	os.RemoveAll(p.root)
}

// alive reports whether pid is a running process (not a zombie).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// run runs one of PostgreSQL's programs (as the postgres user when we are root).
func (p *Postgres) run(timeout time.Duration, prog string, args ...string) (string, error) {
	argv := append(append(slices.Clone(p.as), filepath.Join(p.bin, prog)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.root
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// pg_ctl's server inherits no pipe of ours: it logs to LogFile (-l), so Wait returns.
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	return out.String(), err
}

func (p *Postgres) writeFile(name string, data []byte, uid, gid int) {
	p.tb.Helper()
	path := filepath.Join(p.DataDir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.tb.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // WriteFile keeps an existing file's mode
		p.tb.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(path, uid, gid); err != nil {
			p.tb.Fatal(err)
		}
	}
}

func (p *Postgres) appendFile(name, text string, uid, gid int) {
	p.tb.Helper()
	old, err := os.ReadFile(filepath.Join(p.DataDir, name))
	if err != nil {
		p.tb.Fatal(err)
	}
	p.writeFile(name, append(old, text...), uid, gid)
}

// freeTCPPort returns a port of 127.0.0.1 that was free a moment ago.
func freeTCPPort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
