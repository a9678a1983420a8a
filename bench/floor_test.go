package main

import (
	"os/exec"
	"testing"

	"github.com/vmm-dev/vmm/vmtest"
)

// TestFloorPrograms_EnterTheirGuest builds both start-up floors and runs
// each once: each must enter its guest, see the guest's port write (or it
// exits non-zero) and print when its first KVM_RUN began, after main.
func TestFloorPrograms_EnterTheirGuest(t *testing.T) {
	vmtest.RequireKVM(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatalf("the C floor is built with gcc: %v (make deps installs it)", err)
	}
	e := &Env{Work: t.TempDir()}
	floors, err := e.floorPrograms()
	if err != nil {
		t.Fatal(err)
	}
	if len(floors) != 2 {
		t.Fatalf("%d floors, want the Go and the C one", len(floors))
	}
	for _, f := range floors {
		got, err := floorOnce(f, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got <= 0 || got > 10_000 {
			t.Fatalf("%s floor: first KVM_RUN %.3f ms after its start", f.name, got)
		}
	}
}
