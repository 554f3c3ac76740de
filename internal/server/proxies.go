package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/internal/config"
	"github.com/sekisho/sekisho/internal/fwdproxy"
	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/netacl"
	"github.com/sekisho/sekisho/internal/socks5"
	"github.com/sekisho/sekisho/internal/store"
)

// blacklister puts proxy probers in BLACK for every module and node: the store first, then
// this process's lists catch up, so the prober's next connection to any module is refused.
// It satisfies netacl.Blacklister, for both proxies and the web listeners.
type blacklister struct {
	store store.Store
	lists *lists.Lists
	ttl   atomic.Int64 // antispam.black_ttl; Reload updates it
}

func newBlacklister(st store.Store, l *lists.Lists, ttl time.Duration) *blacklister {
	b := &blacklister{store: st, lists: l}
	b.ttl.Store(int64(ttl))
	return b
}

func (b *blacklister) Blacklist(ctx context.Context, ip netip.Addr, source, note string) error {
	e := store.Entry{
		List: store.Black, Key: ip.String(), Source: source, Note: note,
		Expires: time.Now().Add(time.Duration(b.ttl.Load())),
	}
	if err := b.store.Put(ctx, e); err != nil {
		return fmt.Errorf("blacklist %s: %w", ip, err)
	}
	return b.lists.CatchUp(ctx, b.store)
}

func prefixes(ps []config.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.Prefix
	}
	return out
}

// fwdOptions are the HTTP forward proxy's options from the configuration.
func fwdOptions(cfg *config.Config) fwdproxy.Options {
	c := cfg.HTTPProxy
	return fwdproxy.Options{
		Hostname: cfg.Hostname,
		Rules: netacl.Rules{
			AllowNetworks:  prefixes(c.AllowNetworks),
			ConnectPorts:   c.ConnectPorts,
			AllowMailPorts: c.AllowMailPorts,
			DenyHosts:      c.DenyHosts,
			DenyNetworks:   prefixes(c.DenyNetworks),
		},
		Auth:            c.Auth,
		BlacklistProbes: cfg.Antispam.BlacklistProbes,
	}
}

// socksOptions are the SOCKS5 proxy's options ([socks] has no allow_mail_ports and no
// deny_hosts: mail ports are always refused).
func socksOptions(cfg *config.Config) socks5.Options {
	c := cfg.Socks
	return socks5.Options{
		Rules: netacl.Rules{
			AllowNetworks: prefixes(c.AllowNetworks),
			ConnectPorts:  c.ConnectPorts,
			DenyNetworks:  prefixes(c.DenyNetworks),
		},
		Auth:            c.Auth,
		BlacklistProbes: cfg.Antispam.BlacklistProbes,
	}
}

// proxies are the HTTP forward proxy and the SOCKS5 proxy with their bound listeners.
type proxies struct {
	bl      *blacklister
	fwd     *fwdproxy.Proxy
	fwdLn   []net.Listener
	socks   *socks5.Proxy
	socksLn []net.Listener
}

// buildProxies builds the proxies that have listeners and binds those.
func (s *Server) buildProxies() error {
	cfg := s.cfg
	s.px.bl = newBlacklister(s.store, s.lists, cfg.Antispam.BlackTTL.Duration)
	if len(cfg.HTTPProxy.Listen) > 0 {
		p, err := fwdproxy.New(fwdOptions(cfg), fwdproxy.Deps{ProxyDeps: netacl.ProxyDeps{
			Lists: s.lists, Users: s.store, Blacklister: s.px.bl, Logger: s.log.With("component", "http_proxy"),
		}, Metrics: s.metrics})
		if err != nil {
			return fmt.Errorf("http_proxy: %w", err)
		}
		s.px.fwd = p
		for i, a := range cfg.HTTPProxy.Listen {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return fmt.Errorf("http_proxy.listen[%d] %s: %w", i, a, err)
			}
			s.px.fwdLn = append(s.px.fwdLn, l)
		}
	}
	if len(cfg.Socks.Listen) > 0 {
		p, err := socks5.New(socksOptions(cfg), socks5.Deps{ProxyDeps: netacl.ProxyDeps{
			Lists: s.lists, Users: s.store, Blacklister: s.px.bl, Logger: s.log.With("component", "socks"),
		}, Metrics: s.metrics})
		if err != nil {
			return fmt.Errorf("socks: %w", err)
		}
		s.px.socks = p
		for i, a := range cfg.Socks.Listen {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return fmt.Errorf("socks.listen[%d] %s: %w", i, a, err)
			}
			s.px.socksLn = append(s.px.socksLn, l)
		}
	}
	return nil
}

// serveProxies starts every proxy listener; a listener that fails goes to errc.
func (s *Server) serveProxies(wg *sync.WaitGroup, errc chan<- error) {
	for _, l := range s.px.fwdLn {
		wg.Go(func() {
			if err := s.px.fwd.Serve(l); err != nil && !errors.Is(err, fwdproxy.ErrServerClosed) {
				errc <- fmt.Errorf("http_proxy listener %s: %w", l.Addr(), err)
			}
		})
	}
	for _, l := range s.px.socksLn {
		wg.Go(func() {
			if err := s.px.socks.Serve(l); err != nil && !errors.Is(err, socks5.ErrServerClosed) {
				errc <- fmt.Errorf("socks listener %s: %w", l.Addr(), err)
			}
		})
	}
}

// shutdownProxies stops both proxies: requests and tunnels under way get until ctx ends.
func (s *Server) shutdownProxies(ctx context.Context) {
	var wg sync.WaitGroup
	if s.px.fwd != nil {
		wg.Go(func() {
			if err := s.px.fwd.Shutdown(ctx); err != nil {
				s.log.Warn("http_proxy shutdown: open tunnels closed", "err", err)
			}
		})
	}
	if s.px.socks != nil {
		wg.Go(func() {
			if err := s.px.socks.Shutdown(ctx); err != nil {
				s.log.Warn("socks shutdown: open sessions closed", "err", err)
			}
		})
	}
	wg.Wait()
}

// reloadProxies puts new proxy rules in force (listeners wait for a restart).
func (s *Server) reloadProxies(cfg *config.Config) {
	if s.px.bl != nil {
		s.px.bl.ttl.Store(int64(cfg.Antispam.BlackTTL.Duration))
	}
	if s.px.fwd != nil {
		if err := s.px.fwd.Reload(fwdOptions(cfg)); err != nil {
			s.log.Error("http_proxy reload refused", "err", err)
		}
	}
	if s.px.socks != nil {
		if err := s.px.socks.Reload(socksOptions(cfg)); err != nil {
			s.log.Error("socks reload refused", "err", err)
		}
	}
}

// closeProxyListeners closes listeners that were bound but never served (New failed).
func (s *Server) closeProxyListeners() {
	for _, l := range append(s.px.fwdLn, s.px.socksLn...) {
		l.Close()
	}
}

// ProxyAddrs returns the bound addresses of the HTTP proxy and SOCKS listeners.
func (s *Server) ProxyAddrs() (httpProxy, socks []net.Addr) {
	for _, l := range s.px.fwdLn {
		httpProxy = append(httpProxy, l.Addr())
	}
	for _, l := range s.px.socksLn {
		socks = append(socks, l.Addr())
	}
	return httpProxy, socks
}
