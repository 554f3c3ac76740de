package revproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/h1transport"
)

// upstream is one backend with its health and load.
type upstream struct {
	addr      string
	up        atomic.Bool  // the last active check passed (true until one fails)
	downUntil atomic.Int64 // unix nanoseconds: out after a failed request until then
	inflight  atomic.Int64
}

// available reports whether new requests may go to u.
func (u *upstream) available(now time.Time) bool {
	if !u.up.Load() {
		return false
	}
	d := u.downUntil.Load()
	return d == 0 || now.UnixNano() >= d
}

// selector is a balancing policy: pick returns the backend for the next attempt among those
// for which ok is true, or nil when there is none.
type selector interface {
	pick(ups []*upstream, ok func(*upstream) bool) *upstream
}

// roundRobin takes the backends in turn.
type roundRobin struct{ next atomic.Uint64 }

func (p *roundRobin) pick(ups []*upstream, ok func(*upstream) bool) *upstream {
	n := uint64(len(ups))
	start := p.next.Add(1) - 1
	for i := range n {
		if u := ups[(start+i)%n]; ok(u) {
			return u
		}
	}
	return nil
}

// leastConn takes the backend with the fewest requests under way; ties go in turn, so
// that an idle pool is still spread.
type leastConn struct{ next atomic.Uint64 }

func (p *leastConn) pick(ups []*upstream, ok func(*upstream) bool) *upstream {
	n := uint64(len(ups))
	start := p.next.Add(1) - 1
	var best *upstream
	var least int64
	for i := range n {
		u := ups[(start+i)%n]
		if !ok(u) {
			continue
		}
		if c := u.inflight.Load(); best == nil || c < least {
			best, least = u, c
		}
	}
	return best
}

// errNoUpstream is the cause logged when every backend is out.
var errNoUpstream = errors.New("no backend available")

// failover is the ReverseProxy's transport: it picks the backend of every attempt, and
// sends a request that is safe to repeat to the next backend when one cannot be reached.
type failover struct {
	route *Route
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := f.route
	now := time.Now()
	var tried []*upstream
	ok := func(u *upstream) bool { return u.available(now) && !slices.Contains(tried, u) }
	retry := h1transport.Repeatable(req)
	lastErr := errNoUpstream
	for {
		u := rt.policy.pick(rt.ups, ok)
		if u == nil {
			return nil, lastErr
		}
		if len(tried) > 0 {
			rt.retries.Add(1)
			rt.log.Debug("reverse proxy retry", "upstream", u.addr, "method", req.Method, "path", req.URL.Path, "after", lastErr)
		}
		out := req.WithContext(req.Context()) // a shallow copy: RoundTrip must not change req
		url := *req.URL
		url.Host = u.addr
		out.URL = &url
		u.inflight.Add(1)
		resp, err := rt.transport.RoundTrip(out)
		if err == nil {
			resp.Body = trackBody(resp, u)
			return resp, nil
		}
		u.inflight.Add(-1)
		var bad *clientBodyError
		if req.Context().Err() != nil || errors.As(err, &bad) || isTimeout(err) {
			return nil, err // the backend is not at fault
		}
		rt.markFailed(u, err)
		if !retry {
			return nil, err
		}
		tried = append(tried, u)
		lastErr = err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// markFailed takes a backend that failed a request out for FailTimeout; with active checks,
// it stays out until one passes.
func (rt *Route) markFailed(u *upstream, err error) {
	if rt.opts.HealthPath != "" {
		if u.up.CompareAndSwap(true, false) {
			rt.log.Warn("reverse proxy backend down", "upstream", u.addr, "by", "request", "err", err)
		}
		return
	}
	until := time.Now().Add(rt.opts.FailTimeout).UnixNano()
	if old := u.downUntil.Swap(until); old == 0 || time.Now().UnixNano() >= old {
		rt.log.Warn("reverse proxy backend down", "upstream", u.addr, "by", "request", "for", rt.opts.FailTimeout, "err", err)
	}
}

// trackBody counts the request as under way on u until the response body is closed.
func trackBody(resp *http.Response, u *upstream) io.ReadCloser {
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		return &trackedConn{ReadWriteCloser: rwc, inflight: inflight{u: u}}
	}
	return &trackedBody{ReadCloser: resp.Body, inflight: inflight{u: u}}
}

// inflight ends a request's count on its backend, once.
type inflight struct {
	u    *upstream
	done atomic.Bool
}

func (f *inflight) end() {
	if f.done.CompareAndSwap(false, true) {
		f.u.inflight.Add(-1)
	}
}

type trackedBody struct {
	io.ReadCloser
	inflight
}

func (b *trackedBody) Close() error {
	b.end()
	return b.ReadCloser.Close()
}

// trackedConn keeps an upgraded connection writable: ReverseProxy needs an
// io.ReadWriteCloser to relay a WebSocket.
type trackedConn struct {
	io.ReadWriteCloser
	inflight
}

func (c *trackedConn) Close() error {
	c.end()
	return c.ReadWriteCloser.Close()
}
