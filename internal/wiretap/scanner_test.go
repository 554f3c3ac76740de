package wiretap

import (
	"testing"
)

// step is one event of a dialogue, as the scanner sees it.
type step struct {
	client string // bytes read from the client
	err    bool   // a read error
	server string // bytes go-smtp writes
	out    *string
	rcpt   string // call nextRcpt(rcpt)...
	raw    string // ...and expect this path...
	ok     bool   // ...and this ok
}

func str(s string) *string { return &s }

func run(t *testing.T, s *scanner, steps []step) {
	t.Helper()
	for i, st := range steps {
		switch {
		case st.client != "":
			if n, icept := s.client([]byte(st.client), true); icept || n != len(st.client) {
				t.Fatalf("step %d: client() = %d, %v", i, n, icept)
			}
		case st.err:
			s.clientErr()
		case st.server != "":
			out := string(s.reply([]byte(st.server)))
			want := st.server
			if st.out != nil {
				want = *st.out
			}
			if out != want {
				t.Fatalf("step %d: reply(%q) = %q, want %q", i, st.server, out, want)
			}
		default:
			raw, ok := s.nextRcpt(st.rcpt)
			if raw != st.raw || ok != st.ok {
				t.Fatalf("step %d: nextRcpt(%q) = %q, %v; want %q, %v", i, st.rcpt, raw, ok, st.raw, st.ok)
			}
		}
	}
}

