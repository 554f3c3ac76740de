// Package tunnel relays bytes both ways between a client and an origin, for the CONNECT
// tunnels of the HTTP forward proxy and for SOCKS5.
package tunnel

import (
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Tunnel relays bytes both ways between a client and an origin until both directions have
// ended, one fails, no byte moved either way for idle, or close is called (Shutdown).
//
// Between two TCP connections on Linux each direction is one splice(2) loop in the kernel
// (io.Copy to a *net.TCPConn): the bytes never come up to user space. Otherwise each
// direction is a read/write loop that stamps the time of every chunk. One timer per tunnel
// closes both connections when neither direction moved for idle: it asks the kernel when
// each socket last sent or received data (TCP_INFO) where it can, and reads the stamps
// otherwise. There are no per-read deadlines, so one direction may be silent for hours while
// the other streams (a download). A peer that stops reading stalls its direction, which then
// shows no progress.
type Tunnel struct {
	client, origin net.Conn
	idle           time.Duration
	bufs           *BufferPool
	last           atomic.Int64 // unix nanoseconds of the last chunk either way
	closed         atomic.Bool
	idled          atomic.Bool
	once           sync.Once
	timer          *time.Timer
	kernel         bool // both ends are TCP sockets whose activity the kernel reports
}

// New returns a tunnel between client and origin that closes both after idle without traffic.
func New(client, origin net.Conn, idle time.Duration, bufs *BufferPool) *Tunnel {
	t := &Tunnel{client: client, origin: origin, idle: idle, bufs: bufs}
	t.kernel = canSplice(client, origin)
	t.touch()
	t.timer = time.AfterFunc(math.MaxInt64, t.checkIdle)
	return t
}

// Run relays until both directions end and returns the bytes sent up (client to origin) and
// down.
func (t *Tunnel) Run() (up, down int64) {
	t.timer.Reset(t.idle)
	defer t.timer.Stop()
	var wg sync.WaitGroup
	wg.Go(func() { up = t.pipe(t.origin, t.client) })
	down = t.pipe(t.client, t.origin)
	wg.Wait()
	t.Close()
	return up, down
}

// pipe relays src to dst until src ends, then passes the half-close on; a failure on either
// side closes the tunnel.
func (t *Tunnel) pipe(dst, src net.Conn) int64 {
	var n int64
	var err error
	if t.kernel {
		n, err = io.Copy(dst, src) // *net.TCPConn.ReadFrom(*net.TCPConn) uses splice(2)
	} else {
		n, err = t.copy(dst, src)
	}
	if err != nil {
		t.Close()
		return n
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		t.Close()
	}
	return n
}

// copy moves src to dst through a pooled buffer, noting each chunk for the idle timer. It
// returns nil when src ended (io.EOF).
func (t *Tunnel) copy(dst, src net.Conn) (int64, error) {
	buf := t.bufs.Get()
	defer t.bufs.Put(buf)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			t.touch()
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (t *Tunnel) touch() { t.last.Store(time.Now().UnixNano()) }

func (t *Tunnel) checkIdle() {
	if t.closed.Load() {
		return
	}
	quiet := time.Since(time.Unix(0, t.last.Load()))
	if t.kernel {
		quiet = min(quiet, sinceData(t.client), sinceData(t.origin))
	}
	if quiet >= t.idle {
		t.idled.Store(true)
		t.Close()
		return
	}
	t.timer.Reset(t.idle - quiet)
}

// Close closes both connections; Run returns.
func (t *Tunnel) Close() {
	t.once.Do(func() {
		t.closed.Store(true)
		t.client.Close()
		t.origin.Close()
	})
}

// Idled reports whether the tunnel was closed for lack of traffic.
func (t *Tunnel) Idled() bool { return t.idled.Load() }

// Kernel reports whether the bytes move by splice(2), without a copy through the process.
func (t *Tunnel) Kernel() bool { return t.kernel }

// BufferPool lends buffers of one size: copy buffers of the tunnels, of httputil.ReverseProxy
// and of the direct forwarding, and h1serve's connection buffers.
type BufferPool struct {
	Size int
	pool sync.Pool
}

// Get returns a buffer of Size bytes.
func (b *BufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, b.Size)
}

// Put gives a buffer back; one that grew or shrank past Size is dropped.
func (b *BufferPool) Put(buf []byte) {
	if cap(buf) != b.Size {
		return
	}
	buf = buf[:b.Size]
	b.pool.Put(&buf)
}
