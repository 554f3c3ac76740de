//go:build !linux

package tunnel

import (
	"net"
	"time"
)

func canSplice(a, b net.Conn) bool { return false }

func sinceData(c net.Conn) time.Duration { return 0 }
