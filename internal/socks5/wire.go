package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Protocol constants of RFC 1928 and RFC 1929.
const (
	version5        = 0x05
	userPassVersion = 0x01

	methodNoAuth       = 0x00
	methodUserPass     = 0x02
	methodNoAcceptable = 0xFF

	cmdConnect      = 0x01
	cmdBind         = 0x02
	cmdUDPAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// Reply codes (RFC 1928 §6).
const (
	replySucceeded          = 0x00
	replyGeneralFailure     = 0x01
	replyNotAllowed         = 0x02
	replyNetworkUnreachable = 0x03
	replyHostUnreachable    = 0x04
	replyConnectionRefused  = 0x05
	replyTTLExpired         = 0x06
	replyCmdNotSupported    = 0x07
	replyAddrNotSupported   = 0x08
)

// Largest messages a client sends; the parsers never read more than these.
const (
	maxGreeting = 2 + 255         // VER NMETHODS METHODS
	maxUserPass = 3 + 255 + 255   // VER ULEN UNAME PLEN PASSWD
	maxRequest  = 4 + 1 + 255 + 2 // VER CMD RSV ATYP, domain length and name, port
)

// Parse errors. errAddrType is answered with reply 0x08; the others end the connection.
var (
	errVersion  = errors.New("socks5: not SOCKS version 5")
	errNoMethod = errors.New("socks5: greeting offers no method")
	errReserved = errors.New("socks5: reserved byte not zero")
	errAddrType = errors.New("socks5: address type not supported")
	errEmpty    = errors.New("socks5: empty domain name")
	errUPVer    = errors.New("socks5: not username/password version 1")
)

// readGreeting reads the version identifier/method selection message and returns the
// methods offered. It reads exactly the message's bytes.
func readGreeting(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != version5 {
		return nil, errVersion
	}
	if hdr[1] == 0 {
		return nil, errNoMethod
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, err
	}
	return methods, nil
}

// readUserPass reads the RFC 1929 username/password request. An empty name or password
// is read as such; it fails authentication, not parsing.
func readUserPass(r io.Reader) (user, pass string, err error) {
	var b [256]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return "", "", err
	}
	if b[0] != userPassVersion {
		return "", "", errUPVer
	}
	n := int(b[1])
	if _, err := io.ReadFull(r, b[:n+1]); err != nil {
		return "", "", err
	}
	user = string(b[:n])
	n = int(b[n])
	if _, err := io.ReadFull(r, b[:n]); err != nil {
		return "", "", err
	}
	return user, string(b[:n]), nil
}

// request is a SOCKS request (RFC 1928 §4).
type request struct {
	cmd  byte
	atyp byte
	host string // an IP address in text form, or the domain name as sent
	port int
}

// target is host:port as it appears in logs.
func (q request) target() string {
	if q.atyp == atypIPv6 {
		return fmt.Sprintf("[%s]:%d", q.host, q.port)
	}
	return fmt.Sprintf("%s:%d", q.host, q.port)
}

// readRequest reads a request. It reads exactly the message's bytes, except after an
// unknown address type (errAddrType), when the rest of the message cannot be told.
func readRequest(r io.Reader) (request, error) {
	var b [255]byte
	if _, err := io.ReadFull(r, b[:4]); err != nil {
		return request{}, err
	}
	if b[0] != version5 {
		return request{}, errVersion
	}
	if b[2] != 0 {
		return request{}, errReserved
	}
	q := request{cmd: b[1], atyp: b[3]}
	switch q.atyp {
	case atypIPv4:
		if _, err := io.ReadFull(r, b[:4]); err != nil {
			return request{}, err
		}
		q.host = netip.AddrFrom4([4]byte(b[:4])).String()
	case atypIPv6:
		if _, err := io.ReadFull(r, b[:16]); err != nil {
			return request{}, err
		}
		q.host = netip.AddrFrom16([16]byte(b[:16])).String()
	case atypDomain:
		if _, err := io.ReadFull(r, b[:1]); err != nil {
			return request{}, err
		}
		n := int(b[0])
		if n == 0 {
			return request{}, errEmpty
		}
		if _, err := io.ReadFull(r, b[:n]); err != nil {
			return request{}, err
		}
		q.host = string(b[:n])
	default:
		return request{}, errAddrType
	}
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return request{}, err
	}
	q.port = int(binary.BigEndian.Uint16(b[:2]))
	return q, nil
}

// appendReply encodes a reply (RFC 1928 §6) with the bound address bnd; an invalid bnd is
// sent as 0.0.0.0:0.
func appendReply(b []byte, rep byte, bnd netip.AddrPort) []byte {
	b = append(b, version5, rep, 0)
	ip := bnd.Addr().Unmap()
	switch {
	case ip.Is4():
		a := ip.As4()
		b = append(b, atypIPv4)
		b = append(b, a[:]...)
	case ip.Is6():
		a := ip.As16()
		b = append(b, atypIPv6)
		b = append(b, a[:]...)
	default:
		b = append(b, atypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(b, bnd.Port())
}
