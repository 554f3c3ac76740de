package senderauth_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/sekisho/sekisho/internal/senderauth"
)

// The SMTP session builds one Checker from [dns] and asks it once per message, after DATA.
func ExampleChecker_Check() {
	res, err := senderauth.NewResolver("127.0.0.1:53", 5*time.Second) // [dns] resolver, timeout
	if err != nil {
		fmt.Println(err)
		return
	}
	c := &senderauth.Checker{Resolver: res, Timeout: 5 * time.Second}

	msg := []byte("From: <taro@example.jp>\r\nSubject: hello\r\n\r\nHello.\r\n")
	r := c.Check(context.Background(), netip.MustParseAddr("192.0.2.10"), "mx.example.jp", "taro@example.jp", msg)
	switch {
	case r.SPFFail:
		fmt.Println("forged: a WHITE or RELAY match does not count;", r)
	case r.Authenticated:
		fmt.Println("may be challenged;", r)
	default:
		fmt.Println("held silently;", r)
	}
}
