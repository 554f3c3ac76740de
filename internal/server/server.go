// Package server builds sekisho's parts from a Config and runs them: it opens the store,
// loads the lists, binds every listener (failing before anything starts when one cannot
// bind), serves, and shuts down in reverse order.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sekisho/sekisho/internal/admin"
	"github.com/sekisho/sekisho/internal/api"
	"github.com/sekisho/sekisho/internal/certs"
	"github.com/sekisho/sekisho/internal/challenge"
	"github.com/sekisho/sekisho/internal/cluster"
	"github.com/sekisho/sekisho/internal/config"
	"github.com/sekisho/sekisho/internal/digest"
	"github.com/sekisho/sekisho/internal/harvest"
	"github.com/sekisho/sekisho/internal/lists"
	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/outbox"
	"github.com/sekisho/sekisho/internal/portal"
	"github.com/sekisho/sekisho/internal/release"
	"github.com/sekisho/sekisho/internal/senderauth"
	"github.com/sekisho/sekisho/internal/smtpproxy"
	"github.com/sekisho/sekisho/internal/stats"
	"github.com/sekisho/sekisho/internal/store"
	"github.com/sekisho/sekisho/internal/store/postgres"
	"github.com/sekisho/sekisho/internal/store/sqlite"
	"github.com/sekisho/sekisho/internal/upstream"
	"github.com/sekisho/sekisho/internal/web"
	"github.com/sekisho/sekisho/internal/webauth"
)

// FollowInterval is how often the lists poll the store's change log. On PostgreSQL every
// change also wakes them at once (LISTEN/NOTIFY, and a wake after each reconnect), so the
// poll there is only a safety net.
const (
	FollowInterval         = 200 * time.Millisecond
	FollowIntervalNotified = time.Second
)

// OpenStore opens the store the configuration names.
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Store.Driver {
	case "sqlite", "":
		return sqlite.Open(ctx, cfg.Store.DSN)
	case "postgres":
		return postgres.OpenWith(ctx, cfg.Store.DSN, postgres.Options{Logger: log.With("component", "store")})
	}
	return nil, fmt.Errorf("store.driver %q: not available in this build", cfg.Store.Driver)
}

// NewUpstream builds the upstream pool of the configuration; m (nil: none) counts its sends.
func NewUpstream(cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (*upstream.Pool, error) {
	u := cfg.SMTP.Upstream
	return upstream.New(upstream.Options{
		Servers:        u.Servers,
		Balance:        u.Balance,
		TLS:            u.TLS,
		XForward:       u.XForward,
		HeloName:       cfg.Hostname,
		ConnectTimeout: u.ConnectTimeout.Duration,
		Logger:         log.With("component", "upstream"),
		Metrics:        m,
	})
}

// Server is a running sekisho.
type Server struct {
	mu       sync.Mutex // guards cfg, upstream and relay against Reload
	cfg      *config.Config
	log      *slog.Logger
	store    store.Store
	lists    *lists.Lists
	upstream *upstream.Pool
	relay    *upstream.Pool // challenge_relay, when set
	metrics  *metrics.Metrics
	proxy    *smtpproxy.Proxy
	smtp     []boundSMTP
	web      *web.Server
	tls      *tls.Config
	version  string           // SetVersion: reported in the node registry
	px       proxies          // HTTP forward proxy and SOCKS5
	outbox   *outbox.Sender   // mail sekisho sends itself (challenges, digests)
	digest   *digest.Job      // digest = "daily"
	harvest  *harvest.Planter // harvest traps in served pages; nil when decoy_seed is empty
	auth     *webauth.Auth    // logins and sessions of the portal and admin pages
	// recorder writes the decision counts over time for the admin charts; its Source is
	// the metrics' Decisions (SetDecisions), and Run runs it when Source is set.
	recorder *stats.Recorder
}

type boundSMTP struct {
	l  net.Listener
	lc smtpproxy.Listener
}

// New builds every part and binds every listener; on error nothing is left running.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, metrics: metrics.New()}
	s.recorder = &stats.Recorder{Source: s.metrics.Decisions, Log: log.With("component", "stats")}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.store, err = OpenStore(ctx, cfg, log); err != nil {
		return nil, err
	}
	s.recorder.Store = s.store
	s.lists = lists.New()
	if err = s.lists.Reload(ctx, s.store); err != nil {
		return nil, err
	}
	s.metrics.WatchLists(s.lists)
	s.metrics.WatchStore(s.store, log.With("component", "metrics"))
	s.metrics.WatchUpstream(s.upstreamHealth)
	if len(cfg.SMTP.Listeners) > 0 {
		if err = s.buildSMTP(); err != nil {
			return nil, err
		}
	}
	// The proxies first: buildProxies makes the blacklister the web server uses too.
	if err = s.buildProxies(); err != nil {
		return nil, err
	}
	if len(cfg.Web.Listen)+len(cfg.Web.ListenPlain) > 0 {
		if err = s.buildWeb(); err != nil {
			return nil, err
		}
	}
	if err = s.buildDigest(); err != nil {
		return nil, err
	}
	return s, nil
}

