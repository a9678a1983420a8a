package protocol

import (
	"strings"
)

// ResultPrefix starts every result line guestinit prints for a check.
const ResultPrefix = "VMM-CHECK"

// Names of results that are not checks of their own.
const (
	ResultConfig = "config" // the vmm.* options could not be used; no check ran
	ResultServe  = "serve"  // the net check served its file to one connection
	ResultUmount = "umount" // the disk was unmounted after every check
)

// Words that end a result line, or follow the name of a failed check.
const (
	resultOK   = "ok"
	resultFail = "FAIL"
)

// Field is one key=value of a result. Values never hold spaces.
type Field struct{ Key, Value string }

// Result is one line of a check's outcome: Name's Fields and "ok", or
// "FAIL" and Err.
type Result struct {
	Name   string
	Fields []Field
	Err    string // empty when the check passed
}

// OK reports whether the check passed.
func (r Result) OK() bool { return r.Err == "" }

// Get returns the value of the field named key, and whether there is one.
func (r Result) Get(key string) (string, bool) {
	for _, f := range r.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// Passed returns a passing result with fields given as key, value pairs.
func Passed(name string, kv ...string) Result {
	r := Result{Name: name}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Fields = append(r.Fields, Field{kv[i], kv[i+1]})
	}
	return r
}

// Failed returns a failing result for err.
func Failed(name string, err error) Result {
	msg := "failed"
	if err != nil && err.Error() != "" {
		msg = err.Error()
	}
	return Result{Name: name, Err: msg}
}

// String is the console line for r, without a newline. Spaces and line
// breaks inside values would break the line's shape, so they become '_'.
func (r Result) String() string {
	var b strings.Builder
	b.WriteString(ResultPrefix + " " + oneWord(r.Name))
	if !r.OK() {
		b.WriteString(" " + resultFail + " " + strings.Join(strings.Fields(r.Err), " "))
		return b.String()
	}
	for _, f := range r.Fields {
		b.WriteString(" " + oneWord(f.Key) + "=" + oneWord(f.Value))
	}
	b.WriteString(" " + resultOK)
	return b.String()
}

func oneWord(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return '_'
		}
		return r
	}, s)
}

// ParseResult reads a result line back; ok is false when line is not one.
// Text before the prefix (a kernel message that raced onto the line) and a
// trailing carriage return (serial consoles add one) are ignored.
func ParseResult(line string) (r Result, ok bool) {
	i := strings.Index(line, ResultPrefix+" ")
	if i < 0 {
		return Result{}, false
	}
	words := strings.Fields(line[i:])
	if len(words) < 3 {
		return Result{}, false
	}
	r.Name = words[1]
	if words[2] == resultFail {
		r.Err = strings.Join(words[3:], " ")
		if r.Err == "" {
			r.Err = "failed"
		}
		return r, true
	}
	if words[len(words)-1] != resultOK {
		return Result{}, false
	}
	for _, w := range words[2 : len(words)-1] {
		k, v, found := strings.Cut(w, "=")
		if !found {
			return Result{}, false
		}
		r.Fields = append(r.Fields, Field{k, v})
	}
	return r, true
}

// ParseResults returns every result line in console output, in order.
// Only complete lines count: a host reading a console while the guest
// writes it must not take half a line for a whole result.
func ParseResults(console string) []Result {
	var rs []Result
	complete := console[:strings.LastIndexByte(console, '\n')+1]
	for _, line := range strings.Split(complete, "\n") {
		if r, ok := ParseResult(line); ok {
			rs = append(rs, r)
		}
	}
	return rs
}
