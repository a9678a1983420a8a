package policy

import (
	"strings"
	"testing"
)

func TestPrograms_Assemble(t *testing.T) {
	progs, err := Programs()
	if err != nil {
		t.Fatal(err)
	}
	if len(progs) != 2 || len(progs[0]) == 0 || len(progs[1]) == 0 || Count() != len(allowed)+2 {
		t.Errorf("%d programs, %d calls", len(progs), Count())
	}
	for _, name := range []string{"openat", "execve", "ptrace", "mount", "kexec_load", "seccomp"} {
		for _, a := range allowed {
			if strings.EqualFold(a, name) {
				t.Errorf("%s is allowed", name)
			}
		}
	}
}