// tlsConfig returns the certificate of every TLS listener, loading it once.
func (s *Server) tlsConfig() (*tls.Config, error) {
	if s.tls == nil {
		c, err := certs.Load(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile, s.cfg.Hostname, s.cfg.DataDir)
		if err != nil {
			return nil, err
		}
		s.tls = c
	}
	return s.tls, nil
}

// upstreamPool returns the upstream pool, built by the first part that needs it.
func (s *Server) upstreamPool() (*upstream.Pool, error) {
	if s.upstream == nil {
		p, err := NewUpstream(s.cfg, s.log, s.metrics)
		if err != nil {
			return nil, fmt.Errorf("smtp.upstream: %w", err)
		}
		s.upstream = p
	}
	return s.upstream, nil
}

func (s *Server) buildWeb() error {
	cfg := s.cfg
	tc, err := s.tlsConfig()
	if err != nil {
		return err
	}
	if _, err := s.upstreamPool(); err != nil {
		return err
	}
	// The key that signs confirmation page views is in the store: a page shown by one node
	// may be confirmed on another.
	key, err := s.store.Secret(context.Background(), "confirm-view", 32)
	if err != nil {
		return err
	}
	log := s.log.With("component", "web")
	mux := http.NewServeMux()
	releaser := &release.Releaser{Store: s.store, Upstream: liveUpstream{s}, Scope: cfg.Antispam.ConfirmScope, Log: log, Lists: s.lists}
	// Only the confirmation page's releases count as "confirmed" in the metrics.
	confirmed := *releaser
	confirmed.Metrics = s.metrics
	confirm := &web.Confirm{
		Store:    s.store,
		Releaser: &confirmed,
		MinWait:  time.Duration(cfg.Antispam.ConfirmMinSeconds) * time.Second,
		Key:      key,
		Now:      time.Now,
		Log:      log,
	}
	confirm.Register(mux)
	s.auth = &webauth.Auth{Store: s.store, Log: log}
	login, err := webauth.NewPages(s.auth, "/portal/aliases")
	if err != nil {
		return err
	}
	login.Register(mux)
	mux.Handle("GET /metrics", web.AdminOnly(prefixes(cfg.Web.AdminNetworks), s.metrics.Handler()))
	// The API answers from anywhere: its tokens protect it, and bad ones are rate-limited.
	api.New(api.Options{LocalDomains: cfg.SMTP.LocalDomains}, api.Deps{
		Store: s.store, Releaser: releaser, Lists: s.lists, Logger: s.log.With("component", "api"),
	}).Register(mux)
	if err := s.registerDigestPage(mux, releaser, key, log); err != nil {
		return err
	}
	reg, _ := s.store.(cluster.Registry)
	adm, err := admin.New(admin.Options{
		Auth: s.auth, Networks: prefixes(cfg.Web.AdminNetworks), Store: s.store, Lists: s.lists,
		Releaser: releaser, Registry: reg, Log: log.With("pages", "admin"),
	})
	if err != nil {
		return err
	}
	adm.Register(mux)
	pt, err := portal.New(portal.Options{Domains: cfg.SMTP.LocalDomains},
		portal.Deps{Store: s.store, Auth: s.auth, Releaser: releaser, Lists: s.lists, Logger: log.With("pages", "portal")})
	if err != nil {
		return err
	}
	pt.Register(mux)
	var app http.Handler = mux
	if cfg.Web.DecoySeed != "" {
		s.harvest, err = harvest.New(context.Background(), harvest.Options{Domain: cfg.Web.DecoySeed, TTL: cfg.Web.DecoySeedTTL.Duration},
			harvest.Deps{Store: s.store, Lists: s.lists, Logger: s.log.With("component", "harvest"), Counter: s.metrics})
		if err != nil {
			return err
		}
		app = harvest.Seed(mux, s.harvest, "/api/", "/metrics") // no pages there
	}
	routes, err := webRoutes(cfg.Web.Routes, s.harvest, log)
	if err != nil {
		return err
	}
	s.metrics.WatchBackends(backendHealth(routes))
	s.web, err = web.New(web.Options{
		Listen: cfg.Web.Listen, ListenPlain: cfg.Web.ListenPlain, AppHost: cfg.Web.AppHost, TLSConfig: tc,
		BlacklistProbes: cfg.Antispam.BlacklistProbes,
	}, web.Deps{Lists: s.lists, App: app, Routes: routes, Blacklister: s.px.bl, Logger: log, Metrics: s.metrics})
	return err
}

