package socks5

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"slices"
	"testing"
	"testing/iotest"
)

// appendRequest encodes q as a client sends it.
func appendRequest(b []byte, q request) []byte {
	b = append(b, version5, q.cmd, 0, q.atyp)
	switch q.atyp {
	case atypIPv4:
		a := netip.MustParseAddr(q.host).As4()
		b = append(b, a[:]...)
	case atypIPv6:
		a := netip.MustParseAddr(q.host).As16()
		b = append(b, a[:]...)
	default:
		b = append(b, byte(len(q.host)))
		b = append(b, q.host...)
	}
	return binary.BigEndian.AppendUint16(b, uint16(q.port))
}

func TestReadRequest(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want request
		err  error
	}{
		{"ipv4", []byte{5, 1, 0, 1, 192, 0, 2, 1, 0x01, 0xbb}, request{cmdConnect, atypIPv4, "192.0.2.1", 443}, nil},
		{"ipv6", append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("2001:db8::1").AsSlice()...), 0, 80),
			request{cmdConnect, atypIPv6, "2001:db8::1", 80}, nil},
		{"mapped ipv6 stays as sent", append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("::ffff:127.0.0.1").AsSlice()...), 0, 80),
			request{cmdConnect, atypIPv6, "::ffff:127.0.0.1", 80}, nil},
		{"domain", append([]byte{5, 1, 0, 3, 11}, "example.com\x00\x19"...), request{cmdConnect, atypDomain, "example.com", 25}, nil},
		{"bind", []byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}, request{cmdBind, atypIPv4, "0.0.0.0", 0}, nil},
		{"udp associate", []byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0}, request{cmdUDPAssociate, atypIPv4, "0.0.0.0", 0}, nil},
		{"socks4", []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, request{}, errVersion},
		{"reserved", []byte{5, 1, 1, 1, 1, 2, 3, 4, 0, 80}, request{}, errReserved},
		{"address type", []byte{5, 1, 0, 2, 1, 2, 3, 4, 0, 80}, request{}, errAddrType},
		{"empty domain", []byte{5, 1, 0, 3, 0, 0, 80}, request{}, errEmpty},
		{"short ipv4", []byte{5, 1, 0, 1, 1, 2}, request{}, io.ErrUnexpectedEOF},
		{"short domain", append([]byte{5, 1, 0, 3, 200}, "abc"...), request{}, io.ErrUnexpectedEOF},
		{"no port", []byte{5, 1, 0, 1, 1, 2, 3, 4}, request{}, io.EOF},
		{"empty", nil, request{}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.in)
			got, err := readRequest(iotest.OneByteReader(r))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if err == nil && r.Len() != 0 {
				t.Errorf("%d bytes left unread", r.Len())
			}
		})
	}
}

func TestReadGreetingAndUserPass(t *testing.T) {
	m, err := readGreeting(bytes.NewReader([]byte{5, 2, 0, 2, 0xAA}))
	if err != nil || !slices.Equal(m, []byte{0, 2}) {
		t.Errorf("readGreeting = %v, %v", m, err)
	}
	if _, err := readGreeting(bytes.NewReader([]byte{5, 0})); !errors.Is(err, errNoMethod) {
		t.Errorf("no methods: %v", err)
	}
	if _, err := readGreeting(bytes.NewReader([]byte{4, 1, 0})); !errors.Is(err, errVersion) {
		t.Errorf("socks4: %v", err)
	}
	if _, err := readGreeting(bytes.NewReader([]byte{5, 3, 0})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short: %v", err)
	}

	in := append([]byte{1, 5}, "alice\x06s3cret"...)
	u, p, err := readUserPass(bytes.NewReader(in))
	if err != nil || u != "alice" || p != "s3cret" {
		t.Errorf("readUserPass = %q, %q, %v", u, p, err)
	}
	long := append(append([]byte{1, 255}, bytes.Repeat([]byte{'u'}, 255)...), 255)
	long = append(long, bytes.Repeat([]byte{'p'}, 255)...)
	u, p, err = readUserPass(bytes.NewReader(long))
	if err != nil || len(u) != 255 || len(p) != 255 {
		t.Errorf("longest: %d, %d, %v", len(u), len(p), err)
	}
	if _, _, err := readUserPass(bytes.NewReader([]byte{5, 1, 'a', 1, 'b'})); !errors.Is(err, errUPVer) {
		t.Errorf("wrong version: %v", err)
	}
}

func TestAppendReply(t *testing.T) {
	tests := []struct {
		bnd  netip.AddrPort
		want []byte
	}{
		{netip.MustParseAddrPort("192.0.2.1:1080"), []byte{5, 0, 0, 1, 192, 0, 2, 1, 0x04, 0x38}},
		{netip.MustParseAddrPort("[::ffff:192.0.2.1]:1080"), []byte{5, 0, 0, 1, 192, 0, 2, 1, 0x04, 0x38}},
		{netip.MustParseAddrPort("[2001:db8::1]:1"), append(append([]byte{5, 0, 0, 4}, netip.MustParseAddr("2001:db8::1").AsSlice()...), 0, 1)},
		{netip.AddrPort{}, []byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		if got := appendReply(nil, replySucceeded, tt.bnd); !bytes.Equal(got, tt.want) {
			t.Errorf("appendReply(%v) = %v, want %v", tt.bnd, got, tt.want)
		}
	}
}

func TestChooseMethod(t *testing.T) {
	tests := []struct {
		name          string
		offered       []byte
		refused, auth bool
		want          byte
	}{
		{"none offered, no auth", []byte{0}, false, false, methodNoAuth},
		{"both offered, no auth", []byte{2, 0}, false, false, methodNoAuth},
		{"only user/pass, no auth", []byte{2}, false, false, methodUserPass},
		{"both offered, auth", []byte{0, 2}, false, true, methodUserPass},
		{"only none, auth", []byte{0}, false, true, methodNoAcceptable},
		{"refused: no password asked", []byte{0, 2}, true, true, methodNoAuth},
		{"refused, only user/pass", []byte{2}, true, false, methodNoAcceptable},
		{"gssapi only", []byte{1}, false, false, methodNoAcceptable},
	}
	for _, tt := range tests {
		if got := chooseMethod(tt.offered, tt.refused, tt.auth); got != tt.want {
			t.Errorf("%s: chooseMethod = %#x, want %#x", tt.name, got, tt.want)
		}
	}
}
