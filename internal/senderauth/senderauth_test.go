package senderauth

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// spfZone publishes the SPF records of the tests.
func spfZone(t testing.TB, d *testDNS) {
	t.Helper()
	d.add(t,
		`pass.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"`,
		`fail.test. 300 IN TXT "v=spf1 -all"`,
		`softfail.test. 300 IN TXT "v=spf1 ~all"`,
		`neutral.test. 300 IN TXT "v=spf1 ?all"`,
		`none.test. 300 IN A 192.0.2.99`,
		`txtonly.test. 300 IN TXT "site-verification=abc"`,
		`twospf.test. 300 IN TXT "v=spf1 -all"`,
		`twospf.test. 300 IN TXT "v=spf1 +all"`,
		`syntax.test. 300 IN TXT "v=spf1 ip4:300.1.1.1 -all"`,
		`unknown.test. 300 IN TXT "v=spf1 bogus -all"`,
		`temp.test. 300 IN TXT "v=spf1 +all"`,
		`include.test. 300 IN TXT "v=spf1 include:pass.test -all"`,
		`includenx.test. 300 IN TXT "v=spf1 include:nx.test -all"`,
		`redirect.test. 300 IN TXT "v=spf1 redirect=pass.test"`,
		`a.test. 300 IN TXT "v=spf1 a -all"`,
		`a.test. 300 IN A 198.51.100.20`,
		`alabel.test. 300 IN TXT "v=spf1 a:host.alabel.test -all"`,
		`host.alabel.test. 300 IN A 198.51.100.7`,
		`mx.test. 300 IN TXT "v=spf1 mx -all"`,
		`mx.test. 300 IN MX 10 mail.mx.test.`,
		`mail.mx.test. 300 IN A 203.0.113.5`,
		`helo.test. 300 IN TXT "v=spf1 ip4:198.51.100.9 -all"`,
		`xn--wgv71a119e.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
	)
	d.setServfail("temp.test")
}

func TestSPF(t *testing.T) {
	d := newTestDNS(t)
	spfZone(t, d)
	c := &Checker{Resolver: newDNSResolver(d.addr, time.Second), Timeout: 5 * time.Second}

	tests := []struct {
		name, ip, helo, sender string
		want                   SPFResult
		domain                 string
	}{
		{"pass ip4", "192.0.2.10", "mx.example.jp", "taro@pass.test", SPFPass, "pass.test"},
		{"pass ip6", "2001:db8::1", "mx.example.jp", "taro@pass.test", SPFPass, "pass.test"},
		{"pass v4-mapped", "::ffff:192.0.2.10", "mx.example.jp", "taro@pass.test", SPFPass, "pass.test"},
		{"pass case and dot", "192.0.2.10", "mx.example.jp", "Taro@PASS.Test.", SPFPass, "pass.test"},
		{"pass empty local", "192.0.2.10", "mx.example.jp", "@pass.test", SPFPass, "pass.test"},
		{"pass idn", "192.0.2.10", "mx.example.jp", "taro@日本語.test", SPFPass, "xn--wgv71a119e.test"},
		{"fail outside ip4", "198.51.100.1", "mx.example.jp", "taro@pass.test", SPFFail, "pass.test"},
		{"fail -all", "192.0.2.10", "mx.example.jp", "taro@fail.test", SPFFail, "fail.test"},
		{"softfail", "192.0.2.10", "mx.example.jp", "taro@softfail.test", SPFSoftFail, "softfail.test"},
		{"neutral", "192.0.2.10", "mx.example.jp", "taro@neutral.test", SPFNeutral, "neutral.test"},
		{"none no txt", "192.0.2.10", "mx.example.jp", "taro@none.test", SPFNone, "none.test"},
		{"none nxdomain", "192.0.2.10", "mx.example.jp", "taro@nx.test", SPFNone, "nx.test"},
		{"none txt without spf", "192.0.2.10", "mx.example.jp", "taro@txtonly.test", SPFNone, "txtonly.test"},
		{"permerror two records", "192.0.2.10", "mx.example.jp", "taro@twospf.test", SPFPermError, "twospf.test"},
		{"permerror bad ip4", "192.0.2.10", "mx.example.jp", "taro@syntax.test", SPFPermError, "syntax.test"},
		{"permerror unknown mechanism", "192.0.2.10", "mx.example.jp", "taro@unknown.test", SPFPermError, "unknown.test"},
		{"permerror include of none", "192.0.2.10", "mx.example.jp", "taro@includenx.test", SPFPermError, "includenx.test"},
		{"temperror servfail", "192.0.2.10", "mx.example.jp", "taro@temp.test", SPFTempError, "temp.test"},
		{"include pass", "192.0.2.10", "mx.example.jp", "taro@include.test", SPFPass, "include.test"},
		{"include fail", "198.51.100.1", "mx.example.jp", "taro@include.test", SPFFail, "include.test"},
		{"redirect pass", "192.0.2.10", "mx.example.jp", "taro@redirect.test", SPFPass, "redirect.test"},
		{"redirect fail", "198.51.100.1", "mx.example.jp", "taro@redirect.test", SPFFail, "redirect.test"},
		{"a pass", "198.51.100.20", "mx.example.jp", "taro@a.test", SPFPass, "a.test"},
		{"a fail", "198.51.100.21", "mx.example.jp", "taro@a.test", SPFFail, "a.test"},
		{"a:domain pass", "198.51.100.7", "mx.example.jp", "taro@alabel.test", SPFPass, "alabel.test"},
		{"mx pass", "203.0.113.5", "mx.example.jp", "taro@mx.test", SPFPass, "mx.test"},
		{"mx fail", "203.0.113.6", "mx.example.jp", "taro@mx.test", SPFFail, "mx.test"},
		{"null sender helo pass", "198.51.100.9", "helo.test", "", SPFPass, "helo.test"},
		{"null sender helo fail", "198.51.100.10", "HELO.test", "", SPFFail, "helo.test"},
		{"null sender literal helo", "198.51.100.9", "[198.51.100.9]", "", SPFNone, ""},
		{"null sender no helo", "198.51.100.9", "", "", SPFNone, ""},
		{"sender without domain", "192.0.2.10", "helo.test", "taro", SPFNone, ""},
		{"sender bad domain", "192.0.2.10", "helo.test", "taro@exa mple.test", SPFNone, ""},
		{"single-label domain", "192.0.2.10", "helo.test", "taro@localhost", SPFNone, "localhost"},
		{"no client ip", "", "mx.example.jp", "taro@pass.test", SPFPermError, "pass.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			r := c.Check(t.Context(), ip, tt.helo, tt.sender, testMessage("taro@example.jp"))
			if r.SPF != tt.want || r.SPFDomain != tt.domain {
				t.Errorf("SPF = %s for %q (err %v), want %s for %q", r.SPF, r.SPFDomain, r.SPFErr, tt.want, tt.domain)
			}
			if (r.SPFErr != nil) != (tt.want == SPFTempError || tt.want == SPFPermError) {
				t.Errorf("SPFErr = %v with result %s", r.SPFErr, r.SPF)
			}
			if r.SPFFail != (tt.want == SPFFail) {
				t.Errorf("SPFFail = %v with result %s", r.SPFFail, r.SPF)
			}
			if r.Authenticated != (tt.want == SPFPass) {
				t.Errorf("Authenticated = %v with result %s and no DKIM", r.Authenticated, r.SPF)
			}
		})
	}

	t.Run("no lookups without a domain", func(t *testing.T) {
		before := d.total()
		c.Check(t.Context(), netip.MustParseAddr("192.0.2.10"), "", "taro", testMessage("taro@example.jp"))
		if n := d.total() - before; n != 0 {
			t.Errorf("%d DNS queries for a sender without domain", n)
		}
	})
}

func testMessage(from string) []byte {
	return []byte("From: Taro <" + from + ">\r\n" +
		"To: hanako@example.jp\r\n" +
		"Subject: =?UTF-8?B?5pel5pys6Kqe?=\r\n" +
		"Date: Wed, 01 Apr 2026 12:00:00 +0900\r\n" +
		"Message-ID: <20260401120000.1@example.test>\r\n" +
		"\r\n" +
		"Hello.\r\n" +
		"\r\n" +
		"-- \r\n" +
		"Taro\r\n")
}

// sign adds a DKIM-Signature for d= domain, s= selector at the top of msg.
func sign(t testing.TB, msg []byte, domain, selector string, key crypto.Signer) []byte {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: selector, Signer: key})
	if err != nil {
		t.Fatalf("dkim.Sign: %v", err)
	}
	return b.Bytes()
}

// publishKey puts the public half of key at selector._domainkey.domain.
func publishKey(t testing.TB, d *testDNS, selector, domain string, key crypto.Signer) {
	t.Helper()
	var rec string
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		rec = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		rec = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	default:
		t.Fatalf("key type %T", pub)
	}
	d.addTXT(selector+"._domainkey."+domain, 300, rec)
}

func newEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestDKIM(t *testing.T) {
	d := newTestDNS(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edKey := newEd25519(t)
	publishKey(t, d, "rsa", "example.test", rsaKey)
	publishKey(t, d, "ed", "example.test", edKey)
	publishKey(t, d, "ed", "example.co.jp", edKey)
	publishKey(t, d, "ed", "co.jp", edKey)
	publishKey(t, d, "ed", "other.test", edKey)
	publishKey(t, d, "ed", "mail.example.test", edKey)
	publishKey(t, d, "ed", "tempkey.test", edKey)
	d.setServfail("ed._domainkey.tempkey.test")
	d.add(t, `revoked._domainkey.example.test. 300 IN TXT "v=DKIM1; k=ed25519; p="`)
	c := &Checker{Resolver: newDNSResolver(d.addr, time.Second), Timeout: 5 * time.Second}

	msg := testMessage("taro@example.test")
	tamperBody := func(m []byte) []byte { return bytes.Replace(m, []byte("Hello."), []byte("Hello!"), 1) }
	tamperSubject := func(m []byte) []byte {
		return bytes.Replace(m, []byte("Subject: =?UTF-8?B?5pel5pys6Kqe?="), []byte("Subject: win"), 1)
	}

	type sig struct {
		domain string
		status DKIMStatus
	}
	tests := []struct {
		name    string
		sender  string
		msg     []byte
		want    []sig
		aligned string
	}{
		{
			name: "unsigned", sender: "taro@example.test", msg: msg,
		},
		{
			name: "rsa aligned", sender: "taro@example.test",
			msg:     sign(t, msg, "example.test", "rsa", rsaKey),
			want:    []sig{{"example.test", DKIMPass}},
			aligned: "example.test",
		},
		{
			name: "ed25519 aligned", sender: "taro@Example.Test",
			msg:     sign(t, msg, "example.test", "ed", edKey),
			want:    []sig{{"example.test", DKIMPass}},
			aligned: "example.test",
		},
		{
			name: "aligned by organisational domain", sender: "a@mail.example.co.jp",
			msg:     sign(t, msg, "example.co.jp", "ed", edKey),
			want:    []sig{{"example.co.jp", DKIMPass}},
			aligned: "example.co.jp",
		},
		{
			name: "public suffix does not align", sender: "a@example.co.jp",
			msg:  sign(t, msg, "co.jp", "ed", edKey),
			want: []sig{{"co.jp", DKIMPass}},
		},
		{
			name: "valid but unaligned", sender: "taro@example.test",
			msg:  sign(t, msg, "other.test", "ed", edKey),
			want: []sig{{"other.test", DKIMPass}},
		},
		{
			name: "child domain does not vouch for parent", sender: "taro@example.test",
			msg:  sign(t, msg, "mail.example.test", "ed", edKey),
			want: []sig{{"mail.example.test", DKIMPass}},
		},
		{
			name: "null sender never aligns", sender: "",
			msg:  sign(t, msg, "example.test", "ed", edKey),
			want: []sig{{"example.test", DKIMPass}},
		},
		{
			name: "body tampered", sender: "taro@example.test",
			msg:  tamperBody(sign(t, msg, "example.test", "rsa", rsaKey)),
			want: []sig{{"example.test", DKIMFail}},
		},
		{
			name: "signed header tampered", sender: "taro@example.test",
			msg:  tamperSubject(sign(t, msg, "example.test", "ed", edKey)),
			want: []sig{{"example.test", DKIMFail}},
		},
		{
			name: "key missing", sender: "taro@example.test",
			msg:  sign(t, msg, "example.test", "missing", edKey),
			want: []sig{{"example.test", DKIMPermError}},
		},
		{
			name: "key revoked", sender: "taro@example.test",
			msg:  sign(t, msg, "example.test", "revoked", edKey),
			want: []sig{{"example.test", DKIMPermError}},
		},
		{
			name: "key lookup servfail", sender: "taro@tempkey.test",
			msg:  sign(t, msg, "tempkey.test", "ed", edKey),
			want: []sig{{"tempkey.test", DKIMTempError}},
		},
		{
			name: "two signatures one good", sender: "taro@example.test",
			msg:     sign(t, sign(t, msg, "example.test", "ed", edKey), "example.test", "missing", edKey),
			want:    []sig{{"example.test", DKIMPermError}, {"example.test", DKIMPass}},
			aligned: "example.test",
		},
		{
			name: "good unaligned and broken aligned", sender: "taro@example.test",
			msg:  sign(t, tamperBody(sign(t, msg, "example.test", "rsa", rsaKey)), "other.test", "ed", edKey),
			want: []sig{{"other.test", DKIMPass}, {"example.test", DKIMFail}},
		},
		{
			name: "only the first five signatures count", sender: "taro@example.test",
			msg: func() []byte {
				m := sign(t, msg, "example.test", "ed", edKey) // the good one ends up sixth
				for range 5 {
					m = sign(t, m, "example.test", "missing", edKey)
				}
				return m
			}(),
			want: []sig{
				{"example.test", DKIMPermError}, {"example.test", DKIMPermError}, {"example.test", DKIMPermError},
				{"example.test", DKIMPermError}, {"example.test", DKIMPermError},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 198.51.100.1: SPF none everywhere here, so DKIM alone decides.
			r := c.Check(t.Context(), netip.MustParseAddr("198.51.100.1"), "mx.example.test", tt.sender, tt.msg)
			var got []sig
			for _, s := range r.DKIM {
				got = append(got, sig{s.Domain, s.Status})
				if s.Valid != (s.Status == DKIMPass) || (s.Err == nil) != s.Valid {
					t.Errorf("signature %+v: Valid, Status and Err disagree", s)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("DKIM = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("DKIM[%d] = %+v (err %v), want %+v", i, got[i], r.DKIM[i].Err, tt.want[i])
				}
			}
			if r.Aligned != tt.aligned || r.Authenticated != (tt.aligned != "") {
				t.Errorf("Aligned = %q, Authenticated = %v; want %q", r.Aligned, r.Authenticated, tt.aligned)
			}
			if r.SPF != SPFNone {
				t.Errorf("SPF = %s, want none", r.SPF)
			}
		})
	}
}

// TestGate runs every SPF result against every DKIM situation through the DNS server.
func TestGate(t *testing.T) {
	d := newTestDNS(t)
	spfZone(t, d)
	key := newEd25519(t)
	spfs := []struct {
		domain string
		want   SPFResult
	}{
		{"pass.test", SPFPass},
		{"fail.test", SPFFail},
		{"softfail.test", SPFSoftFail},
		{"neutral.test", SPFNeutral},
		{"none.test", SPFNone},
		{"temp.test", SPFTempError},
		{"twospf.test", SPFPermError},
	}
	for _, s := range spfs {
		publishKey(t, d, "gate", s.domain, key)
	}
	publishKey(t, d, "gate", "other.test", key)
	c := &Checker{Resolver: newDNSResolver(d.addr, time.Second), Timeout: 5 * time.Second}

	dkims := []struct {
		name    string
		msg     func(domain string) []byte
		aligned bool
	}{
		{"no dkim", func(string) []byte { return testMessage("x@example.jp") }, false},
		{"aligned dkim", func(dom string) []byte { return sign(t, testMessage("x@"+dom), dom, "gate", key) }, true},
		{"unaligned dkim", func(dom string) []byte { return sign(t, testMessage("x@"+dom), "other.test", "gate", key) }, false},
		{"broken dkim", func(dom string) []byte {
			m := sign(t, testMessage("x@"+dom), dom, "gate", key)
			return bytes.Replace(m, []byte("Hello."), []byte("Buy now."), 1)
		}, false},
	}
	for _, s := range spfs {
		for _, k := range dkims {
			t.Run(string(s.want)+"/"+k.name, func(t *testing.T) {
				sender := "taro@" + s.domain
				r := c.Check(t.Context(), netip.MustParseAddr("192.0.2.10"), "mx.example.jp", sender, k.msg(s.domain))
				wantAuth := s.want == SPFPass || k.aligned
				wantAligned := ""
				if k.aligned {
					wantAligned = s.domain
				}
				if r.SPF != s.want || r.Authenticated != wantAuth || r.SPFFail != (s.want == SPFFail) || r.Aligned != wantAligned {
					t.Errorf("Check = %v (authenticated %v, spf fail %v, aligned %q); want spf=%s authenticated %v aligned %q",
						r, r.Authenticated, r.SPFFail, r.Aligned, s.want, wantAuth, wantAligned)
				}
			})
		}
	}
}

// TestDecide covers the verdict rule without DNS.
func TestDecide(t *testing.T) {
	valid := func(d string) DKIMSig { return DKIMSig{Domain: d, Status: DKIMPass, Valid: true} }
	invalid := func(d string, st DKIMStatus) DKIMSig { return DKIMSig{Domain: d, Status: st} }
	tests := []struct {
		name     string
		spf      SPFResult
		sender   string
		dkim     []DKIMSig
		auth     bool
		aligned  string
		spfFail  bool
		inString string
	}{
		{"spf pass alone", SPFPass, "a@example.jp", nil, true, "", false, "spf=pass smtp.mailfrom=example.jp; dkim=none"},
		{"spf fail alone", SPFFail, "a@example.jp", nil, false, "", true, "spf=fail"},
		{"spf fail with aligned dkim", SPFFail, "a@example.jp", []DKIMSig{valid("example.jp")}, true, "example.jp", true, "dkim=pass header.d=example.jp"},
		{"temperror with aligned dkim", SPFTempError, "a@example.jp", []DKIMSig{valid("example.jp")}, true, "example.jp", false, "spf=temperror"},
		{"permerror alone", SPFPermError, "a@example.jp", nil, false, "", false, "spf=permerror"},
		{"softfail unaligned", SPFSoftFail, "a@example.jp", []DKIMSig{valid("other.test")}, false, "", false, "header.d=other.test"},
		{"first aligned wins", SPFNone, "a@sub.example.jp", []DKIMSig{valid("other.test"), valid("example.jp"), valid("sub.example.jp")}, true, "example.jp", false, ""},
		{"invalid aligned ignored", SPFNeutral, "a@example.jp", []DKIMSig{invalid("example.jp", DKIMFail), invalid("example.jp", DKIMTempError)}, false, "", false, "dkim=temperror"},
		{"null sender", SPFPass, "", []DKIMSig{valid("example.jp")}, true, "", false, ""},
		{"null sender no spf", SPFNone, "", []DKIMSig{valid("example.jp")}, false, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Result{SPF: tt.spf, SPFDomain: "example.jp", DKIM: tt.dkim, Aligned: "stale.test"}
			r.decide(tt.sender)
			if r.Authenticated != tt.auth || r.Aligned != tt.aligned || r.SPFFail != tt.spfFail {
				t.Errorf("decide = authenticated %v aligned %q spf fail %v; want %v %q %v",
					r.Authenticated, r.Aligned, r.SPFFail, tt.auth, tt.aligned, tt.spfFail)
			}
			if !strings.Contains(r.String(), tt.inString) {
				t.Errorf("String() = %q, want it to contain %q", r.String(), tt.inString)
			}
		})
	}
}

// TestCheckDeadline: a DNS server that never answers costs Timeout, not more, and
// authenticates nobody.
func TestCheckDeadline(t *testing.T) {
	addr, _ := blackhole(t)
	key := newEd25519(t)
	c := &Checker{Resolver: newDNSResolver(addr, time.Minute), Timeout: 300 * time.Millisecond}
	msg := sign(t, testMessage("taro@example.test"), "example.test", "ed", key)

	start := time.Now()
	r := c.Check(t.Context(), netip.MustParseAddr("192.0.2.10"), "mx.example.test", "taro@example.test", msg)
	elapsed := time.Since(start)
	if elapsed > 3*time.Second {
		t.Errorf("Check took %v with Timeout 300ms", elapsed)
	}
	if r.SPF != SPFTempError || len(r.DKIM) != 1 || r.DKIM[0].Status != DKIMTempError || r.Authenticated || r.SPFFail {
		t.Errorf("Check against a silent server = %v (authenticated %v); want spf=temperror dkim=temperror", r, r.Authenticated)
	}
}

// TestCheckZero: the zero Checker works (system resolver) and asks nothing it need not.
func TestCheckZero(t *testing.T) {
	var c Checker
	r := c.Check(t.Context(), netip.MustParseAddr("192.0.2.10"), "", "no-domain", testMessage("x@example.jp"))
	if r.SPF != SPFNone || len(r.DKIM) != 0 || r.Authenticated {
		t.Errorf("zero Checker = %v, want spf=none dkim=none", r)
	}
}

// BenchmarkCheck measures a check whose DNS answers are all cached: SPF pass by ip4 and an
// aligned RSA-2048 signature, the common case for a sender seen before.
func BenchmarkCheck(b *testing.B) {
	d := newTestDNS(b)
	spfZone(b, d)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	publishKey(b, d, "rsa", "pass.test", key)
	msg := sign(b, testMessage("taro@pass.test"), "pass.test", "rsa", key)
	c := &Checker{Resolver: newDNSResolver(d.addr, time.Second), Timeout: 5 * time.Second}
	ip := netip.MustParseAddr("192.0.2.10")

	for b.Loop() {
		r := c.Check(b.Context(), ip, "mx.pass.test", "taro@pass.test", msg)
		if !r.Authenticated || r.Aligned != "pass.test" {
			b.Fatalf("Check = %v", r)
		}
	}
	if n := d.total(); n > 2 {
		b.Errorf("%d DNS queries, want 2 (SPF record and key, then the cache)", n)
	}
}
