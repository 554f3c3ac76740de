package server

import (
	"fmt"
	"log/slog"

	"github.com/sekisho/sekisho/internal/config"
	"github.com/sekisho/sekisho/internal/harvest"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/revproxy"
	"github.com/sekisho/sekisho/internal/static"
	"github.com/sekisho/sekisho/internal/web"
)

// webRoutes builds the [[web.route]] handlers: a reverse proxy for a route with upstreams,
// static files for one with a root, whose pages carry harvest traps when planter is not
// nil (a proxied site's pages never do). The static handlers' directories stay open for
// the life of the process.
func webRoutes(routes []config.Route, planter *harvest.Planter, log *slog.Logger) ([]web.Route, error) {
	var out []web.Route
	for i, rc := range routes {
		key := fmt.Sprintf("web.route[%d]", i)
		rlog := log.With("route", rc.Host+rc.Path)
		var h web.Route
		h.Host, h.Path, h.Plain = rc.Host, rc.Path, rc.Plain == "serve"
		if len(rc.Upstreams) > 0 {
			p, err := revproxy.New(revproxy.Options{
				Upstreams:      rc.Upstreams,
				Balance:        rc.Balance,
				HealthPath:     rc.HealthPath,
				HealthInterval: rc.HealthInterval.Duration,
				HealthHost:     rc.Host,
			}, revproxy.Deps{Logger: rlog})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			h.Handler, h.Kind = p, metrics.ProxyReverse
		} else {
			prefix := rc.Path
			if prefix == "/" {
				prefix = ""
			}
			f, err := static.New(static.Options{Root: rc.Root, StripPrefix: prefix}, static.Deps{Logger: rlog})
			if err != nil {
				return nil, fmt.Errorf("%s.root: %w", key, err)
			}
			h.Handler, h.Kind = f, metrics.ProxyStatic
			if planter != nil {
				h.Handler = harvest.Seed(f, planter)
			}
		}
		out = append(out, h)
	}
	return out, nil
}

// backendHealth is the state of every reverse-proxy backend, for sekisho_backend_up.
func backendHealth(routes []web.Route) func() []metrics.Backend {
	return func() []metrics.Backend {
		var out []metrics.Backend
		for _, rt := range routes {
			if p, ok := rt.Handler.(*revproxy.Route); ok {
				for _, u := range p.Stats().Upstreams {
					out = append(out, metrics.Backend{Route: rt.Host + rt.Path, Addr: u.Addr, Up: u.Up})
				}
			}
		}
		return out
	}
}
