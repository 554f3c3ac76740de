package wiretap

import (
	"fmt"
	"strconv"
	"strings"
)

// This file mirrors, byte for byte, how github.com/emersion/go-smtp v0.25.1
// splits and parses the commands that matter here (parse.go parseCmd and
// parser.parsePath; conn.go handleRcpt and handleBdat). The scanner must
// reach the same verdict as the server on every line, or it would count
// commands differently; keep this file in step when go-smtp is upgraded.
// The fuzz target FuzzGoSMTP checks the two against each other.
//
// Adapted from go-smtp, Copyright (c) 2010 The Go Authors, 2014 Gleb
// Smirnoff, 2016-2022 emersion and contributors; MIT licence.

// parseCmd is go-smtp's parseCmd: the command, upper-cased, and its
// argument; cmd is "" for a line go-smtp rejects as malformed or empty.
func parseCmd(line string) (cmd, arg string) {
	line = strings.TrimRight(line, "\r\n")

	l := len(line)
	switch {
	case strings.HasPrefix(strings.ToUpper(line), "STARTTLS"):
		return "STARTTLS", ""
	case l < 4, l == 5:
		return "", ""
	case l == 4:
		return strings.ToUpper(line), ""
	}
	if line[4] != ' ' {
		return "", ""
	}
	return strings.ToUpper(line[0:4]), strings.TrimSpace(line[5:])
}

// rcptPath parses the argument of a RCPT command as go-smtp's handleRcpt
// does. It returns the raw path, exactly the text go-smtp's parser
// consumed, and the address go-smtp hands to Session.Rcpt.
func rcptPath(arg string) (raw, processed string, ok bool) {
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		return "", "", false
	}
	s := strings.TrimSpace(rest)
	p := parser{s: s}
	processed, err := p.parsePath()
	if err != nil {
		return "", "", false
	}
	return s[:len(s)-len(p.s)], processed, true
}

// bdatSize parses the argument of a BDAT command as go-smtp's handleBdat
// does. ok is true when go-smtp will read a chunk of size bytes, whether it
// accepts the command or not.
func bdatSize(arg string) (size uint64, ok bool) {
	args := strings.Fields(arg)
	if len(args) == 0 || len(args) > 2 {
		return 0, false
	}
	if len(args) == 2 && !strings.EqualFold(args[1], "LAST") {
		return 0, false
	}
	size, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return 0, false
	}
	return size, true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// parser is go-smtp's parser, reduced to parsePath.
type parser struct {
	s string
}

func (p *parser) peekByte() (byte, bool) {
	if len(p.s) == 0 {
		return 0, false
	}
	return p.s[0], true
}

func (p *parser) readByte() (byte, bool) {
	ch, ok := p.peekByte()
	if ok {
		p.s = p.s[1:]
	}
	return ch, ok
}

func (p *parser) acceptByte(ch byte) bool {
	got, ok := p.peekByte()
	if !ok || got != ch {
		return false
	}
	p.readByte()
	return true
}

func (p *parser) parsePath() (string, error) {
	hasBracket := p.acceptByte('<')
	if p.acceptByte('@') {
		i := strings.IndexByte(p.s, ':')
		if i < 0 {
			return "", fmt.Errorf("malformed a-d-l")
		}
		p.s = p.s[i+1:]
	}
	mbox, err := p.parseMailbox()
	if err != nil {
		return "", err
	}
	if hasBracket && !p.acceptByte('>') {
		return "", fmt.Errorf("expected '>'")
	}
	return mbox, nil
}

func (p *parser) parseMailbox() (string, error) {
	localPart, err := p.parseLocalPart()
	if err != nil {
		return "", err
	} else if localPart == "" {
		return "", fmt.Errorf("local-part is empty")
	}
	if !p.acceptByte('@') {
		return "", fmt.Errorf("expected '@'")
	}

	var sb strings.Builder
	sb.WriteString(localPart)
	sb.WriteByte('@')
	for {
		ch, ok := p.peekByte()
		if !ok || ch == ' ' || ch == '\t' || ch == '>' {
			break
		}
		p.readByte()
		sb.WriteByte(ch)
	}
	if strings.HasSuffix(sb.String(), "@") {
		return "", fmt.Errorf("domain is empty")
	}
	return sb.String(), nil
}

func (p *parser) parseLocalPart() (string, error) {
	var sb strings.Builder
	if p.acceptByte('"') { // quoted-string
		for {
			ch, ok := p.readByte()
			switch ch {
			case '\\':
				ch, ok = p.readByte()
			case '"':
				return sb.String(), nil
			}
			if !ok {
				return "", fmt.Errorf("malformed quoted-string")
			}
			sb.WriteByte(ch)
		}
	}
	for { // dot-string
		ch, ok := p.peekByte()
		if !ok {
			return sb.String(), nil
		}
		switch ch {
		case '@':
			return sb.String(), nil
		case '(', ')', '<', '>', '[', ']', ':', ';', '\\', ',', '"', ' ', '\t':
			return "", fmt.Errorf("malformed dot-string")
		}
		p.readByte()
		sb.WriteByte(ch)
	}
}
