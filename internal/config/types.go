package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Duration is a time.Duration written in Go syntax ("90s", "24h").
type Duration struct{ time.Duration }

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want Go syntax, e.g. \"90s\", \"24h\")", text)
	}
	d.Duration = v
	return nil
}

// MarshalText writes Go duration syntax, without zero minutes and seconds
// after hours ("24h", not "24h0m0s").
func (d Duration) MarshalText() ([]byte, error) {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return []byte(s), nil
}

// Prefix is a network: a CIDR ("10.0.0.0/8", "::1/128") or a bare IP
// address, which stands for /32 or /128.
type Prefix struct{ netip.Prefix }

// UnmarshalText parses a CIDR or a bare IP address. Host bits are cleared:
// "10.1.2.3/8" is 10.0.0.0/8.
func (p *Prefix) UnmarshalText(text []byte) error {
	s := string(text)
	if strings.Contains(s, "/") {
		v, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("invalid network %q (want a CIDR such as \"10.0.0.0/8\" or an IP address)", s)
		}
		p.Prefix = v.Masked()
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return fmt.Errorf("invalid network %q (want a CIDR such as \"10.0.0.0/8\" or an IP address)", s)
	}
	p.Prefix = netip.PrefixFrom(a, a.BitLen())
	return nil
}

// MarshalText writes the CIDR form.
func (p Prefix) MarshalText() ([]byte, error) {
	return p.Prefix.MarshalText()
}

// mustPrefix is for defaults written in code.
func mustPrefix(s string) Prefix {
	var p Prefix
	if err := p.UnmarshalText([]byte(s)); err != nil {
		panic(err)
	}
	return p
}
