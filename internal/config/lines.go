package config

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// lineIndex maps key paths to the line where they first appear in a TOML
// file. The TOML library reports no positions for keys (MetaData.Undecoded
// and the decoded values carry none), so keyLines finds them in the text.
//
// Paths are written the way messages show them: names joined with ".",
// quoted when not bare, and "[n]" after the n-th element (0-based) of an
// array or array of tables: "smtp.listener[1].role",
// "smtp.relay_networks[0]".
type lineIndex map[string]int

// find returns the line of key or, when key itself is not written in the
// file (a default), of its nearest parent that is; 0 when none is.
func (x lineIndex) find(key string) int {
	for key != "" {
		if n, ok := x[key]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// joinKey appends name to the key path parent.
func joinKey(parent, name string) string {
	if !isBareKey(name) {
		name = strconv.Quote(name)
	}
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// indexKey names element i of the array at key path parent.
func indexKey(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareKeyByte(s[i]) {
			return false
		}
	}
	return true
}

func isBareKeyByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// maxDepth bounds the nesting of arrays and inline tables the scanner
// follows; deeper values are skipped as a whole.
const maxDepth = 32

// keyLines scans TOML text for [table] and [[array.table]] headers, dotted
// keys, key = value lines, inline tables and array elements, and records
// where each key path first appears. It is meant for text the TOML parser
// accepted; on anything else it returns what it could find, without panic.
func keyLines(data []byte) lineIndex {
	s := &lineScanner{src: data, line: 1, lines: lineIndex{}, arrays: map[string]int{}}
	if len(data) >= 3 && string(data[:3]) == "\xef\xbb\xbf" {
		s.pos = 3
	}
	table := ""
	for {
		s.skipBlank(true)
		if s.pos >= len(s.src) {
			break
		}
		if s.src[s.pos] == '[' {
			table = s.header()
		} else {
			s.keyValue(table, 0)
		}
		s.skipLine()
	}
	return s.lines
}

type lineScanner struct {
	src    []byte
	pos    int
	line   int
	lines  lineIndex
	arrays map[string]int // array-of-tables path → elements seen so far
}

func (s *lineScanner) peek(off int) byte {
	if s.pos+off < len(s.src) {
		return s.src[s.pos+off]
	}
	return 0
}

func (s *lineScanner) record(key string) {
	if _, ok := s.lines[key]; !ok {
		s.lines[key] = s.line
	}
}

// advance steps over one byte.
func (s *lineScanner) advance() {
	if s.peek(0) == '\n' {
		s.line++
	}
	s.pos++
}

// skipBlank skips spaces and tabs, and with newlines also line breaks and
// comments.
func (s *lineScanner) skipBlank(newlines bool) {
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case ' ', '\t', '\r':
			s.pos++
		case '\n':
			if !newlines {
				return
			}
			s.line++
			s.pos++
		case '#':
			if !newlines {
				return
			}
			s.skipLine()
		default:
			return
		}
	}
}

