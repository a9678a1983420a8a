package protocol

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func hostEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestParseEnvFile_DockerRules(t *testing.T) {
	file := "\xEF\xBB\xBF# a comment\n" +
		"\n" +
		"   \t\n" +
		"PLAIN=value\n" +
		"  INDENTED=kept\n" +
		"QUOTED=\"not unquoted\"\n" +
		"SPACES=  a b  \n" +
		"HASH=x # not a comment\n" +
		"EMPTY=\n" +
		"EQUALS=a=b=c\n" +
		"FROM_HOST\n" +
		"NOT_ON_HOST\n" +
		"  # indented comment\n" +
		"LAST=no newline"
	got, err := ParseEnvFile(strings.NewReader(file), hostEnv(map[string]string{"FROM_HOST": "host value"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PLAIN=value", "INDENTED=kept", `QUOTED="not unquoted"`, "SPACES=  a b  ", "HASH=x # not a comment",
		"EMPTY=", "EQUALS=a=b=c", "FROM_HOST=host value", "LAST=no newline",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParseEnvFile =\n %q\nwant\n %q", got, want)
	}
}

func TestParseEnvFile_NilLookup_DropsBareNames(t *testing.T) {
	got, err := ParseEnvFile(strings.NewReader("A\nB=1\r\n"), nil)
	if err != nil || !slices.Equal(got, []string{"B=1"}) {
		t.Errorf("ParseEnvFile = %q, %v; want [B=1] (a CRLF line ending is dropped, as docker's scanner does)", got, err)
	}
}

func TestParseEnvFile_Bad(t *testing.T) {
	for _, tt := range []struct{ file, wantErr string }{
		{"A=1\nB C=2\n", `line 2: name "B C" contains whitespace`},
		{"A B\n", `name "A B"`},
		{"A\t=1\n", "contains whitespace"},
		{"=value\n", "line 1: no variable name"},
		{"A=1\nB=\xff\n", "line 2: invalid UTF-8"},
	} {
		_, err := ParseEnvFile(strings.NewReader(tt.file), nil)
		if !errors.Is(err, ErrBadEnv) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseEnvFile(%q) = %v, want ErrBadEnv mentioning %q", tt.file, err, tt.wantErr)
		}
	}
}

func TestParseEnvFile_LongLine(t *testing.T) {
	long := "CERT=" + strings.Repeat("x", 200<<10)
	got, err := ParseEnvFile(strings.NewReader(long+"\n"), nil)
	if err != nil || len(got) != 1 || got[0] != long {
		t.Errorf("ParseEnvFile(200 KiB line) = %d entries, %v", len(got), err)
	}
}

func TestEnvFlag(t *testing.T) {
	lookup := hostEnv(map[string]string{"HOME": "/root", "EMPTY": ""})
	for _, tt := range []struct{ in, want string }{
		{"A=1", "A=1"},
		{"A=", "A="},
		{"HOME", "HOME=/root"},
		{"EMPTY", "EMPTY="},
		{"MISSING", "MISSING"}, // sent bare: it unsets MISSING in the container
	} {
		got, err := EnvFlag(tt.in, lookup)
		if err != nil || got != tt.want {
			t.Errorf("EnvFlag(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := EnvFlag("=x", lookup); !errors.Is(err, ErrBadEnv) {
		t.Errorf("EnvFlag(=x) = %v, want ErrBadEnv", err)
	}
}
