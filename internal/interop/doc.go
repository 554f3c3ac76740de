// Package interop holds sekisho's interoperability tests: the real sekisho binary, built once
// per run, against real peers run as subprocesses on loopback ports — Postfix's smtp-sink as
// the upstream mail server, a real Postfix smtpd relay (STARTTLS, XFORWARD), and swaks or a
// raw TCP client as the sending side.
//
// The peers come from the Debian packages postfix and swaks. When one is missing the tests
// skip, except with CI=true, where they fail naming the package to install.
//
// The package has no code outside its tests.
package interop
