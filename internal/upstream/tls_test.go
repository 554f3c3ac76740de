package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestSTARTTLS(t *testing.T) {
	pki := newPKI(t)
	stranger := newPKI(t)
	for _, tc := range []struct {
		name      string
		mode      string
		roots     *x509.CertPool
		network   string // tcp4 unless set
		starttls  bool   // the server offers STARTTLS
		host      string // "localhost" instead of the IP address
		wantTLS   bool
		wantError string // "" = delivered
	}{
		{name: "opportunistic", mode: TLSOpportunistic, starttls: true, wantTLS: true},
		{name: "opportunistic without starttls", mode: TLSOpportunistic},
		{name: "none", mode: TLSNone, starttls: true},
		{name: "required", mode: TLSRequired, starttls: true, wantTLS: true},
		{name: "required without starttls", mode: TLSRequired, wantError: "starttls not offered"},
		{name: "verify", mode: TLSVerify, roots: pki.Roots, starttls: true, wantTLS: true},
		{name: "verify ipv6", mode: TLSVerify, roots: pki.Roots, network: "tcp6", starttls: true, wantTLS: true},
		{name: "verify by name", mode: TLSVerify, roots: pki.Roots, host: "localhost", starttls: true, wantTLS: true},
		{name: "verify wrong CA", mode: TLSVerify, roots: stranger.Roots, starttls: true, wantError: "certificate signed by unknown authority"},
		{name: "verify system roots", mode: TLSVerify, starttls: true, wantError: "certificate"},
		{name: "verify without starttls", mode: TLSVerify, roots: pki.Roots, wantError: "starttls not offered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cert *tls.Certificate
			if tc.starttls {
				cert = &pki.Cert
			}
			network := tc.network
			if network == "" {
				network = "tcp4"
			}
			ts := newTestServer(t, network, cert, nil)
			addr := ts.Addr
			if tc.host != "" {
				addr = tc.host + addr[strings.LastIndex(addr, ":"):]
			}
			p := newPool(t, Options{Servers: []string{addr}, TLS: tc.mode, RootCAs: tc.roots})
			_, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
			if tc.wantError != "" {
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("err = %v, want ErrUnavailable with %q", err, tc.wantError)
				}
				if len(ts.messages()) != 0 {
					t.Errorf("message delivered anyway")
				}
				if h := p.Health()[0]; h.Up {
					t.Errorf("health %+v, want down", h)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := ts.messages()
			if len(msgs) != 1 || msgs[0].TLS != tc.wantTLS || msgs[0].Body != testBody {
				t.Fatalf("server got %+v, want one message with TLS %v", msgs, tc.wantTLS)
			}
			// The session after STARTTLS is reused as such.
			if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
				t.Fatalf("second Send: %v", err)
			}
			if msgs := ts.messages(); ts.connCount() != 1 || msgs[1].TLS != tc.wantTLS {
				t.Errorf("%d connections, second message TLS %v", ts.connCount(), msgs[1].TLS)
			}
		})
	}
}

func TestSTARTTLSFailover(t *testing.T) {
	pki := newPKI(t)
	stranger := newPKI(t)
	for _, tc := range []struct {
		name  string
		mode  string
		first *tls.Certificate // the first server's certificate; nil: no STARTTLS
	}{
		{"required, first without starttls", TLSRequired, nil},
		{"verify, first with an unknown CA", TLSVerify, &stranger.Cert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestServer(t, "tcp4", tc.first, nil)
			b := newTestServer(t, "tcp4", &pki.Cert, nil)
			p := newPool(t, Options{Servers: []string{a.Addr, b.Addr}, Balance: BalanceOrdered, TLS: tc.mode, RootCAs: pki.Roots})
			res, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
			if err != nil || res.Server != b.Addr {
				t.Fatalf("Send = %+v, %v; want delivery by %s", res, err, b.Addr)
			}
			if msgs := b.messages(); len(msgs) != 1 || !msgs[0].TLS {
				t.Errorf("second server got %+v, want one message over TLS", msgs)
			}
			if len(a.messages()) != 0 || a.dataCount() != 0 {
				t.Errorf("first server got the message")
			}
			if h := p.Health(); h[0].Up || !h[1].Up {
				t.Errorf("health %+v, want the first down, the second up", h)
			}
		})
	}
}

// Under "opportunistic" a failed handshake is followed by a plain text
// session rather than a failure.
func TestSTARTTLSHandshakeFailure(t *testing.T) {
	broken := func(_ *testServer, s *smtp.Server) {
		s.TLSConfig = &tls.Config{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return nil, errors.New("no certificate today")
			},
		}
	}
	t.Run("opportunistic", func(t *testing.T) {
		ts := newTestServer(t, "tcp4", nil, broken)
		p := newPool(t, Options{Servers: []string{ts.Addr}, TLS: TLSOpportunistic})
		if _, err := p.Send(t.Context(), testEnvelope(), []byte(testBody)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if msgs := ts.messages(); len(msgs) != 1 || msgs[0].TLS {
			t.Errorf("server got %+v, want one message in plain text", msgs)
		}
		if ts.connCount() != 2 {
			t.Errorf("%d connections, want 2 (TLS, then plain)", ts.connCount())
		}
		if h := p.Health()[0]; !h.Up || h.Failures != 0 {
			t.Errorf("health %+v", h)
		}
	})
	t.Run("required", func(t *testing.T) {
		ts := newTestServer(t, "tcp4", nil, broken)
		p := newPool(t, Options{Servers: []string{ts.Addr}, TLS: TLSRequired})
		_, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "tls handshake") {
			t.Fatalf("err = %v, want ErrUnavailable after the handshake", err)
		}
		if len(ts.messages()) != 0 {
			t.Errorf("message sent without TLS")
		}
	})
}

func TestSTARTTLSRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mode      string
		reply     string
		wantError string // "" = delivered in plain text
	}{
		{"opportunistic", TLSOpportunistic, "454 4.7.0 TLS not available", ""},
		{"required", TLSRequired, "454 4.7.0 TLS not available", "starttls: SMTP error 454"},
		// CVE-2011-0411: a reply injected after the 220 would be taken for
		// the server's answer inside TLS.
		{"injected reply", TLSOpportunistic, "220 2.0.0 ready\r\n250 2.0.0 injected", "data after the 220 reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRawServer(t, "PIPELINING", "STARTTLS")
			rs.set("STARTTLS", tc.reply)
			p := newPool(t, Options{Servers: []string{rs.Addr}, TLS: tc.mode})
			_, err := p.Send(t.Context(), testEnvelope(), []byte(testBody))
			if tc.wantError == "" {
				if err != nil || len(rs.messages()) != 1 {
					t.Fatalf("Send: %v; %d messages", err, len(rs.messages()))
				}
				return
			}
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.wantError) {
				t.Fatalf("err = %v, want ErrUnavailable with %q", err, tc.wantError)
			}
			if len(rs.messages()) != 0 || len(rs.commands("MAIL")) != 0 {
				t.Errorf("transaction started anyway")
			}
		})
	}
}
