package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrBadEnv marks an --env-file line or an -e value docker would refuse.
var ErrBadEnv = errors.New("bad environment variable")

// maxEnvLine is the longest env-file line read; docker's scanner stops at
// 64 KiB, which a certificate in a variable can pass.
const maxEnvLine = 1 << 20

// ParseEnvFile reads an --env-file with docker's rules (docker/cli
// kvfile): a UTF-8 BOM is dropped; leading whitespace is trimmed; blank
// lines and lines starting with # are skipped; "K=V" is kept as it is
// (no quotes are removed, no trailing comment is cut, V keeps its
// spaces); a bare "K" takes K's value from lookup (the host's
// environment) and is dropped when lookup has none. A name holding
// spaces or tabs, an empty name and invalid UTF-8 are errors naming the
// line. lookup may be nil: bare names are then dropped.
func ParseEnvFile(r io.Reader, lookup func(string) (string, bool)) ([]string, error) {
	var env []string
	s := bufio.NewScanner(r)
	s.Buffer(nil, maxEnvLine)
	for n := 1; s.Scan(); n++ {
		b := s.Bytes()
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("%w: line %d: invalid UTF-8", ErrBadEnv, n)
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, hasValue := strings.Cut(line, "=")
		if strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: line %d: name %q contains whitespace", ErrBadEnv, n, name)
		}
		if name == "" {
			return nil, fmt.Errorf("%w: line %d: no variable name in %q", ErrBadEnv, n, line)
		}
		if !hasValue {
			if lookup == nil {
				continue
			}
			var ok bool
			if value, ok = lookup(name); !ok {
				continue
			}
		}
		env = append(env, name+"="+value)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	return env, nil
}

// EnvFlag resolves one -e value as docker's CLI does: "K=V" stays; a
// bare "K" becomes "K=" plus the host's value from lookup, or stays bare
// when the host has none, which unsets K in the container (unlike an
// env-file's bare name, which is dropped). An empty name is an error.
func EnvFlag(value string, lookup func(string) (string, bool)) (string, error) {
	name, _, hasValue := strings.Cut(value, "=")
	if name == "" {
		return "", fmt.Errorf("%w: %q has no name", ErrBadEnv, value)
	}
	if hasValue || lookup == nil {
		return value, nil
	}
	if v, ok := lookup(name); ok {
		return name + "=" + v, nil
	}
	return value, nil
}
