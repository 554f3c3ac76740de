package wiretap_test

import (
	"io"
	"net"
	"sync"
)

// pipeListener hands the server ends of net.Pipe connections to a go-smtp
// server. Over a pipe every Read returns at most what one Write sent, so a
// test controls exactly which bytes go-smtp reads together.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial returns the client end of a new connection.
func (l *pipeListener) dial() (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// drain reads r in the background into an unbounded buffer, so that the
// server never blocks writing replies the test has not read yet.
func drain(r io.Reader) io.Reader {
	d := &drained{}
	d.cond = sync.NewCond(&d.mu)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			d.mu.Lock()
			d.buf = append(d.buf, buf[:n]...)
			if err != nil {
				d.err = err
			}
			d.cond.Broadcast()
			d.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return d
}

type drained struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte
	err  error
}

func (d *drained) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.buf) == 0 && d.err == nil {
		d.cond.Wait()
	}
	if len(d.buf) == 0 {
		return 0, d.err
	}
	n := copy(p, d.buf)
	d.buf = d.buf[n:]
	return n, nil
}
