package fwdproxy

import (
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// tunnel relays bytes both ways between a client and an origin until both directions have
// ended, one fails, no byte moved either way for idle, or close is called (Shutdown).
//
// Each direction is a read/write loop that stamps the time of every chunk; one timer per
// tunnel closes both connections when neither direction moved for idle. There are no
// per-read deadlines, so one direction may be silent for hours while the other streams (a
// download). A peer that stops reading stalls its direction, which then shows no progress.
//
// Not io.Copy's splice(2): splice shows no progress until it returns, and renewing read
// deadlines to make it return stalled transfers for hundreds of milliseconds on Linux 6.x.
//
// This file has a twin in package socks5; keep the two in step.
type tunnel struct {
	client, origin net.Conn
	idle           time.Duration
	bufs           *bufferPool
	last           atomic.Int64 // unix nanoseconds of the last chunk either way
	closed         atomic.Bool
	idled          atomic.Bool
	once           sync.Once
	timer          *time.Timer
}

func newTunnel(client, origin net.Conn, idle time.Duration, bufs *bufferPool) *tunnel {
	t := &tunnel{client: client, origin: origin, idle: idle, bufs: bufs}
	t.touch()
	t.timer = time.AfterFunc(math.MaxInt64, t.checkIdle)
	return t
}

// run relays until the tunnel ends and returns the bytes moved each way.
func (t *tunnel) run() (up, down int64) {
	t.timer.Reset(t.idle)
	defer t.timer.Stop()
	var wg sync.WaitGroup
	wg.Go(func() { up = t.pipe(t.origin, t.client) })
	down = t.pipe(t.client, t.origin)
	wg.Wait()
	t.close()
	return up, down
}

func (t *tunnel) pipe(dst, src net.Conn) int64 {
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
				t.close()
				return total
			}
		}
		if err == io.EOF { // the source is done sending: pass the half-close on
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			} else {
				t.close()
			}
			return total
		}
		if err != nil {
			t.close()
			return total
		}
	}
}

func (t *tunnel) touch() { t.last.Store(time.Now().UnixNano()) }

func (t *tunnel) checkIdle() {
	if t.closed.Load() {
		return
	}
	quiet := time.Since(time.Unix(0, t.last.Load()))
	if quiet >= t.idle {
		t.idled.Store(true)
		t.close()
		return
	}
	t.timer.Reset(t.idle - quiet)
}

// close ends the tunnel: both connections are closed and both directions return.
func (t *tunnel) close() {
	t.once.Do(func() {
		t.closed.Store(true)
		t.client.Close()
		t.origin.Close()
	})
}