func (s *Server) buildSMTP() error {
	cfg := s.cfg
	var tlsConfig *tls.Config
	for _, lc := range cfg.SMTP.Listeners {
		if lc.TLS != "none" && tlsConfig == nil {
			var err error
			if tlsConfig, err = s.tlsConfig(); err != nil {
				return err
			}
		}
	}
	pool, err := s.upstreamPool()
	if err != nil {
		return err
	}
	deps := smtpproxy.Deps{Store: s.store, Lists: s.lists, Upstream: pool, Logger: s.log.With("component", "smtp"), Metrics: s.metrics}
	if cfg.Antispam.SenderAuth == "gate" {
		res, err := senderauth.NewResolver(cfg.DNS.Resolver, cfg.DNS.Timeout.Duration)
		if err != nil {
			return fmt.Errorf("dns.resolver: %w", err)
		}
		deps.Auth = &senderauth.Checker{Resolver: res, Timeout: cfg.DNS.Timeout.Duration}
	}
	if cfg.Antispam.Challenge {
		if deps.Challenges, err = s.buildChallenges(); err != nil {
			return err
		}
	}
	s.proxy = smtpproxy.New(smtpOptions(cfg), deps)
	// No TCP keepalive on SMTP sessions: the read timeout between commands drops a client
	// that went away, and the four setsockopt calls per connection were measurable at
	// thousands of connections a second.
	lcfg := net.ListenConfig{KeepAlive: -1}
	for i, lc := range cfg.SMTP.Listeners {
		l, err := lcfg.Listen(context.Background(), "tcp", lc.Address)
		if err != nil {
			return fmt.Errorf("smtp.listener[%d].address %s: %w", i, lc.Address, err)
		}
		s.smtp = append(s.smtp, boundSMTP{l: l, lc: smtpproxy.Listener{
			Role: lc.Role, TLS: lc.TLS, RequireTLS: lc.RequireTLS, TLSConfig: tlsConfig,
		}})
	}
	return nil
}

// buildChallenges sets up URL-click confirmation: the outbox that sends the challenge mail
// (through challenge_relay, or the upstream servers) and the caps.
func (s *Server) buildChallenges() (*smtpproxy.Challenges, error) {
	cfg := s.cfg
	a := cfg.Antispam
	var relay outbox.Upstream = liveUpstream{s}
	if a.ChallengeRelay != "" {
		var err error
		s.relay, err = upstream.New(upstream.Options{
			Servers: []string{a.ChallengeRelay}, TLS: cfg.SMTP.Upstream.TLS, HeloName: cfg.Hostname,
			ConnectTimeout: cfg.SMTP.Upstream.ConnectTimeout.Duration, Logger: s.log.With("component", "challenge_relay"),
			Metrics: s.metrics,
		})
		if err != nil {
			return nil, fmt.Errorf("antispam.challenge_relay: %w", err)
		}
		relay = s.relay
	}
	s.outbox = &outbox.Sender{Store: s.store, Upstream: relay, Log: s.log.With("component", "outbox"), MaxAge: a.HoldFor.Duration, Metrics: s.metrics}
	return &smtpproxy.Challenges{
		Outbox:   s.outbox,
		Limiter:  challenge.NewLimiter(a.ChallengePerIPHour, a.ChallengePerHour, challenge.NewMemCounter()),
		From:     a.ChallengeFrom,
		BaseURL:  a.BaseURL,
		Language: challenge.Language(a.ChallengeLanguage),
		Interval: a.ChallengeInterval.Duration,
	}, nil
}

