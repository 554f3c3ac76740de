package senderauth

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// testDNS is an authoritative DNS server on 127.0.0.1 (UDP and TCP, one port) serving a
// zone built by the test, with knobs for failures and counters of what it was asked.
type testDNS struct {
	addr string

	mu       sync.Mutex
	zone     map[string][]dns.RR // by lowercase FQDN
	servfail map[string]bool     // answer SERVFAIL for these names
	truncate map[string]bool     // answer over UDP with TC set and nothing else
	wrongQ   map[string]bool     // answer with a different question section
	udp, tcp map[string]int      // queries received, by "name TYPE"
}

func newTestDNS(t testing.TB) *testDNS {
	t.Helper()
	d := &testDNS{
		zone:     make(map[string][]dns.RR),
		servfail: make(map[string]bool),
		truncate: make(map[string]bool),
		wrongQ:   make(map[string]bool),
		udp:      make(map[string]int),
		tcp:      make(map[string]int),
	}
	pc, l := listenUDPTCP(t)
	d.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: d},
		{Listener: l, Handler: d},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
	return d
}

// listenUDPTCP binds UDP and TCP on the same free port of 127.0.0.1.
func listenUDPTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		return pc, l
	}
	t.Fatal("no port free for both UDP and TCP")
	return nil, nil
}

// add parses records in zone-file syntax: `name. 300 IN TXT "v=spf1 -all"`.
func (d *testDNS) add(t testing.TB, records ...string) {
	t.Helper()
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad test record %q: %v", s, err)
		}
		d.addRR(rr)
	}
}

func (d *testDNS) addRR(rr dns.RR) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := strings.ToLower(rr.Header().Name)
	d.zone[name] = append(d.zone[name], rr)
}

// addTXT publishes a TXT record of any length, cut into 255-octet strings.
func (d *testDNS) addTXT(name string, ttl uint32, text string) {
	var parts []string
	for len(text) > 255 {
		parts = append(parts, text[:255])
		text = text[255:]
	}
	parts = append(parts, text)
	d.addRR(&dns.TXT{
		Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
		Txt: parts,
	})
}

func (d *testDNS) setServfail(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.servfail[dns.Fqdn(strings.ToLower(name))] = true
}

func (d *testDNS) setTruncate(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.truncate[dns.Fqdn(strings.ToLower(name))] = true
}

func (d *testDNS) setWrongQuestion(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wrongQ[dns.Fqdn(strings.ToLower(name))] = true
}

// queries returns how many times "name TYPE" was asked over UDP and over TCP.
func (d *testDNS) queries(name string, qtype uint16) (udp, tcp int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := dns.Fqdn(strings.ToLower(name)) + " " + dns.TypeToString[qtype]
	return d.udp[k], d.tcp[k]
}

// total returns how many queries were received in all.
func (d *testDNS) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.udp {
		n += c
	}
	for _, c := range d.tcp {
		n += c
	}
	return n
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	_, overTCP := w.LocalAddr().(*net.TCPAddr)

	d.mu.Lock()
	k := name + " " + dns.TypeToString[q.Qtype]
	if overTCP {
		d.tcp[k]++
	} else {
		d.udp[k]++
	}
	servfail, truncate, wrongQ := d.servfail[name], d.truncate[name], d.wrongQ[name]
	answer, nx := d.resolve(name, q.Qtype)
	d.mu.Unlock()

	switch {
	case servfail:
		m.Rcode = dns.RcodeServerFailure
	case truncate && !overTCP:
		m.Truncated = true
	case nx:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{testSOA()}
	case len(answer) == 0:
		m.Ns = []dns.RR{testSOA()}
	default:
		m.Answer = answer
	}
	if wrongQ {
		m.Question[0].Name = "elsewhere.test."
	}
	w.WriteMsg(m)
}

// resolve finds the records of qtype at name, following CNAMEs; d.mu is held.
func (d *testDNS) resolve(name string, qtype uint16) (answer []dns.RR, nx bool) {
	for range 8 {
		rrs, ok := d.zone[name]
		if !ok {
			return answer, len(answer) == 0
		}
		var next string
		for _, rr := range rrs {
			switch {
			case rr.Header().Rrtype == qtype:
				answer = append(answer, rr)
			case rr.Header().Rrtype == dns.TypeCNAME:
				answer = append(answer, rr)
				next = strings.ToLower(rr.(*dns.CNAME).Target)
			}
		}
		if next == "" || qtype == dns.TypeCNAME {
			return answer, false
		}
		name = next
	}
	return answer, false
}

func testSOA() dns.RR {
	rr, err := dns.NewRR("test. 60 IN SOA ns.test. admin.test. 1 3600 600 86400 60")
	if err != nil {
		panic(err)
	}
	return rr
}
