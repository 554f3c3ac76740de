package socks5

import (
	"bytes"
	"io"
	"net/netip"
	"testing"
	"testing/iotest"
)

// countingReader counts the bytes a parser takes.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzReadRequest: the request parser never panics, never takes more than one request's
// worth of bytes (nor, on success, any byte after the request: whatever the client sends
// next belongs to the tunnel), and what it parses encodes back to exactly what it took.
func FuzzReadRequest(f *testing.F) {
	seeds := [][]byte{
		appendRequest(nil, request{cmdConnect, atypIPv4, "192.0.2.1", 443}),
		appendRequest(nil, request{cmdConnect, atypIPv6, "2001:db8::1", 443}),
		appendRequest(nil, request{cmdConnect, atypDomain, "example.com", 25}),
		appendRequest(nil, request{cmdUDPAssociate, atypDomain, string(bytes.Repeat([]byte{'a'}, 255)), 65535}),
		append(appendRequest(nil, request{cmdConnect, atypIPv4, "127.0.0.1", 22}), "SSH-2.0-after"...),
		{5, 1, 0, 3, 0, 0, 80},
		{5, 1, 0, 9},
		{5, 1, 1, 1},
		{4, 1, 0, 80, 127, 0, 0, 1, 'u', 0},
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, oneByte := range []bool{false, true} {
			cr := &countingReader{r: bytes.NewReader(data)}
			var r io.Reader = cr
			if oneByte {
				r = iotest.OneByteReader(cr)
			}
			q, err := readRequest(r)
			if cr.n > maxRequest {
				t.Fatalf("read %d bytes, more than a request (%d)", cr.n, maxRequest)
			}
			if err != nil {
				if q != (request{}) {
					t.Fatalf("error %v with a request %+v", err, q)
				}
				continue
			}
			enc := appendRequest(nil, q)
			if !bytes.Equal(enc, data[:cr.n]) {
				t.Fatalf("took %x, parsed %+v, which encodes to %x", data[:cr.n], q, enc)
			}
			if q.atyp != atypDomain {
				if _, err := netip.ParseAddr(q.host); err != nil {
					t.Fatalf("address %q does not parse: %v", q.host, err)
				}
			}
			if q.port < 0 || q.port > 65535 {
				t.Fatalf("port %d", q.port)
			}
		}
	})
}

// FuzzHandshake feeds one byte stream through the server's parsers in order (greeting,
// username/password, request): none panics or takes more than its message.
func FuzzHandshake(f *testing.F) {
	f.Add(append([]byte{5, 2, 0, 2, 1, 5, 'a', 'l', 'i', 'c', 'e', 2, 'p', 'w'},
		appendRequest(nil, request{cmdConnect, atypDomain, "example.com", 443})...))
	f.Add([]byte{5, 1, 0})
	f.Add([]byte{5, 255})
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		methods, err := readGreeting(cr)
		if cr.n > maxGreeting {
			t.Fatalf("greeting took %d bytes", cr.n)
		}
		if err != nil {
			return
		}
		if cr.n != 2+len(methods) {
			t.Fatalf("greeting took %d bytes for %d methods", cr.n, len(methods))
		}
		before := cr.n
		user, pass, err := readUserPass(cr)
		if cr.n-before > maxUserPass {
			t.Fatalf("username/password took %d bytes", cr.n-before)
		}
		if err != nil {
			return
		}
		if cr.n-before != 3+len(user)+len(pass) {
			t.Fatalf("username/password took %d bytes for %d+%d", cr.n-before, len(user), len(pass))
		}
		before = cr.n
		readRequest(cr)
		if cr.n-before > maxRequest {
			t.Fatalf("request took %d bytes", cr.n-before)
		}
	})
}