// liveUpstream sends through the server's current upstream pool, so that parts built once
// (the confirmation page, the outbox) follow a reload that replaced the pool.
type liveUpstream struct{ s *Server }

// Send implements release.Upstream and outbox.Upstream.
func (u liveUpstream) Send(ctx context.Context, env upstream.Envelope, body []byte) (upstream.Result, error) {
	u.s.mu.Lock()
	p := u.s.upstream
	u.s.mu.Unlock()
	return p.Send(ctx, env, body)
}

// smtpOptions are the SMTP proxy's options from the configuration.
func smtpOptions(cfg *config.Config) smtpproxy.Options {
	var relay []netip.Prefix
	for _, p := range cfg.SMTP.RelayNetworks {
		relay = append(relay, p.Prefix)
	}
	a := cfg.Antispam
	return smtpproxy.Options{
		Hostname:         cfg.Hostname,
		LocalDomains:     cfg.SMTP.LocalDomains,
		RelayNetworks:    relay,
		MaxMessageBytes:  cfg.SMTP.MaxMessageBytes,
		MaxRecipients:    cfg.SMTP.MaxRecipients,
		DecoyAction:      a.DecoyAction,
		BlackAction:      a.BlackAction,
		BlackTTL:         a.BlackTTL.Duration,
		NullSender:       a.NullSender,
		ConfirmScope:     a.ConfirmScope,
		HoldFor:          a.HoldFor.Duration,
		MaxHeldPerSender: a.MaxHeldPerSender,
	}
}

// Reload puts a new, valid configuration in force without dropping sessions: the SMTP policy
// options and the upstream servers change for new sessions. What needs new sockets or a new
// store (listeners, store, TLS files, data_dir, hostname, log, message limits) is reported
// by key and waits for a restart.
func (s *Server) Reload(cfg *config.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if keys := restartKeys(s.cfg, cfg); len(keys) > 0 {
		s.log.Warn("reload: these settings take effect at the next restart", "keys", keys)
	}
	if s.proxy != nil {
		pool, err := NewUpstream(cfg, s.log, s.metrics)
		if err != nil {
			s.log.Error("reload refused", "err", err)
			return
		}
		s.proxy.Reload(smtpOptions(cfg), pool)
		old := s.upstream
		s.upstream = pool
		old.Close() // transactions under way finish on their connections
	}
	s.reloadProxies(cfg)
	s.cfg = cfg
	s.log.Info("configuration reloaded", "config", cfg.File)
}

// restartKeys names the settings that differ between old and new and need a restart.
func restartKeys(old, new *config.Config) []string {
	var keys []string
	check := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	check("hostname", old.Hostname, new.Hostname)
	check("data_dir", old.DataDir, new.DataDir)
	check("store", old.Store, new.Store)
	check("tls", old.TLS, new.TLS)
	check("log", old.Log, new.Log)
	check("smtp.listener", old.SMTP.Listeners, new.SMTP.Listeners)
	check("smtp.max_message_bytes", old.SMTP.MaxMessageBytes, new.SMTP.MaxMessageBytes)
	check("smtp.max_recipients", old.SMTP.MaxRecipients, new.SMTP.MaxRecipients)
	check("dns", old.DNS, new.DNS)
	check("antispam.challenge", old.Antispam.Challenge, new.Antispam.Challenge)
	check("antispam.sender_auth", old.Antispam.SenderAuth, new.Antispam.SenderAuth)
	check("web.listen", old.Web.Listen, new.Web.Listen)
	check("web.listen_plain", old.Web.ListenPlain, new.Web.ListenPlain)
	check("web.route", old.Web.Routes, new.Web.Routes)
	check("web.decoy_seed", old.Web.DecoySeed, new.Web.DecoySeed)
	check("web.decoy_seed_ttl", old.Web.DecoySeedTTL, new.Web.DecoySeedTTL)
	check("http_proxy.listen", old.HTTPProxy.Listen, new.HTTPProxy.Listen)
	check("socks.listen", old.Socks.Listen, new.Socks.Listen)
	return keys
}

// SetDecisions sets where the counts of decisions over time come from: cumulative totals by
// name (stats.Decisions), read every minute and added to the store's minute buckets for the
// admin charts. The default is this server's metrics; call it before Run.
func (s *Server) SetDecisions(totals func() map[string]int64) { s.recorder.Source = totals }

