package tunnel

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (near, far net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	near, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far = <-accepted
	if far == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { near.Close(); far.Close() })
	return near, far
}

// tunnelled starts a tunnel between two TCP pairs and returns the outer ends: what the
// client and the origin hold.
func tunnelled(t *testing.T, idle time.Duration) (client, origin net.Conn, tun *Tunnel, done chan [2]int64) {
	t.Helper()
	client, proxyClient := tcpPair(t)
	proxyOrigin, origin := tcpPair(t)
	tun = New(proxyClient, proxyOrigin, idle, &BufferPool{Size: 4096})
	done = make(chan [2]int64, 1)
	go func() {
		up, down := tun.Run()
		done <- [2]int64{up, down}
	}()
	return client, origin, tun, done
}

func TestTCPTunnelSplicesOnLinux(t *testing.T) {
	client, origin, tun, done := tunnelled(t, time.Minute)
	if want := runtime.GOOS == "linux"; tun.kernel != want {
		t.Errorf("kernel mode = %v, want %v on %s", tun.kernel, want, runtime.GOOS)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	go func() {
		origin.Write(payload)
		origin.(*net.TCPConn).CloseWrite()
	}()
	io.WriteString(client, "request")
	client.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(client)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("client got %d bytes (%v), want %d", len(got), err, len(payload))
	}
	up, err := io.ReadAll(origin)
	if err != nil || string(up) != "request" {
		t.Fatalf("origin got %q, %v", up, err)
	}
	select {
	case n := <-done:
		if n != [2]int64{7, int64(len(payload))} {
			t.Errorf("Run = %v, want [7 %d]", n, len(payload))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after both half-closes")
	}
	if tun.Idled() {
		t.Error("Idled after a clean end")
	}
}

func TestOneWayTrafficIsNotIdle(t *testing.T) {
	client, origin, tun, done := tunnelled(t, 150*time.Millisecond)
	// The origin trickles a byte every 30 ms for 450 ms; the client never sends.
	go func() {
		for range 15 {
			if _, err := origin.Write([]byte{'x'}); err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	start := time.Now()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(got) != 15 {
		t.Errorf("got %d bytes, want 15: the tunnel closed while bytes still moved", len(got))
	}
	if d := time.Since(start); d < 450*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v, want soon after the origin fell silent", d)
	}
	<-done
	if !tun.Idled() {
		t.Error("Idled = false after the idle timeout closed the tunnel")
	}
}

func TestCloseEndsRun(t *testing.T) {
	_, _, tun, done := tunnelled(t, time.Minute)
	tun.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if tun.Idled() {
		t.Error("Idled after Close")
	}
}

// A buffer that grew, or was cut short, does not come back from the pool at the wrong size.
func TestBufferPoolKeepsItsSize(t *testing.T) {
	p := &BufferPool{Size: 16}
	b := p.Get()
	p.Put(append(b, make([]byte, 100)...)) // grown: dropped
	p.Put(make([]byte, 8))                 // another size: dropped
	p.Put(b[:4])                           // shortened: back at Size
	for range 3 {
		if got := p.Get(); len(got) != 16 || cap(got) != 16 {
			t.Fatalf("Get: len %d cap %d, want 16", len(got), cap(got))
		}
	}
}
