package config

import (
	"bytes"
	"net/url"
	"regexp"

	"github.com/BurntSushi/toml"
)

// Redacted returns the effective configuration as TOML, for the log and for
// `sekisho check`, with the password in store.dsn masked. Parsing the result
// gives c back, but for that password.
func (c *Config) Redacted() string {
	r := *c
	r.Store.DSN = redactDSN(c.Store.DSN)
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(&r); err != nil {
		return "# cannot encode the configuration: " + err.Error() + "\n"
	}
	return b.String()
}

// dsnPassword finds password=... in the key=value form of a PostgreSQL DSN
// or in the query of its URL form.
var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)

// redactDSN masks the password in a DSN, in either form.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			dsn = u.Redacted()
		}
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}xxxxx")
}
