package smtpproxy

import (
	"crypto/tls"
	"math"
	"net"

	"github.com/sekisho/sekisho/internal/wiretap"
)

// tapListener wraps every accepted connection in a wiretap.Conn, which records the raw RCPT
// paths (go-smtp normalises them away) and owns TLS: STARTTLS is answered by the tap, and an
// implicit-TLS connection is wrapped after its tls.Server. go-smtp never does TLS itself.
// The tap also captures DATA content (wiretap.Options.CaptureData), which go-smtp would
// read one byte at a time: Session.Data takes the message with TakeMessage.
type tapListener struct {
	net.Listener
	lc         Listener
	maxMessage int64 // go-smtp's Server.MaxMessageBytes; 0: no limit
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	opts := wiretap.Options{CaptureData: l.maxMessage}
	if opts.CaptureData <= 0 {
		opts.CaptureData = math.MaxInt64
	}
	switch l.lc.TLS {
	case "implicit":
		c = tls.Server(c, l.lc.TLSConfig)
	case "starttls":
		opts.StartTLS = l.lc.TLSConfig
	}
	return wiretap.NewWithOptions(c, opts), nil
}

// findTap returns the wiretap of a connection accepted by tapListener.
func findTap(c net.Conn) *wiretap.Conn {
	t, _ := c.(*wiretap.Conn)
	return t
}
