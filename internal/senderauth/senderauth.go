// Package senderauth tells whether a message's envelope sender is authenticated, for
// sender_auth = "gate" (SPEC §4 "URL-click confirmation"): only an authenticated sender may
// be sent a challenge, and a known sender whose SPF result is fail is not trusted.
//
// A sender is authenticated when SPF passes for it, or when the message carries a valid DKIM
// signature whose d= is the sender's domain or a parent of it within its organisational
// domain (see aligned). Neither check ever rejects: a temporary or permanent error only
// leaves the sender unauthenticated.
//
// All I/O goes through a Resolver ([dns] resolver): NewResolver queries the configured
// server with miekg/dns and caches answers per TTL, or uses the system's.
//
// References:
//   - RFC 7208: Sender Policy Framework (SPF), via blitiri.com.ar/go/spf
//   - RFC 6376: DomainKeys Identified Mail (DKIM) Signatures, via go-msgauth/dkim
//   - RFC 8301: cryptographic algorithm and key usage update to DKIM
//   - RFC 7489 §3: DMARC identifier alignment and organisational domains
//   - RFC 2308: negative caching of DNS queries
//   - RFC 7766: DNS transport over TCP
package senderauth

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"
)

// MaxSignatures is how many DKIM signatures of one message are checked; later ones are
// ignored (a message with a hundred signatures must not cost a hundred key lookups).
const MaxSignatures = 5

// SPFResult is an SPF result (RFC 7208 §2.6); the values appear in logs and the digest.
type SPFResult string

// SPF results.
const (
	SPFNone      SPFResult = "none"
	SPFNeutral   SPFResult = "neutral"
	SPFPass      SPFResult = "pass"
	SPFFail      SPFResult = "fail"
	SPFSoftFail  SPFResult = "softfail"
	SPFTempError SPFResult = "temperror"
	SPFPermError SPFResult = "permerror"
)

// DKIMStatus is the result of one DKIM signature (RFC 6376 §3.9, as RFC 8601 names them).
type DKIMStatus string

// DKIM signature results.
const (
	DKIMPass      DKIMStatus = "pass"      // the signature verifies
	DKIMFail      DKIMStatus = "fail"      // it does not (body or headers changed, bad signature)
	DKIMTempError DKIMStatus = "temperror" // the key could not be fetched right now
	DKIMPermError DKIMStatus = "permerror" // malformed signature, no key, revoked or weak key
)

// DKIMSig is the verdict on one DKIM-Signature header field.
type DKIMSig struct {
	Domain string     // the d= tag, normalised (lowercase A-labels); "" when unusable
	Status DKIMStatus // pass, fail, temperror or permerror
	Valid  bool       // Status == DKIMPass
	Err    error      // why not valid; nil when valid
}

// Result is what Check found out about one message.
type Result struct {
	SPF       SPFResult
	SPFDomain string // the domain SPF was evaluated for (the sender's, or the HELO name for <>)
	SPFErr    error  // detail of a temperror or permerror, for logs; nil otherwise

	DKIM    []DKIMSig // one per signature checked, in header order, at most MaxSignatures
	Aligned string    // d= of the first valid signature aligned with the sender, "" if none

	// Authenticated: SPF pass, or a valid DKIM signature aligned with the envelope sender's
	// domain. Only an authenticated sender may be challenged. For the null sender SPF is
	// that of the HELO name and no DKIM signature aligns (such mail is never challenged).
	Authenticated bool
	// SPFFail: the SPF result is fail. A WHITE "from" or RELAY match of this sender does
	// not count (SPEC §4 "forged known senders").
	SPFFail bool
}

// String renders r in the style of Authentication-Results (RFC 8601) for logs and the
// digest: "spf=pass smtp.mailfrom=example.jp; dkim=pass header.d=example.jp".
func (r Result) String() string {
	var b strings.Builder
	b.WriteString("spf=" + string(r.SPF))
	if r.SPFDomain != "" {
		b.WriteString(" smtp.mailfrom=" + r.SPFDomain)
	}
	if len(r.DKIM) == 0 {
		b.WriteString("; dkim=none")
	}
	for _, s := range r.DKIM {
		b.WriteString("; dkim=" + string(s.Status))
		if s.Domain != "" {
			b.WriteString(" header.d=" + s.Domain)
		}
	}
	return b.String()
}

// Checker runs SPF and DKIM checks. The zero value uses the system's resolver and
// DefaultTimeout. A Checker is safe for concurrent use.
type Checker struct {
	// Resolver answers every DNS query; nil means the system's resolver.
	Resolver Resolver
	// Timeout bounds one whole Check (SPF and DKIM run side by side under it); zero means
	// DefaultTimeout. What is not known by then counts as temperror.
	Timeout time.Duration
}

