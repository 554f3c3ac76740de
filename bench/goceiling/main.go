// Command goceiling is the least a Go reverse proxy can do for a keep-alive GET: one
// goroutine per client connection with its own backend connection, the request head and
// the response read with net/http's parsers and written back, no checks, no pool, no
// access log unless -log. It measures what the Go runtime leaves on a machine, so that
// sekisho's HTTP figures can be read against it (see bench/web.sh).
//
//	go run ./bench/goceiling -listen 127.0.0.1:28095 -backend 127.0.0.1:28080 [-log]
package main

import (
	"bufio"
	"context"
	"flag"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:28095", "address to serve")
	backend := flag.String("backend", "127.0.0.1:28080", "HTTP/1.1 backend")
	withLog := flag.Bool("log", false, "one slog text line per request, as sekisho's access log")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	var logger *slog.Logger
	if *withLog {
		logger = slog.New(slog.NewTextHandler(bufio.NewWriterSize(os.Stderr, 64<<10), nil))
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(c, *backend, logger)
	}
}

func serve(c net.Conn, backend string, logger *slog.Logger) {
	defer c.Close()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	cr, br := bufio.NewReader(c), bufio.NewReader(b)
	bw, cw := bufio.NewWriter(b), bufio.NewWriterSize(c, 32<<10)
	for {
		req, err := http.ReadRequest(cr)
		if err != nil {
			return
		}
		start := time.Now()
		req.Header.Del("Connection")
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		bw.WriteString(req.Method + " " + req.RequestURI + " HTTP/1.1\r\nHost: " + req.Host + "\r\n")
		req.Header.Write(bw)
		bw.WriteString("\r\n")
		if bw.Flush() != nil {
			return
		}
		res, err := http.ReadResponse(br, req)
		if err != nil {
			return
		}
		cw.WriteString("HTTP/1.1 " + res.Status + "\r\n")
		res.Header.Del("Connection")
		res.Header.Write(cw)
		cw.WriteString("\r\n")
		n, err := io.Copy(cw, res.Body)
		if err != nil || cw.Flush() != nil {
			return
		}
		if logger != nil {
			logger.LogAttrs(context.Background(), slog.LevelInfo, "access",
				slog.String("proxy", "reverse"), slog.String("client", c.RemoteAddr().String()),
				slog.String("method", req.Method), slog.String("host", req.Host),
				slog.String("target", req.URL.RequestURI()), slog.Int("status", res.StatusCode),
				slog.Int64("bytes", n), slog.Duration("duration", time.Since(start)))
		}
	}
}
