package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// parseTOML parses data into the generic tree of the TOML library. Only
// syntax errors can happen here.
func parseTOML(name string, data []byte) (map[string]any, error) {
	var raw map[string]any
	_, err := toml.Decode(string(data), &raw)
	if err == nil {
		return raw, nil
	}
	e := &Error{File: name, Msg: "syntax error: " + err.Error()}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Msg = "syntax error: " + pe.Message
		e.Line = pe.Position.Line
		// The library counts an error found at a newline on the next line;
		// the byte offset is exact.
		if st := pe.Position.Start; st > 0 && st <= len(data) {
			e.Line = 1 + bytes.Count(data[:st], []byte("\n"))
		}
	}
	return nil, joinErrors([]*Error{e})
}

// decoder copies the generic TOML tree into a Config by reflection over the
// toml struct tags.
//
// We do not let toml.Decode fill the Config directly: it stops at the first
// wrong value (and which one it meets first depends on map order), matches
// keys case-insensitively, and names a key in an array of tables without its
// index and at the line of the last element. Here every problem is reported,
// in a stable order, with the exact key path ("smtp.listener[1].role") and
// line. Values still go through the same TextUnmarshaler types.
type decoder struct {
	file  string
	lines lineIndex
	errs  []*Error
	bad   []string // keys with a wrong value (not unknown keys)
}

// config decodes the whole tree into c, over what c already holds.
func (d *decoder) config(raw map[string]any, c *Config) {
	d.table("", raw, reflect.ValueOf(c).Elem())
}

func (d *decoder) errorf(key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: d.lines.find(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) badValue(key, format string, args ...any) {
	d.bad = append(d.bad, key)
	d.errorf(key, format, args...)
}

// failed reports whether key, a parent or a child of it had a wrong value:
// a Validate complaint about it would only repeat that.
func (d *decoder) failed(key string) bool {
	under := func(k, parent string) bool {
		return strings.HasPrefix(k, parent+".") || strings.HasPrefix(k, parent+"[")
	}
	for _, b := range d.bad {
		if b == key || under(key, b) || under(b, key) {
			return true
		}
	}
	return false
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// decode stores raw, found at key, into v (addressable).
func (d *decoder) decode(key string, raw any, v reflect.Value) {
	if reflect.PointerTo(v.Type()).Implements(textUnmarshaler) {
		s, ok := raw.(string)
		if !ok {
			d.wrongType(key, raw, v.Type())
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.badValue(key, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.wrongType(key, raw, v.Type())
			return
		}
		d.table(key, m, v)
	case reflect.Slice:
		rv := reflect.ValueOf(raw)
		if !rv.IsValid() || rv.Kind() != reflect.Slice {
			d.wrongType(key, raw, v.Type())
			return
		}
		out := reflect.MakeSlice(v.Type(), rv.Len(), rv.Len())
		for i := range rv.Len() {
			elem := out.Index(i)
			setDefault(elem)
			d.decode(indexKey(key, i), rv.Index(i).Interface(), elem)
		}
		v.Set(out)
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			d.wrongType(key, raw, v.Type())
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.wrongType(key, raw, v.Type())
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, ok := raw.(int64)
		if !ok {
			d.wrongType(key, raw, v.Type())
			return
		}
		if v.OverflowInt(n) {
			d.badValue(key, "%d is out of range", n)
			return
		}
		v.SetInt(n)
	default:
		// Only reached if Config gains a field of a kind added nowhere here.
		d.badValue(key, "cannot decode into %s", v.Type())
	}
}

// table decodes the keys of m, in a stable order, into the struct v.
func (d *decoder) table(key string, m map[string]any, v reflect.Value) {
	fields := tomlFields(v.Type())
	for _, name := range slices.Sorted(maps.Keys(m)) {
		k := joinKey(key, name)
		i, ok := fields[name]
		if !ok {
			d.errorf(k, "unknown key%s", unknownHint(key, name, fields))
			continue
		}
		d.decode(k, m[name], v.Field(i))
	}
}

// tomlFields maps the toml tag names of struct type t to field indexes.
// Fields without a tag, or tagged "-", are not configuration.
func tomlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

// setDefault starts an element of an array of tables from its defaults.
func setDefault(v reflect.Value) {
	switch p := v.Addr().Interface().(type) {
	case *Listener:
		*p = defaultListener()
	case *Route:
		*p = defaultRoute()
	}
}

// unknownHint suggests what an unknown key name in table may have meant.
func unknownHint(table, name string, fields map[string]int) string {
	top := reflect.TypeFor[Config]()
	if i, ok := tomlFields(top)[name]; ok && table != "" && top.Field(i).Type.Kind() != reflect.Struct {
		return fmt.Sprintf(" (%s is a top-level key: write it before the first [table])", name)
	}
	best, bestDist := "", 3 // suggest only close names
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		if dist := editDistance(strings.ToLower(strings.ReplaceAll(name, "-", "_")), f); dist < bestDist {
			best, bestDist = f, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b)) // no key is this long; skip the work
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// wrongType reports a value of the wrong TOML type.
func (d *decoder) wrongType(key string, raw any, want reflect.Type) {
	d.badValue(key, "want %s, got %s", describe(key, want), tomlTypeName(raw))
}

// describe names the TOML value that fits Go type t, for messages.
func describe(key string, t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return `a duration such as "10s"`
	case reflect.TypeFor[Prefix]():
		return `a network such as "10.0.0.0/8"`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Struct:
		return "a table"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct && t.Elem() != reflect.TypeFor[Duration]() && t.Elem() != reflect.TypeFor[Prefix]() {
			return "an array of tables ([[" + key + "]])"
		}
		return "an array"
	}
	return t.String()
}

// tomlTypeName names the type of a value from the TOML library, for
// messages.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date or time"
	case map[string]any:
		return "a table"
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice {
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}
