package smtpproxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/internal/metrics"
	"github.com/sekisho/sekisho/internal/policy"
)

// gateListener refuses blacklisted clients before go-smtp greets them (SPEC §4 stage 1):
// go-smtp always greets with 220, so a refused client is answered here instead and never
// reaches the SMTP server.
type gateListener struct {
	net.Listener
	p     *Proxy
	conns metrics.Conns // every connection is counted, refused ones too
}

func (g *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		g.conns.Opened()
		c = &countedConn{Conn: c, conns: g.conns}
		ip := clientIP(c)
		st := g.p.settings()
		reply, ok := policy.Connect(g.p.deps.Lists.BlackIP(ip, g.p.now()), st.BlackAction)
		if ok {
			return c, nil
		}
		g.p.log.Info("smtp connection refused", "client", ip, "reason", policy.ReasonBlackIP, "reply", reply.Code)
		g.p.refused.Go(func() { refuse(c, st.Hostname, reply) })
	}
}

// countedConn counts its close in the active connections gauge, once.
type countedConn struct {
	net.Conn
	conns metrics.Conns
	once  sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(c.conns.Closed)
	return c.Conn.Close()
}

// refuse greets with reply and then accepts only QUIT, for a short while.
func refuse(c net.Conn, hostname string, reply policy.Reply) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	e := reply.Enhanced
	fmt.Fprintf(c, "%d %d.%d.%d %s %s\r\n", reply.Code, e[0], e[1], e[2], hostname, reply.Text)
	if reply.Code == 421 {
		return // 421 closes the connection (RFC 5321 §3.8)
	}
	r := bufio.NewReaderSize(c, 1024)
	for range 20 {
		line, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(string(line)))
		if cmd == "QUIT" {
			fmt.Fprintf(c, "221 2.0.0 Bye\r\n")
			return
		}
		fmt.Fprintf(c, "%d %d.%d.%d %s\r\n", reply.Code, e[0], e[1], e[2], reply.Text)
	}
}
