package smtpproxy

import (
	"crypto/tls"
	"net"

	"github.com/sekisho/sekisho/internal/wiretap"
)

// tapListener wraps every accepted connection in a wiretap.Conn, which records the raw RCPT
// paths (go-smtp normalises them away) and owns TLS: STARTTLS is answered by the tap, and an
// implicit-TLS connection is wrapped after its tls.Server. go-smtp never does TLS itself.
type tapListener struct {
	net.Listener
	lc Listener
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	switch l.lc.TLS {
	case "implicit":
		return wiretap.New(tls.Server(c, l.lc.TLSConfig)), nil
	case "starttls":
		return wiretap.NewWithOptions(c, wiretap.Options{StartTLS: l.lc.TLSConfig}), nil
	}
	return wiretap.New(c), nil
}

// findTap returns the wiretap of a connection accepted by tapListener.
func findTap(c net.Conn) *wiretap.Conn {
	t, _ := c.(*wiretap.Conn)
	return t
}
