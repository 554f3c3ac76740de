// Command idleconns opens many concurrent SMTP sessions to a server and keeps them idle, for
// measuring what an idle session costs the server (bench/idle.sh).
//
//	idleconns -addr 127.0.0.1:2525 -n 5000 [-ehlo] [-hold 0]
//
// Each session reads the greeting and (with -ehlo, the default) says EHLO, then stays open
// without a word. When every session is open it prints "ready N" on stdout; it closes them
// all and exits on SIGINT, SIGTERM, at end of -hold, or when stdin reaches EOF (-stdin).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2525", "SMTP server host:port")
	n := flag.Int("n", 5000, "sessions to open")
	ehlo := flag.Bool("ehlo", true, "say EHLO after the greeting")
	par := flag.Int("parallel", 200, "sessions being opened at once")
	hold := flag.Duration("hold", 0, "close everything after this long (0: until a signal)")
	stdin := flag.Bool("stdin", false, "also close everything when stdin reaches EOF")
	flag.Parse()

	start := time.Now()
	conns := make([]net.Conn, *n)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, *par)
	for i := range *n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := open(*addr, *ehlo)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(os.Stderr, "idleconns: %d of %d sessions failed, first: %v\n", f, *n, firstErr.Load())
	}
	fmt.Printf("ready %d in %.2fs\n", int64(*n)-failed.Load(), time.Since(start).Seconds())

	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGINT, syscall.SIGTERM)
	if *stdin {
		go func() { io.Copy(io.Discard, os.Stdin); done <- syscall.SIGTERM }()
	}
	if *hold > 0 {
		go func() { time.Sleep(*hold); done <- syscall.SIGTERM }()
	}
	<-done
	alive := 0
	for _, c := range conns {
		if c == nil {
			continue
		}
		// A session the server dropped meanwhile reads EOF at once.
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			c.Close()
			continue
		}
		alive++
		fmt.Fprintf(c, "QUIT\r\n")
		c.Close()
	}
	fmt.Printf("closed %d sessions still open\n", alive)
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

// open connects, reads the greeting and optionally says EHLO.
func open(addr string, ehlo bool) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if err := reply(r, "220"); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if ehlo {
		fmt.Fprintf(c, "EHLO idle.bench.test\r\n")
		if err := reply(r, "250"); err != nil {
			c.Close()
			return nil, fmt.Errorf("EHLO: %w", err)
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// reply reads one (multi-line) reply and checks its code.
func reply(r *bufio.Reader, code string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, code) {
			return fmt.Errorf("got %q, want %s", strings.TrimSpace(line), code)
		}
		if len(line) < 4 || line[3] != '-' {
			return nil
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