// SMTPAddrs returns the bound addresses of the SMTP listeners (useful with port 0).
func (s *Server) SMTPAddrs() []net.Addr {
	var out []net.Addr
	for _, b := range s.smtp {
		out = append(out, b.l.Addr())
	}
	return out
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// upstreamHealth is the state of the upstream servers in use, and of challenge_relay.
func (s *Server) upstreamHealth() []metrics.Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []metrics.Health
	for _, p := range []*upstream.Pool{s.upstream, s.relay} {
		if p == nil {
			continue
		}
		for _, h := range p.Health() {
			out = append(out, metrics.Health{Server: h.Addr, Up: h.Up})
		}
	}
	return out
}

// Store returns the server's store.
func (s *Server) Store() store.Store { return s.store }

// Lists returns the server's in-memory lists.
func (s *Server) Lists() *lists.Lists { return s.lists }

// Run serves until ctx ends, then shuts down gracefully: no new connections, transactions in
// progress get up to grace to finish.
func (s *Server) Run(ctx context.Context, grace time.Duration) error {
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wake := make(chan struct{}, 1)
	every := FollowInterval
	if pg, ok := s.store.(*postgres.DB); ok { // changes of other nodes wake the lists at once
		wg.Go(func() { pg.Listen(bg, wake) })
		every = FollowIntervalNotified
	}
	wg.Go(func() { s.lists.Follow(bg, s.store, every, wake, s.log.With("component", "lists")) })
	wg.Go(func() { s.expireLoop(bg) })
	if s.recorder.Source != nil {
		wg.Go(func() { s.recorder.Run(bg) }) // its last write comes after the listeners stopped
	}
	if s.harvest != nil {
		wg.Go(func() { s.harvest.Run(bg) })
	}
	s.startCluster(bg, &wg)
	s.startDigest(bg, &wg)

	errc := make(chan error, len(s.smtp)+1+len(s.px.fwdLn)+len(s.px.socksLn))
	for _, b := range s.smtp {
		s.log.Info("smtp listening", "address", b.l.Addr().String(), "role", b.lc.Role, "tls", b.lc.TLS)
		wg.Go(func() {
			if err := s.proxy.Serve(b.l, b.lc); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				errc <- fmt.Errorf("smtp listener %s: %w", b.l.Addr(), err)
			}
		})
	}
	if s.web != nil {
		wg.Go(func() {
			if err := s.web.Run(); err != nil {
				errc <- fmt.Errorf("web: %w", err)
			}
		})
	}
	s.serveProxies(&wg, errc)
	if s.outbox != nil {
		wg.Go(func() {
			if err := s.outbox.Run(bg); err != nil {
				s.log.Error("outbox stopped", "err", err)
			}
		})
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.log.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if s.proxy != nil {
		if err := s.proxy.Shutdown(sctx); err != nil {
			s.log.Warn("smtp shutdown", "err", err)
		}
	}
	if s.web != nil {
		if err := s.web.Shutdown(sctx); err != nil {
			s.log.Warn("web shutdown", "err", err)
		}
	}
	s.shutdownProxies(sctx)
	stopBG()
	wg.Wait()
	s.close()
	s.log.Info("stopped")
	return runErr
}

// expireLoop removes expired list entries, held mail, web sessions and harvest traps once a
// minute.
func (s *Server) expireLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if n, err := s.store.Expire(ctx, now); err != nil {
			s.log.Warn("expire entries", "err", err)
		} else if n > 0 {
			s.log.Info("entries expired", "count", n)
		}
		if n, err := s.store.HeldExpire(ctx, now); err != nil {
			s.log.Warn("expire held mail", "err", err)
		} else if n > 0 {
			s.log.Info("held mail expired", "count", n)
		}
		if _, err := s.store.SessionsExpire(ctx, now); err != nil {
			s.log.Warn("expire web sessions", "err", err)
		}
		if s.harvest != nil {
			if n, err := s.store.TrapsExpire(ctx, now.Add(-s.cfg.Web.DecoySeedTTL.Duration)); err != nil {
				s.log.Warn("expire harvest traps", "err", err)
			} else if n > 0 {
				s.log.Info("harvest traps expired", "count", n)
			}
		}
	}
}

func (s *Server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.smtp {
		b.l.Close()
	}
	s.closeProxyListeners()
	if s.web != nil {
		s.web.Shutdown(context.Background())
	}
	if s.upstream != nil {
		s.upstream.Close()
	}
	if s.relay != nil {
		s.relay.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}
