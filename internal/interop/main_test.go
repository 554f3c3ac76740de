package interop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testenv"
)

// sekishoBin is the sekisho binary built by TestMain.
var sekishoBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "sekisho-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sekishoBin = filepath.Join(dir, "sekisho")
	cmd := exec.Command(goTool(), "build", "-o", sekishoBin, "./cmd/sekisho")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: go build ./cmd/sekisho: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot walks up from the working directory to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// goTool returns the go command: from PATH, else from $GOROOT/bin.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// ---------------------------------------------------------------- peers and the environment

// findBin looks for a program in PATH and in the sbin directories (which a normal user's
// PATH often lacks).
func findBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// requireBin returns the path of a peer program from Debian package pkg.
func requireBin(t *testing.T, name, pkg string) string {
	t.Helper()
	p := findBin(name)
	if p == "" {
		testenv.Missing(t, "%s not found: install the Debian package %q", name, pkg)
	}
	return p
}

// requireRoot is for Postfix, whose master must start as root.
func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "%s needs root (running as uid %d)", why, os.Geteuid())
	}
}

// requireIPv6 checks that [::1] can be bound.
func requireIPv6(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		testenv.Missing(t, "IPv6 loopback [::1] not available: %v", err)
		return
	}
	l.Close()
}

// openDir returns a fresh temp dir that unprivileged peers (smtp-sink as nobody, Postfix's
// daemons) can enter and write: t.TempDir and its parent are 0700.
func openDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// freePort returns a port on host that was free a moment ago.
func freePort(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", host, err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", freePort(t, "127.0.0.1"))
}

// ---------------------------------------------------------------- processes

// proc is a server we started; its output goes to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid after done
}

// startProc starts a long-running program with stdout and stderr to logPath. It is stopped
// (SIGTERM, then SIGKILL) when the test ends, and its log printed if the test failed.
func startProc(t *testing.T, name, logPath, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			dumpLog(t, name, logPath)
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace, then kills. It returns the exit error.
func (p *proc) stop(grace time.Duration) error {
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	return p.err
}

// waitListen waits until addr accepts TCP connections; false if p exits first or timeout.
func (p *proc) waitListen(addr string, timeout time.Duration) bool {
	return testenv.Eventually(timeout, func() bool {
		if p.exited() {
			return true
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}) && !p.exited()
}

// dumpLog prints the tail of a log file into the test output.
func dumpLog(t *testing.T, name, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("--- %s log %s: %v", name, path, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	const max = 150
	if len(lines) > max {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-max)}, lines[len(lines)-max:]...)
	}
	t.Logf("--- %s log (%s):\n%s", name, path, strings.Join(lines, "\n"))
}

// runCmd runs a short command with a timeout and returns its combined output.
func runCmd(timeout time.Duration, bin string, args ...string) (string, error) {
	var out bytes.Buffer
	err := runCmdTo(&out, &out, timeout, bin, args...)
	return out.String(), err
}

// runCmdTo runs a short command with a timeout, its output to stdout and stderr.
func runCmdTo(stdout, stderr io.Writer, timeout time.Duration, bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	var once sync.Once
	timer := time.AfterFunc(timeout, func() { once.Do(func() { cmd.Process.Kill() }) })
	err := cmd.Wait()
	timer.Stop()
	return err
}

// exitCode returns the exit status in err (0 for nil, -1 when not an exit).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func itoa(i int) string { return strconv.Itoa(i) }
