package tunnel

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// canSplice reports whether both ends are TCP sockets, so that io.Copy between them uses
// splice(2) and the idle timer can ask the kernel for the sockets' last activity.
func canSplice(a, b net.Conn) bool {
	_, okA := a.(*net.TCPConn)
	_, okB := b.(*net.TCPConn)
	return okA && okB && sinceData(a) != unknownQuiet && sinceData(b) != unknownQuiet
}

// unknownQuiet is what sinceData answers when the kernel cannot tell: never idle.
const unknownQuiet = time.Duration(-1)

// sinceData is how long ago c last sent or received data, from TCP_INFO.
func sinceData(c net.Conn) time.Duration {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return unknownQuiet
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return unknownQuiet
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || ierr != nil {
		return unknownQuiet
	}
	ms := min(info.Last_data_recv, info.Last_data_sent)
	return time.Duration(ms) * time.Millisecond
}