// skipLine moves to the end of the line, before its newline.
func (s *lineScanner) skipLine() {
	for s.pos < len(s.src) && s.src[s.pos] != '\n' {
		s.pos++
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the path of the table it
// opens, with the element indexes of the arrays of tables it crosses.
func (s *lineScanner) header() string {
	array := s.peek(1) == '['
	if array {
		s.pos += 2
	} else {
		s.pos++
	}
	names, ok := s.key()
	if !ok {
		return ""
	}
	path := ""
	for i, name := range names {
		path = joinKey(path, name)
		if array && i == len(names)-1 {
			n := s.arrays[path]
			s.arrays[path] = n + 1
			s.record(path)
			path = indexKey(path, n)
		} else if n, ok := s.arrays[path]; ok {
			path = indexKey(path, n-1) // [a.b] after [[a]] is in the last a
		}
		s.record(path)
	}
	return path
}

// keyValue reads "a.b = value" in table and records a, a.b and what the
// value holds.
func (s *lineScanner) keyValue(table string, depth int) {
	start := s.pos
	names, ok := s.key()
	if !ok {
		if s.pos == start {
			s.advance() // not a key: step over it; the caller goes on after it
		}
		return
	}
	path := table
	for _, name := range names {
		path = joinKey(path, name)
		s.record(path)
	}
	s.skipBlank(false)
	if s.peek(0) != '=' {
		return
	}
	s.pos++
	s.skipBlank(false)
	s.value(path, depth)
}

// key reads a dotted key of bare and quoted parts.
func (s *lineScanner) key() ([]string, bool) {
	var names []string
	for {
		s.skipBlank(false)
		var name string
		switch c := s.peek(0); {
		case c == '"':
			raw, ok := s.quoted('"')
			if !ok {
				return nil, false
			}
			name = unescapeBasic(raw)
		case c == '\'':
			raw, ok := s.quoted('\'')
			if !ok {
				return nil, false
			}
			name = raw
		case isBareKeyByte(c):
			start := s.pos
			for s.pos < len(s.src) && isBareKeyByte(s.src[s.pos]) {
				s.pos++
			}
			name = string(s.src[start:s.pos])
		default:
			return nil, false
		}
		names = append(names, name)
		s.skipBlank(false)
		if s.peek(0) != '.' {
			return names, true
		}
		s.pos++
	}
}

// quoted reads a one-line string opened by q and returns its raw contents.
func (s *lineScanner) quoted(q byte) (string, bool) {
	s.pos++
	start := s.pos
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; {
		case c == q:
			s.pos++
			return string(s.src[start : s.pos-1]), true
		case c == '\n':
			return "", false
		case c == '\\' && q == '"':
			s.pos += 2
			if s.pos > len(s.src) {
				s.pos = len(s.src)
			}
		default:
			s.pos++
		}
	}
	return "", false
}

// value skips one value at path, recording the elements of arrays and the
// keys of inline tables.
func (s *lineScanner) value(path string, depth int) {
	switch c := s.peek(0); {
	case (c == '"' || c == '\'') && s.peek(1) == c && s.peek(2) == c:
		s.multiline(c)
	case c == '"' || c == '\'':
		s.quoted(c)
	case c == '[' && depth < maxDepth:
		s.pos++
		for i := 0; ; {
			s.skipBlank(true)
			switch s.peek(0) {
			case 0:
				return
			case ']':
				s.pos++
				return
			case ',':
				s.pos++
				continue
			}
			elem := indexKey(path, i)
			s.record(elem)
			start := s.pos
			s.value(elem, depth+1)
			if s.pos == start {
				s.advance()
			}
			i++
		}
	case c == '{' && depth < maxDepth:
		s.pos++
		for {
			s.skipBlank(true) // TOML 1.1 allows newlines in inline tables
			switch s.peek(0) {
			case 0:
				return
			case '}':
				s.pos++
				return
			case ',':
				s.pos++
				continue
			}
			s.keyValue(path, depth+1)
		}
	default:
		// A number, boolean or date (which may hold a space); also the
		// whole of anything nested deeper than maxDepth.
		for s.pos < len(s.src) && !strings.ContainsRune(",]}#\n", rune(s.src[s.pos])) {
			s.pos++
		}
	}
}

// multiline skips a multi-line string (opened by three quotes), counting
// its lines.
func (s *lineScanner) multiline(q byte) {
	s.pos += 3
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		switch {
		case c == '\n':
			s.line++
			s.pos++
		case c == '\\' && q == '"':
			s.pos++
			if s.peek(0) == '\n' {
				s.line++
			}
			s.pos++
		case c == q && s.peek(1) == q && s.peek(2) == q:
			s.pos += 3
			for i := 0; i < 2 && s.peek(0) == q; i++ { // """"" ends with quotes
				s.pos++
			}
			return
		default:
			s.pos++
		}
	}
}

// unescapeBasic decodes the escapes of a TOML basic string, leaving bad ones
// as written.
func unescapeBasic(raw string) string {
	if !strings.Contains(raw, `\`) {
		return raw
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			b.WriteByte(c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case '"', '\\':
			b.WriteByte(raw[i])
		case 'x', 'u', 'U':
			n := 2 // \xHH (TOML 1.1)
			switch raw[i] {
			case 'u':
				n = 4
			case 'U':
				n = 8
			}
			if i+1+n <= len(raw) {
				v, err := strconv.ParseUint(raw[i+1:i+1+n], 16, 32)
				if err == nil && utf8.ValidRune(rune(v)) {
					b.WriteRune(rune(v))
					i += n
					continue
				}
			}
			b.WriteByte('\\')
			b.WriteByte(raw[i])
		default:
			b.WriteByte('\\')
			b.WriteByte(raw[i])
		}
	}
	return b.String()
}
