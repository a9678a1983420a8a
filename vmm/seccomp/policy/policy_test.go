package policy

import (
	"strings"
	"testing"
)

func TestProgram_Assembles(t *testing.T) {
	prog, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) == 0 || Count() != len(allowed)+3 {
		t.Errorf("%d instructions, %d calls", len(prog), Count())
	}
	for _, name := range []string{"openat", "execve", "ptrace", "mount", "kexec_load", "seccomp"} {
		for _, a := range allowed {
			if strings.EqualFold(a, name) {
				t.Errorf("%s is allowed", name)
			}
		}
	}
}
