package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/internal/netacl"
)

// Conns counts the connections of one SMTP listener role. The zero Conns counts nothing.
type Conns struct {
	total  prometheus.Counter
	active prometheus.Gauge
}

// SMTPConns returns the connection counters of listeners with role ("mx", "submission").
func (m *Metrics) SMTPConns(role string) Conns {
	if m == nil {
		return Conns{}
	}
	return Conns{total: m.smtpConns.WithLabelValues(role), active: m.smtpActive}
}

// Opened counts a connection accepted; Closed must follow once when it closes.
func (c Conns) Opened() {
	if c.total != nil {
		c.total.Inc()
		c.active.Inc()
	}
}

// Closed counts a connection closed.
func (c Conns) Closed() {
	if c.active != nil {
		c.active.Dec()
	}
}

// Sends counts the messages handed to one upstream SMTP server. The zero Sends counts
// nothing.
type Sends struct {
	ok, refused, failed, unconfirmed prometheus.Counter
}

// UpstreamSends returns the send counters of the upstream server addr.
func (m *Metrics) UpstreamSends(addr string) Sends {
	if m == nil {
		return Sends{}
	}
	return Sends{
		ok:          m.upstreamSends.WithLabelValues(addr, "ok"),
		refused:     m.upstreamSends.WithLabelValues(addr, "refused"),
		failed:      m.upstreamSends.WithLabelValues(addr, "failed"),
		unconfirmed: m.upstreamSends.WithLabelValues(addr, "unconfirmed"),
	}
}

// OK counts a message the server accepted.
func (s Sends) OK() { inc(s.ok) }

// Refused counts a message the server refused with a reply of its own.
func (s Sends) Refused() { inc(s.refused) }

// Failed counts an attempt that failed before the message was handed over (connection,
// TLS, 4xx to MAIL or DATA): the server is taken out for a while.
func (s Sends) Failed() { inc(s.failed) }

// Unconfirmed counts a message sent without a final reply.
func (s Sends) Unconfirmed() { inc(s.unconfirmed) }

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

// The names of the proxy label.
const (
	ProxyHTTP    = "http"    // HTTP forward proxy
	ProxySocks   = "socks"   // SOCKS5
	ProxyReverse = "reverse" // web routes with upstreams
	ProxyStatic  = "static"  // web routes with a root
	ProxyWeb     = "web"     // the web listeners before routing (refusals only)
)

// Proxy counts the requests of one kind of proxy. A nil *Proxy counts nothing.
type Proxy struct {
	methods  map[string]prometheus.Counter // by method as sent, label lower case
	other    prometheus.Counter
	in, out  prometheus.Counter
	refusals map[string]prometheus.Counter // by reason as the modules name it
	vec      *prometheus.CounterVec
	name     string
}

// requestMethods are the method label values; any other method counts as "other", so that
// a client cannot make series at will. The SOCKS commands are "connect", "bind" and
// "udp_associate"; "none" is a session refused before its request.
func requestMethods() []string {
	return []string{
		"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "PATCH", "TRACE",
		"BIND", "UDP_ASSOCIATE", "NONE",
	}
}

// refusalLabels maps the refusal reasons of package netacl and of the web listeners to the
// reason label.
func refusalLabels() map[string]string {
	return map[string]string{
		string(netacl.ReasonBlack):        "black_ip",
		"black-ip":                        "black_ip",
		string(netacl.ReasonClient):       "not_allowed",
		string(netacl.ReasonAuthRequired): "auth",
		string(netacl.ReasonAuthFailed):   "auth",
		string(netacl.ReasonMailPort):     "mail_port",
		string(netacl.ReasonPort):         "port",
		string(netacl.ReasonDenyHost):     "deny_host",
		string(netacl.ReasonDenyNetwork):  "deny_network",
		string(netacl.ReasonLoop):         "loop",
		string(netacl.ReasonBadRequest):   "bad_request",
		string(netacl.ReasonUnsupported):  "unsupported",
		"proxy-probe":                     "proxy_probe",
	}
}

// Proxy returns the counters of one kind of proxy (ProxyHTTP, ...), every series resolved
// now. It returns nil when m is nil.
func (m *Metrics) Proxy(name string) *Proxy {
	if m == nil {
		return nil
	}
	p := &Proxy{
		methods:  map[string]prometheus.Counter{},
		other:    m.proxyRequests.WithLabelValues(name, "other"),
		in:       m.proxyBytes.WithLabelValues(name, "in"),
		out:      m.proxyBytes.WithLabelValues(name, "out"),
		refusals: map[string]prometheus.Counter{},
		vec:      m.proxyRefusals,
		name:     name,
	}
	for _, meth := range requestMethods() {
		p.methods[meth] = m.proxyRequests.WithLabelValues(name, strings.ToLower(meth))
	}
	for reason, label := range refusalLabels() {
		p.refusals[reason] = m.proxyRefusals.WithLabelValues(name, label)
	}
	return p
}

// Request counts one request with its method (an HTTP method, or a SOCKS command in upper
// case).
func (p *Proxy) Request(method string) {
	if p == nil {
		return
	}
	if c, ok := p.methods[method]; ok {
		c.Inc()
		return
	}
	p.other.Inc()
}

// Bytes counts bytes relayed: in from the client, out to it.
func (p *Proxy) Bytes(in, out int64) {
	if p == nil {
		return
	}
	if in > 0 {
		p.in.Add(float64(in))
	}
	if out > 0 {
		p.out.Add(float64(out))
	}
}

// Refused counts a refusal, by a reason of package netacl ("mail-port", ...) or of the web
// listeners ("black-ip", "proxy-probe"); another reason counts as "other".
func (p *Proxy) Refused(reason string) {
	if p == nil {
		return
	}
	if c, ok := p.refusals[reason]; ok {
		c.Inc()
		return
	}
	p.vec.WithLabelValues(p.name, "other").Inc()
}
