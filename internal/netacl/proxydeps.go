package netacl

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// ProxyDeps are the parts a proxy that must never be open (the HTTP forward proxy, SOCKS5)
// works with.
type ProxyDeps struct {
	Lists       Lists       // required
	Users       Users       // required when the proxy asks for authentication
	Blacklister Blacklister // nil: probes are refused, counted and logged only
	Logger      *slog.Logger
	Now         func() time.Time
	// Resolver and Dial reach destinations; nil: the system resolver and a net.Dialer. Dial
	// only ever gets address literals that the rules allowed.
	Resolver Resolver
	Dial     DialFunc
}

// Prepared is ProxyDeps checked and completed: defaults filled in, the Dialer that applies
// the rules after name resolution, this host's own addresses (never a destination), and
// the Authenticator (nil without Users).
type Prepared struct {
	ProxyDeps
	Dialer Dialer
	Self   Self
	Auth   *Authenticator
}

// Prepare checks d for a proxy (auth: it authenticates its clients) and completes it.
func (d ProxyDeps) Prepare(auth bool) (Prepared, error) {
	if d.Lists == nil {
		return Prepared{}, errors.New("Deps.Lists is required")
	}
	if auth && d.Users == nil {
		return Prepared{}, errors.New("auth needs Deps.Users")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Resolver == nil {
		d.Resolver = &net.Resolver{}
	}
	if d.Dial == nil {
		d.Dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	local, err := LocalAddrs()
	if err != nil {
		return Prepared{}, err
	}
	p := Prepared{ProxyDeps: d, Dialer: Dialer{Resolver: d.Resolver, Dial: d.Dial}, Self: Self{Addrs: local}}
	if d.Users != nil {
		p.Auth = NewAuthenticator(d.Users, 0, d.Now)
	}
	return p, nil
}
