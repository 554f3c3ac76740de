package revproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Start runs the active health checks, when a health path is configured, until Stop or
// until ctx ends. The first round starts at once. Calling Start on a started route does
// nothing.
func (rt *Route) Start(ctx context.Context) {
	if rt.opts.HealthPath == "" {
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.cancel != nil {
		return
	}
	ctx, rt.cancel = context.WithCancel(ctx)
	for _, u := range rt.ups {
		rt.wg.Go(func() { rt.watch(ctx, u) })
	}
}

// Stop ends the health checks and waits for them, then closes idle backend connections.
// Requests under way are not touched.
func (rt *Route) Stop() {
	rt.mu.Lock()
	cancel := rt.cancel
	rt.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	rt.wg.Wait()
	rt.transport.CloseIdleConnections()
}

// watch checks one backend every HealthInterval.
func (rt *Route) watch(ctx context.Context, u *upstream) {
	t := time.NewTicker(rt.opts.HealthInterval)
	defer t.Stop()
	for {
		err := rt.check(ctx, u)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && u.up.CompareAndSwap(true, false):
			rt.log.Warn("reverse proxy backend down", "upstream", u.addr, "by", "health check", "err", err)
		case err == nil && u.up.CompareAndSwap(false, true):
			u.downUntil.Store(0)
			rt.log.Info("reverse proxy backend up", "upstream", u.addr)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check asks a backend for the health path: a 2xx or 3xx answer within HealthTimeout passes.
func (rt *Route) check(ctx context.Context, u *upstream) error {
	ctx, cancel := context.WithTimeout(ctx, rt.opts.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+u.addr+rt.opts.HealthPath, nil)
	if err != nil {
		return err
	}
	if rt.opts.HealthHost != "" {
		req.Host = rt.opts.HealthHost
	}
	req.Header.Set("User-Agent", "sekisho-health-check")
	resp, err := rt.checker.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("health check answered %s", resp.Status)
	}
	return nil
}
