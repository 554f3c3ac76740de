// Package web is sekisho's HTTPS server: the built-in app on app_host (confirmation pages,
// later the portal, admin pages and API), the [[web.route]] sites (reverse proxy or static
// files, matched by exact Host and longest path prefix), /healthz, and strict limits on what
// a client may send (SPEC §5). A client in BLACK gets 403 from every listener. A proxy probe
// (a CONNECT, or a request in absolute form for a host this server does not serve) gets 400,
// is counted, and puts the client in BLACK when blacklist_probes is on. The plain HTTP
// listeners serve the routes marked Plain and redirect everything else to HTTPS.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/h1serve"
	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/netacl"
	"github.com/sekisho/sekisho/internal/webui"
)

// Limits on what a client may send; a slow or oversized request is cut off.
const (
	MaxHeaderBytes    = 16 << 10
	MaxFormBytes      = 16 << 10
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
)

// Options configure the web server.
type Options struct {
	Listen      []string    // HTTPS listeners
	ListenPlain []string    // plain HTTP listeners: redirect to HTTPS, or serve routes with Plain
	AppHost     string      // host name of the built-in app
	TLSConfig   *tls.Config // certificate of the HTTPS listeners
	// BlacklistProbes hands proxy probers to the Blacklister (antispam.blacklist_probes).
	BlacklistProbes bool
}

// Route is one [[web.route]]: requests for Host whose path is under Path go to Handler.
type Route struct {
	Host string // exact, case-insensitive
	// Path is a prefix. "/docs/" takes /docs and everything under it; "/api" takes /api
	// and /api/..., not /apix. The longest matching Path of a Host wins.
	Path    string
	Plain   bool         // served on the plain listeners too (plain = "serve"); else they redirect
	Handler http.Handler // a reverse proxy or static files
	// Kind names the route's requests in the access log and the metrics:
	// metrics.ProxyReverse or metrics.ProxyStatic.
	Kind string
}

// Starter is an optional power of a Route's Handler: work of its own, such as health
// checks, that runs from Run until Shutdown. Stop is called once, even without Start.
type Starter interface {
	Start(ctx context.Context)
	Stop()
}

// blacklistTimeout bounds the store write that puts a prober in BLACK.
const blacklistTimeout = 5 * time.Second

// Deps are the parts the web server works with.
type Deps struct {
	Lists       *lists.Lists
	App         http.Handler // the built-in app, served on AppHost
	Routes      []Route
	Blacklister netacl.Blacklister // nil: probes are refused, counted and logged only
	Logger      *slog.Logger
	Now         func() time.Time
	// Metrics counts route requests, bytes and refusals; nil counts nothing.
	Metrics *metrics.Metrics
}

// Stats are the web server's counters since New.
type Stats struct {
	Refused     map[string]int64 // refusals by reason: "black-ip", "proxy-probe"
	Blacklisted int64            // probers handed to the Blacklister successfully
}

// Server is the web server. New binds every listener, Run serves, Shutdown stops.
type Server struct {
	opts   Options
	deps   Deps
	log    *slog.Logger
	https  []net.Listener
	plain  []net.Listener
	routes map[string][]Route // by lower-case host, longest path first
	mu     sync.Mutex
	served []servedListener

	refusedBlack atomic.Int64
	refusedProbe atomic.Int64
	blacklisted  atomic.Int64
	stopOnce     sync.Once
	refusals     *metrics.Proxy // refusals before routing (proxy "web")
}

// New binds the listeners; on error none is left open.
func New(opts Options, deps Deps) (*Server, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{opts: opts, deps: deps, log: deps.Logger, refusals: deps.Metrics.Proxy(metrics.ProxyWeb)}
	s.routes = s.routeTable(deps.Routes)
	bind := func(key string, addrs []string) ([]net.Listener, error) {
		var out []net.Listener
		for i, a := range addrs {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return out, fmt.Errorf("%s[%d] %s: %w", key, i, a, err)
			}
			out = append(out, l)
		}
		return out, nil
	}
	var err error
	if s.https, err = bind("web.listen", opts.Listen); err == nil {
		s.plain, err = bind("web.listen_plain", opts.ListenPlain)
	}
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	return s, nil
}

