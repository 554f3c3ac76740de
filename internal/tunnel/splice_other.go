//go:build !linux

package tunnel

import (
	"net"
	"time"
)

func canSplice(a, b net.Conn) bool { return false }

func (t *Tunnel) splice(dst, src net.Conn) int64 { panic("tunnel: splice without Linux") }

func sinceData(c net.Conn) time.Duration { return 0 }
