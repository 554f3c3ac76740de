// Package logbuf batches log lines into few writes: under load the server logs a line per
// SMTP transaction and per proxied request, and one write(2) per line cost a few percent
// of the CPU. Lines wait at most the flush interval, as with nginx's access_log buffer=.
package logbuf

import (
	"io"
	"sync"
	"time"
)

// maxPending is how many bytes wait before a write happens at once.
const maxPending = 64 << 10

// Writer is an io.Writer that keeps what it is given and passes it on to the underlying
// writer every interval, when 64 KiB are waiting, and at Close. It is safe for concurrent
// use; each Write is passed on whole and in order.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte
	err     error // the last error of the underlying writer, returned by the next Write
	closed  bool  // after Close every Write is passed on at once

	stop chan struct{}
	done chan struct{}
}

// New returns a Writer that passes its lines on to w at least every interval.
func New(w io.Writer, interval time.Duration) *Writer {
	b := &Writer{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go b.run(interval)
	return b
}

func (b *Writer) run(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.Flush()
		}
	}
}

// Write keeps a copy of p; see Writer.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.err; err != nil {
		b.err = nil
		return 0, err
	}
	b.pending = append(b.pending, p...)
	if len(b.pending) >= maxPending || b.closed {
		b.flushLocked()
	}
	return len(p), nil
}

// Flush passes on what is waiting now.
func (b *Writer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *Writer) flushLocked() {
	if len(b.pending) == 0 {
		return
	}
	if _, err := b.w.Write(b.pending); err != nil {
		b.err = err
	}
	if cap(b.pending) > 4*maxPending { // after a burst, do not keep a large buffer
		b.pending = nil
	} else {
		b.pending = b.pending[:0]
	}
}

// Close stops the interval flushes and passes on what is waiting. Writes after Close go
// through at once.
func (b *Writer) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.flushLocked()
	return nil
}