// Addrs returns the bound HTTPS addresses, then the plain ones.
func (s *Server) Addrs() (https, plain []net.Addr) {
	for _, l := range s.https {
		https = append(https, l.Addr())
	}
	for _, l := range s.plain {
		plain = append(plain, l.Addr())
	}
	return https, plain
}

func (s *Server) closeListeners() {
	for _, l := range append(append([]net.Listener(nil), s.https...), s.plain...) {
		l.Close()
	}
}

// Handler is the HTTPS handler: the guard, then routing by Host: the built-in app on
// AppHost, then the routes, then /healthz for any other host.
func (s *Server) Handler() http.Handler {
	app := http.NewServeMux()
	app.HandleFunc("GET /healthz", serveHealth)
	app.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.deps.App == nil {
			http.NotFound(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		s.deps.App.ServeHTTP(w, r)
	})
	return s.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostOnly(r.Host)
		if strings.EqualFold(host, s.opts.AppHost) {
			app.ServeHTTP(w, r)
			return
		}
		if rt, ok := s.route(host, r.URL.Path); ok {
			rt.Handler.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			serveHealth(w, r)
			return
		}
		http.NotFound(w, r)
	}))
}

func serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// routeTable sorts the routes by host, longest path first, each handler wrapped in access.
func (s *Server) routeTable(routes []Route) map[string][]Route {
	t := map[string][]Route{}
	for _, r := range routes {
		h := strings.ToLower(r.Host)
		r.Handler = s.access(r)
		t[h] = append(t[h], r)
	}
	for _, rs := range t {
		slices.SortStableFunc(rs, func(a, b Route) int { return len(b.Path) - len(a.Path) })
	}
	return t
}

// route finds the route of a request: exact host, longest path prefix.
func (s *Server) route(host, p string) (Route, bool) {
	for _, rt := range s.routes[strings.ToLower(host)] {
		if pathUnder(p, rt.Path) {
			return rt, true
		}
	}
	return Route{}, false
}

// pathUnder reports whether p is prefix itself or below it, on segment boundaries.
func pathUnder(p, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p, prefix) || p == prefix[:len(prefix)-1] && p != ""
	}
	return p == prefix || strings.HasPrefix(p, prefix) && p[len(prefix)] == '/'
}

// serves reports a host this server answers for: the app's or a route's.
func (s *Server) serves(host string) bool {
	if strings.EqualFold(host, s.opts.AppHost) {
		return true
	}
	_, ok := s.routes[strings.ToLower(host)]
	return ok
}

// guard refuses blacklisted clients and proxy-style requests.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := webui.ClientIP(r)
		if s.deps.Lists != nil && s.deps.Lists.BlackIP(ip, s.deps.Now()) {
			s.refusedBlack.Add(1)
			s.refusals.Refused("black-ip")
			s.log.Info("web request refused", "client", ip.String(), "reason", "black-ip")
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodConnect || isAbsoluteForm(r) && !s.serves(hostOnly(r.URL.Host)) {
			s.refuseProbe(w, r, ip)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuseProbe answers a proxy probe with 400, and puts the client in BLACK first when
// blacklist_probes is on, so that its next connection to any module is refused.
func (s *Server) refuseProbe(w http.ResponseWriter, r *http.Request, ip netip.Addr) {
	s.refusedProbe.Add(1)
	s.refusals.Refused("proxy-probe")
	s.log.Info("web request refused", "client", ip.String(), "reason", "proxy-probe", "method", r.Method, "target", r.RequestURI)
	if s.opts.BlacklistProbes && s.deps.Blacklister != nil && ip.IsValid() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), blacklistTimeout)
		note := fmt.Sprintf("web listener proxy probe: %.100s %.200s", r.Method, r.RequestURI)
		err := s.deps.Blacklister.Blacklist(ctx, ip, netacl.SourceProxyAbuse, note)
		cancel()
		if err != nil {
			s.log.Error("blacklist proxy prober", "client", ip.String(), "err", err)
		} else {
			s.blacklisted.Add(1)
			s.log.Warn("proxy prober blacklisted", "client", ip.String(), "reason", "proxy-probe")
		}
	}
	w.Header().Set("Connection", "close")
	http.Error(w, "Bad Request", http.StatusBadRequest)
}

