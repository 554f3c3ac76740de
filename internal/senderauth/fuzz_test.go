package senderauth

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// nxResolver answers every question with "no such domain".
type nxResolver struct{}

func nx(name string) error { return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true} }

func (nxResolver) LookupTXT(_ context.Context, name string) ([]string, error) { return nil, nx(name) }
func (nxResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) { return nil, nx(name) }
func (nxResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return nil, nx(host)
}
func (nxResolver) LookupAddr(_ context.Context, addr string) ([]string, error) { return nil, nx(addr) }

// FuzzCheck: arbitrary messages, senders and HELO names never panic, and with an empty
// DNS nothing can authenticate.
func FuzzCheck(f *testing.F) {
	msg := string(testMessage("taro@example.jp"))
	sig := "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.jp; s=s;\r\n" +
		" h=from:to:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
	f.Add([]byte(msg), "taro@example.jp", "mx.example.jp")
	f.Add([]byte(sig+msg), "", "mx.example.jp")
	f.Add([]byte(strings.Repeat(sig, 7)+msg), "@example.jp", "[192.0.2.1]")
	f.Add([]byte("DKIM-Signature: v=1; d=\r\n\r\n"), "a@b@c", "")
	f.Add([]byte("\r\n"), "taro@日本語.jp", "日本語.jp")
	f.Add([]byte("no header end"), "taro@example.jp.", "x")

	c := &Checker{Resolver: nxResolver{}, Timeout: time.Second}
	ip := netip.MustParseAddr("192.0.2.10")
	f.Fuzz(func(t *testing.T, msg []byte, sender, helo string) {
		r := c.Check(t.Context(), ip, helo, sender, msg)
		if r.Authenticated || r.SPFFail || r.Aligned != "" {
			t.Errorf("empty DNS authenticated something: %v (aligned %q)", r, r.Aligned)
		}
		if r.SPF != SPFNone {
			t.Errorf("SPF = %s with no records anywhere, want none", r.SPF)
		}
		if len(r.DKIM) > MaxSignatures {
			t.Errorf("%d signatures checked, limit %d", len(r.DKIM), MaxSignatures)
		}
		for _, s := range r.DKIM {
			if s.Valid || s.Err == nil || s.Status == DKIMPass {
				t.Errorf("signature %+v valid without a key", s)
			}
		}
		_ = r.String()
	})
}

// FuzzParseAnswer: whatever a DNS server sends back, turning it into an answer never panics
// and never keeps it longer than maxCacheTTL.
func FuzzParseAnswer(f *testing.F) {
	for _, rr := range []string{
		`example.jp. 300 IN TXT "v=spf1 -all"`,
		`example.jp. 300 IN CNAME a.example.jp.`,
		`example.jp. 300 IN MX 10 mx.example.jp.`,
		`example.jp. 4294967295 IN TXT "a\"b\\c\200"`,
	} {
		m := new(dns.Msg)
		m.SetQuestion("example.jp.", dns.TypeTXT)
		r, err := dns.NewRR(rr)
		if err != nil {
			f.Fatal(err)
		}
		m.Answer = append(m.Answer, r)
		m.Ns = append(m.Ns, testSOA())
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		resp := new(dns.Msg)
		if resp.Unpack(wire) != nil {
			return
		}
		for _, qtype := range []uint16{dns.TypeTXT, dns.TypeMX, dns.TypeA, dns.TypePTR} {
			e, ok := parseAnswer(resp, "example.jp.", qtype)
			if !ok {
				continue
			}
			if e.ttl < 0 || e.ttl > maxCacheTTL {
				t.Errorf("ttl %v out of range", e.ttl)
			}
			for _, rr := range e.rrs {
				if rr.Header().Rrtype != qtype {
					t.Errorf("record %v answers type %d", rr, qtype)
				}
				if txt, ok := rr.(*dns.TXT); ok {
					for _, s := range txt.Txt {
						_ = unescapeTXT(s)
					}
				}
			}
		}
	})
}
