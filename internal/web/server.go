// Package web is sekisho's HTTPS server: the built-in app on app_host (confirmation pages,
// later the portal, admin pages and API), /healthz, and strict limits on what a client may
// send (SPEC §5). A client in BLACK gets 403 from every listener.
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
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/lists"
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
	ListenPlain []string    // plain HTTP listeners: redirect to HTTPS
	AppHost     string      // host name of the built-in app
	TLSConfig   *tls.Config // certificate of the HTTPS listeners
}

// Deps are the parts the web server works with.
type Deps struct {
	Lists  *lists.Lists
	App    http.Handler // the built-in app, served on AppHost
	Logger *slog.Logger
	Now    func() time.Time
}

// Server is the web server. New binds every listener, Run serves, Shutdown stops.
type Server struct {
	opts   Options
	deps   Deps
	log    *slog.Logger
	https  []net.Listener
	plain  []net.Listener
	mu     sync.Mutex
	served []*http.Server
}

// New binds the listeners; on error none is left open.
func New(opts Options, deps Deps) (*Server, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{opts: opts, deps: deps, log: deps.Logger}
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

// Handler is the HTTPS handler: BLACK check, then routing by Host.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(hostOnly(r.Host), s.opts.AppHost) || s.deps.App == nil {
			http.NotFound(w, r)
			return
		}
		s.deps.App.ServeHTTP(w, r)
	})
	return s.guard(mux)
}

// guard refuses blacklisted clients and proxy-style requests, and bounds the body.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := remoteIP(r)
		if s.deps.Lists != nil && s.deps.Lists.BlackIP(ip, s.deps.Now()) {
			s.log.Info("web request refused", "client", ip.String(), "reason", "black-ip")
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodConnect || isAbsoluteForm(r) && !strings.EqualFold(hostOnly(r.URL.Host), s.opts.AppHost) {
			s.log.Info("web request refused", "client", ip.String(), "reason", "proxy-probe", "method", r.Method, "target", r.RequestURI)
			http.Error(w, "Bad Request", http.StatusBadRequest)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		next.ServeHTTP(w, r)
	})
}

// redirect sends plain HTTP clients to HTTPS.
func (s *Server) redirect() http.Handler {
	port := ""
	if len(s.https) > 0 {
		if _, p, err := net.SplitHostPort(s.https[0].Addr().String()); err == nil && p != "443" {
			port = ":" + p
		}
	}
	return s.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok\n"))
			return
		}
		http.Redirect(w, r, "https://"+hostOnly(r.Host)+port+r.URL.RequestURI(), http.StatusMovedPermanently)
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

// Run serves every listener until Shutdown; it returns the first serving error.
func (s *Server) Run() error {
	errc := make(chan error, len(s.https)+len(s.plain))
	var wg sync.WaitGroup
	s.mu.Lock()
	for _, l := range s.https {
		srv := s.newHTTPServer(s.Handler())
		srv.TLSConfig = s.opts.TLSConfig.Clone()
		s.served = append(s.served, srv)
		tl := tls.NewListener(l, srv.TLSConfig)
		s.log.Info("web listening", "address", l.Addr().String(), "tls", true)
		wg.Go(func() { errc <- srv.Serve(tl) })
	}
	for _, l := range s.plain {
		srv := s.newHTTPServer(s.redirect())
		s.served = append(s.served, srv)
		s.log.Info("web listening", "address", l.Addr().String(), "tls", false)
		wg.Go(func() { errc <- srv.Serve(l) })
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
			srv.Close()
			errs = append(errs, err)
		}
	}
	s.closeListeners()
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

func remoteIP(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