// Stats returns the web server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Refused:     map[string]int64{"black-ip": s.refusedBlack.Load(), "proxy-probe": s.refusedProbe.Load()},
		Blacklisted: s.blacklisted.Load(),
	}
}

// plainHandler serves the plain HTTP listeners: routes with Plain, /healthz, and a
// redirect to HTTPS for everything else.
func (s *Server) plainHandler() http.Handler {
	port := ""
	if len(s.https) > 0 {
		if _, p, err := net.SplitHostPort(s.https[0].Addr().String()); err == nil && p != "443" {
			port = ":" + p
		}
	}
	return s.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostOnly(r.Host)
		if !strings.EqualFold(host, s.opts.AppHost) {
			if rt, ok := s.route(host, r.URL.Path); ok && rt.Plain {
				rt.Handler.ServeHTTP(w, r)
				return
			}
		}
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok\n"))
			return
		}
		http.Redirect(w, r, "https://"+host+port+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
}

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// servedListener is what serves one listener: net/http's server, or for a plain listener
// h1serve in front of it.
type servedListener struct {
	shutdowner
	http *http.Server
}

type shutdowner interface{ Shutdown(context.Context) error }

// Run serves every listener until Shutdown; it returns the first serving error.
func (s *Server) Run() error {
	errc := make(chan error, len(s.https)+len(s.plain))
	var wg sync.WaitGroup
	s.mu.Lock()
	for _, rt := range s.deps.Routes {
		if st, ok := rt.Handler.(Starter); ok {
			st.Start(context.Background()) // Shutdown stops it
		}
	}
	for _, l := range s.https {
		srv := s.newHTTPServer(s.Handler())
		srv.TLSConfig = s.opts.TLSConfig.Clone()
		s.served = append(s.served, servedListener{srv, srv})
		tl := tls.NewListener(l, srv.TLSConfig)
		s.log.Info("web listening", "address", l.Addr().String(), "tls", true)
		wg.Go(func() { errc <- srv.Serve(tl) })
	}
	for _, l := range s.plain {
		srv := s.newHTTPServer(s.plainHandler())
		fast := h1serve.For(srv, s.log)
		s.served = append(s.served, servedListener{fast, srv})
		s.log.Info("web listening", "address", l.Addr().String(), "tls", false)
		wg.Go(func() { errc <- fast.Serve(l) })
	}
	s.mu.Unlock()
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}

// Shutdown stops accepting, lets requests finish until ctx ends, then closes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	served := s.served
	s.mu.Unlock()
	var errs []error
	for _, srv := range served {
		if err := srv.Shutdown(ctx); err != nil {
			srv.http.Close()
			errs = append(errs, err)
		}
	}
	s.closeListeners()
	s.stopOnce.Do(func() {
		for _, rt := range s.deps.Routes {
			if st, ok := rt.Handler.(Starter); ok {
				st.Stop()
			}
		}
	})
	return errors.Join(errs...)
}

// isAbsoluteForm reports a request line in absolute form (GET http://host/ HTTP/1.1), which
// only proxies receive: at a web server it is a proxy probe.
func isAbsoluteForm(r *http.Request) bool {
	u := strings.ToLower(r.RequestURI)
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(hostport, "[]")
}