func TestScanner(t *testing.T) {
	const greet = "220 mx.test ESMTP\r\n"
	tests := []struct {
		name      string
		advertise bool
		steps     []step
	}{
		{
			name: "rcpt handed out for its own command only",
			steps: []step{
				{server: greet},
				{client: "MAIL FROM:<a@b>\r\nRCPT TO:<@x:y@z> FOO\r\nRCPT TO:<@x:w@z>\r\n"},
				{rcpt: "y@z"}, // go-smtp is at MAIL: nothing yet
				{server: "250 ok\r\n"},
				{server: "500 unknown RCPT argument\r\n"}, // never reached the session
				{rcpt: "w@z", raw: "<@x:w@z>", ok: true},
				{rcpt: "w@z"}, // once only
			},
		},
		{
			name: "processed must match",
			steps: []step{
				{server: greet},
				{client: "RCPT TO:<@x:y@z>\r\n"},
				{rcpt: "other@z"},
			},
		},
		{
			name: "multi-line replies in pieces",
			steps: []step{
				{server: "220-mx.test\r\n22"},
				{server: "0 ESMTP\r\n"},
				{client: "EHLO c\r\nRCPT TO:<a@b>\r\n"},
				{server: "250-Hello c\r\n250-PIPE"},
				{rcpt: "a@b"},
				{server: "LINING\r\n250 SIZE\r"},
				{server: "\n"},
				{rcpt: "a@b", raw: "<a@b>", ok: true},
			},
		},
		{
			name: "partial line then error is a line",
			steps: []step{
				{server: greet},
				{client: "RCPT TO:<@a:b@c>"},
				{err: true},
				{rcpt: "b@c", raw: "<@a:b@c>", ok: true},
			},
		},
		{
			name: "AUTH response not read: no reply to AUTH",
			steps: []step{
				{server: greet},
				{client: "AUTH X\r\n"},
				{server: "334 \r\n"},
				{err: true}, // timeout: go-smtp's handleAuth returns silently
				{client: "RCPT TO:<@x:y@z>\r\n"},
				{rcpt: "y@z", raw: "<@x:y@z>", ok: true},
			},
		},
		{
			name: "AUTH exchange",
			steps: []step{
				{server: greet},
				{client: "AUTH X\r\nRCPT TO:<@x:sasl@z>\r\n"},
				{server: "334 \r\n"},
				{server: "334 \r\n"},
				{client: "RCPT TO:<@x:sasl2@z>\r\nRCPT TO:<@x:y@z>\r\n"},
				{server: "235 ok\r\n"},
				{rcpt: "y@z", raw: "<@x:y@z>", ok: true},
			},
		},
		{
			name: "DATA cut short by a read error",
			steps: []step{
				{server: greet},
				{client: "DATA\r\n"},
				{server: "354 go\r\n"},
				{client: "RCPT TO:<@x:body@z>\r\npartial"},
				{err: true},
				{server: "554 broken\r\n"},
				{client: "RCPT TO:<@x:y@z>\r\n"},
				{rcpt: "y@z", raw: "<@x:y@z>", ok: true},
			},
		},
		{
			name: "read error while waiting for the DATA reply",
			steps: []step{
				{server: greet},
				{client: "DATA\r\nRCPT TO:<@x:y@z>"},
				{err: true},
				{server: "502 no recipients\r\n"},
				{rcpt: "y@z", raw: "<@x:y@z>", ok: true},
			},
		},
		{
			name: "BDAT cut short by a read error",
			steps: []step{
				{server: greet},
				{client: "BDAT 100\r\nRCPT TO:<@x:body@z>\r\n"},
				{err: true},
				{server: "554 broken\r\n"},
				{client: "RCPT TO:<@x:y@z>\r\n"},
				{rcpt: "y@z", raw: "<@x:y@z>", ok: true},
			},
		},
		{
			name: "BDAT refused before its chunk is read",
			steps: []step{
				{server: greet},
				{client: "BDAT 10\r\n"},
				{server: "502 5.5.1 Missing RCPT TO command.\r\n"},
				{client: "RCPT TO:<@"},
				{client: "RCPT TO:<@x:y@z>\r\n"},
				{rcpt: "y@z", raw: "<@x:y@z>", ok: true},
			},
		},
		{
			name: "STARTTLS by go-smtp makes it blind",
			steps: []step{
				{server: greet},
				{client: "STARTTLS\r\n\x16\x03\x01RCPT TO:<@x:y@z>\r\n"},
				{server: "220 go ahead\r\n"},
				{rcpt: "y@z"},
			},
		},
		{
			name: "STARTTLS refused by go-smtp",
			steps: []step{
				{server: greet},
				{client: "STARTTLS\r\nRCPT TO:<@x:y@z>\r\n"},
				{server: "502 no TLS\r\n"},
				{rcpt: "y@z", raw: "<@x:y@z>", ok: true},
			},
		},
		{
			name:      "EHLO gets STARTTLS, HELO not",
			advertise: true,
			steps: []step{
				{server: greet},
				{client: "EHLO c\r\nHELO c\r\nEHLO c\r\n"},
				{server: "250-Hello c\r\n250 SIZE\r\n", out: str("250-Hello c\r\n250-STARTTLS\r\n250 SIZE\r\n")},
				{server: "250 Hello c\r\n"},
				{server: "250-Hello c\r", out: str("250-Hello c\r")},
				{server: "\n250 SIZE\r\n", out: str("\n250-STARTTLS\r\n250 SIZE\r\n")},
			},
		},
		{
			name:      "EHLO refused keeps its reply",
			advertise: true,
			steps: []step{
				{server: greet},
				{client: "EHLO\r\n"},
				{server: "501 5.5.2 Domain/address argument required for HELO\r\n"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run(t, newScanner(0, tt.advertise), tt.steps)
		})
	}
}

func TestScannerIntercept(t *testing.T) {
	s := newScanner(0, true)
	s.reply([]byte("220 hi\r\n"))
	in := []byte("EHLO c\r\nSTARTTLS\r\nRCPT TO:<@x:y@z>\r\n")
	n, icept := s.client(in, true)
	if !icept || string(in[:n]) != "EHLO c\r\n" {
		t.Fatalf("client() = %q, %v; want the EHLO line, true", in[:n], icept)
	}
	if s.readyForTLS() {
		t.Fatal("ready for TLS before EHLO was answered")
	}
	s.reply([]byte("250-Hello\r\n250 SIZE\r\n"))
	if !s.readyForTLS() {
		t.Fatal("not ready for TLS after EHLO was answered")
	}
	s.startedTLS()
	if got := string(s.reply([]byte("250 2.0.0 Session reset\r\n"))); got != "" {
		t.Fatalf("reply to our RSET passed on: %q", got)
	}
	s.client([]byte("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<@x:y@z>\r\n"), true)
	if got := string(s.reply([]byte("250-Hello\r\n250 SIZE\r\n250 ok\r\n"))); got != "250-Hello\r\n250 SIZE\r\n250 ok\r\n" {
		t.Fatalf("EHLO reply after TLS = %q", got)
	}
	if raw, ok := s.nextRcpt("y@z"); !ok || raw != "<@x:y@z>" {
		t.Fatalf("nextRcpt = %q, %v", raw, ok)
	}
}

// FuzzScanner drives the scanner with arbitrary events: it must not panic,
// and what it holds stays bounded.
func FuzzScanner(f *testing.F) {
	f.Add([]byte("\x01\x08220 hi\r\n\x00\x30EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<@x:y@z>\r\n\x03\x03y@z"))
	f.Add([]byte("\x01\x08220 hi\r\n\x04\x20DATA\r\nRCPT TO:<@x:y@z>\r\n.\r\n\r\n\x01\x07354 go\n"))
	f.Add([]byte("\x01\x08220 hi\r\n\x04\x18BDAT 5\r\n12345STARTTLS\r\n\x02\x00\x09\x10EHLO x\r\nSTARTTLS\r\n"))
	f.Add([]byte("\x05\x08220 hi\r\n\x0c\x20AUTH X\r\n=\r\nRCPT TO:a@b\r\n\x01\x06334 \r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		advertise := len(in)%2 == 0
		s := newScanner(int(len(in)%97)+16, advertise)
		for len(in) >= 2 {
			op, n := in[0], int(in[1])
			in = in[2:]
			n = min(n, len(in))
			data := in[:n]
			in = in[n:]
			switch op % 4 {
			case 0:
				k, icept := s.client(data, op&4 != 0)
				if k < 0 || k > len(data) {
					t.Fatalf("client() = %d for %d bytes", k, len(data))
				}
				if icept {
					if op&8 != 0 && s.readyForTLS() {
						s.startedTLS()
					} else {
						s.blind()
					}
				}
			case 1:
				// Only marks change replies, and only advertise makes them.
				if out := s.reply(data); !advertise && string(out) != string(data) {
					t.Fatalf("reply(%q) = %q without STARTTLS", data, out)
				}
			case 2:
				s.clientErr()
			case 3:
				if raw, ok := s.nextRcpt(string(data)); ok {
					if _, processed, ok := rcptPath("TO:" + raw); !ok || processed != string(data) {
						t.Fatalf("nextRcpt(%q) = %q, which go-smtp makes %q", data, raw, processed)
					}
				}
			}
			if len(s.rcpts) > maxPending || len(s.marks) > maxPending ||
				len(s.backlog) > maxBacklog || len(s.line) > s.maxLine {
				t.Fatalf("unbounded: %d rcpts, %d marks, %d backlog, %d line",
					len(s.rcpts), len(s.marks), len(s.backlog), len(s.line))
			}
			for i := 1; i < len(s.rcpts); i++ {
				if s.rcpts[i].idx <= s.rcpts[i-1].idx {
					t.Fatalf("rcpts out of order: %+v", s.rcpts)
				}
			}
		}
	})
}

func TestParseCmd(t *testing.T) {
	tests := []struct{ line, cmd, arg string }{
		{"RCPT TO:<a@b>", "RCPT", "TO:<a@b>"},
		{"rcpt   TO:<a@b>  ", "RCPT", "TO:<a@b>"},
		{"RCPT\tTO:<a@b>", "", ""},
		{"DATA", "DATA", ""},
		{"data \r\r", "", ""},
		{"DATA   ", "DATA", ""},
		{"STARTTLS now", "STARTTLS", ""},
		{"\u017ftarttls", "STARTTLS", ""}, // strings.ToUpper("ſ") == "S"
		{"QUI", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		cmd, arg := parseCmd(tt.line)
		if cmd != tt.cmd || arg != tt.arg {
			t.Errorf("parseCmd(%q) = %q, %q; want %q, %q", tt.line, cmd, arg, tt.cmd, tt.arg)
		}
	}
}