// Check evaluates SPF for the envelope sender (or, for the null sender "", the HELO name)
// seen from clientIP, verifies the DKIM signatures of msg (the message as received, header
// and body, CRLF line ends), and derives the gate verdict. It never fails: DNS trouble shows
// as temperror. sender is the reverse-path without angle brackets; msg is only read.
func (c *Checker) Check(ctx context.Context, clientIP netip.Addr, helo, sender string, msg []byte) Result {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := c.Resolver
	if res == nil {
		res = &systemResolver{r: &net.Resolver{}, timeout: timeout}
	}

	var (
		r  Result
		wg sync.WaitGroup
	)
	wg.Go(func() { r.SPF, r.SPFDomain, r.SPFErr = checkSPF(ctx, res, clientIP, helo, sender) })
	wg.Go(func() { r.DKIM = checkDKIM(ctx, res, msg) })
	wg.Wait()
	r.decide(sender)
	return r
}

// decide derives Aligned, Authenticated and SPFFail from the SPF and DKIM results.
func (r *Result) decide(sender string) {
	senderDomain := ""
	if _, d, ok := splitSender(sender); ok {
		senderDomain = d
	}
	r.Aligned = ""
	for _, s := range r.DKIM {
		if s.Valid && aligned(senderDomain, s.Domain) {
			r.Aligned = s.Domain
			break
		}
	}
	r.SPFFail = r.SPF == SPFFail
	r.Authenticated = r.SPF == SPFPass || r.Aligned != ""
}

// splitSender splits a non-null reverse-path at its last "@" and normalises the domain; ok
// is false for the null sender and for a sender without a usable domain.
func splitSender(sender string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(sender, '@')
	if i < 0 {
		return "", "", false
	}
	domain = normalizeDomain(sender[i+1:])
	if domain == "" {
		return "", "", false
	}
	return sender[:i], domain, true
}

// checkSPF returns the SPF result, the domain it is about, and the detail of an error result.
func checkSPF(ctx context.Context, res Resolver, clientIP netip.Addr, helo, sender string) (SPFResult, string, error) {
	heloDomain := normalizeDomain(helo)
	var identity, domain string
	if sender == "" {
		// RFC 7208 §2.4: for the null reverse-path, check "postmaster@" the HELO name.
		if heloDomain == "" {
			return SPFNone, "", nil
		}
		domain, identity = heloDomain, "postmaster@"+heloDomain
	} else {
		local, d, ok := splitSender(sender)
		if !ok {
			return SPFNone, "", nil
		}
		// RFC 7208 §4.3: an empty local part is "postmaster". The library splits at the
		// first "@", so a quoted local part holding one is replaced as well.
		if local == "" || strings.Contains(local, "@") {
			local = "postmaster"
		}
		domain, identity = d, local+"@"+d
	}
	// RFC 7208 §4.3: a domain that is not multi-label gives none, without a lookup.
	if !strings.Contains(domain, ".") {
		return SPFNone, domain, nil
	}
	if !clientIP.IsValid() {
		return SPFPermError, domain, errors.New("senderauth: no client IP")
	}

	result, err := spf.CheckHostWithSender(net.IP(clientIP.Unmap().AsSlice()), heloDomain, identity,
		spf.WithContext(ctx), spf.WithResolver(res))
	r := SPFResult(result)
	switch r {
	case SPFNone, SPFNeutral, SPFPass, SPFFail, SPFSoftFail:
		return r, domain, nil
	case SPFTempError, SPFPermError:
		return r, domain, err
	default:
		// A result this package does not know: never authenticates, never rejects.
		return SPFPermError, domain, err
	}
}

// checkDKIM verifies up to MaxSignatures DKIM signatures of msg.
func checkDKIM(ctx context.Context, res Resolver, msg []byte) []DKIMSig {
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return res.LookupTXT(ctx, name) },
		MaxVerifications: MaxSignatures,
	})
	// An error other than "too many signatures" is a failure outside any one signature
	// (unreadable header); go-msgauth then clears Err on the signature it concerned, so no
	// Err == nil can be trusted: nothing is valid.
	failed := err != nil && !errors.Is(err, dkim.ErrTooManySignatures)
	sigs := make([]DKIMSig, 0, len(verifs))
	for _, v := range verifs {
		if v == nil {
			continue
		}
		s := DKIMSig{Domain: normalizeDomain(v.Domain), Err: v.Err}
		if failed && s.Err == nil {
			s.Err = err
		}
		switch {
		case s.Err == nil && s.Domain != "":
			s.Status, s.Valid = DKIMPass, true
		case s.Err == nil:
			s.Status, s.Err = DKIMPermError, errors.New("senderauth: unusable d= domain")
		case dkim.IsTempFail(s.Err):
			s.Status = DKIMTempError
		case dkim.IsPermFail(s.Err):
			s.Status = DKIMPermError
		default:
			s.Status = DKIMFail
		}
		sigs = append(sigs, s)
	}
	return sigs
}
