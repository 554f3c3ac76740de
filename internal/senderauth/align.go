package senderauth

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// normalizeDomain returns d lowercased, without a final dot, international names in their
// ASCII form (A-labels), or "" when d is not a usable domain name.
func normalizeDomain(d string) string {
	d = strings.TrimSuffix(d, ".")
	if !utf8.ValidString(d) {
		return ""
	}
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			a, err := idna.Lookup.ToASCII(d)
			if err != nil {
				return ""
			}
			d = a
			break
		}
	}
	q, ok := queryName(d)
	if !ok {
		return ""
	}
	return strings.TrimSuffix(q, ".")
}

// orgDomain is the organisational domain of d (RFC 7489 §3.2): the public suffix, from the
// Public Suffix List (ICANN and private sections), plus one label. ok is false when d is
// itself a public suffix.
func orgDomain(d string) (string, bool) {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return "", false
	}
	return org, true
}

// aligned reports whether a valid DKIM signature with d= sig vouches for the envelope
// sender's domain: sig is that domain, or a parent of it no higher than its organisational
// domain (mail.example.co.jp is vouched for by example.co.jp, not by co.jp). Both arguments
// are normalised (normalizeDomain).
//
// This is DMARC's relaxed alignment (RFC 7489 §3.1.1) restricted to ancestors, as SPEC §4
// words it ("that domain or its parent organisational domain"): a signature by a sibling
// (shop.example.com for news.example.com) or by a child (mail.example.com for example.com)
// does not authenticate the sender.
func aligned(sender, sig string) bool {
	if sender == "" || sig == "" {
		return false
	}
	if sender == sig {
		return true
	}
	if !strings.HasSuffix(sender, "."+sig) {
		return false
	}
	org, ok := orgDomain(sender)
	if !ok {
		return false
	}
	return sig == org || strings.HasSuffix(sig, "."+org)
}
