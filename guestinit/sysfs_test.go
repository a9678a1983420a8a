package guestinit

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

func TestCountCPUList(t *testing.T) {
	for list, want := range map[string]int{"0": 1, "0-1": 2, "0-3,8,10-11": 7, "5": 1} {
		if got, err := CountCPUList(list); err != nil || got != want {
			t.Errorf("CountCPUList(%q) = %d, %v; want %d", list, got, err, want)
		}
	}
	for _, bad := range []string{"", "1-0", "a", "0-", "0,,1", "-1"} {
		if got, err := CountCPUList(bad); err == nil {
			t.Errorf("CountCPUList(%q) = %d, want an error", bad, got)
		}
	}
}

func TestCPUsCheck(t *testing.T) {
	sys := fstest.MapFS{cpuOnlinePath: {Data: []byte("0-1\n")}}
	if got, want := cpusCheck(sys).String(), "VMM-CHECK cpus online=0-1 count=2 ok"; got != want {
		t.Errorf("cpusCheck = %q, want %q", got, want)
	}
	if r := cpusCheck(fstest.MapFS{}); r.OK() || r.Name != protocol.CheckCPUs {
		t.Errorf("cpusCheck without sysfs = %q, want a cpus failure", r)
	}
}

func pciFS(funcs map[string][2]string) fstest.MapFS {
	sys := fstest.MapFS{}
	for addr, ids := range funcs {
		sys[pciDevicesPath+"/"+addr+"/vendor"] = &fstest.MapFile{Data: []byte(ids[0] + "\n")}
		sys[pciDevicesPath+"/"+addr+"/device"] = &fstest.MapFile{Data: []byte(ids[1] + "\n")}
	}
	return sys
}

func TestPCICheck_EveryFunctionInAddressOrder(t *testing.T) {
	sys := pciFS(map[string][2]string{
		"0000:00:03.0": {"0x1af4", "0x1041"},
		"0000:00:00.0": {"0x8086", "0x29c0"},
		"0000:00:02.0": {"0x1af4", "0x1042"},
	})
	want := "VMM-CHECK pci 0000:00:00.0=8086:29c0 0000:00:02.0=1af4:1042 0000:00:03.0=1af4:1041 ok"
	if got := pciCheck(sys).String(); got != want {
		t.Errorf("pciCheck = %q, want %q", got, want)
	}
}

func TestPCICheck_BadID_Fails(t *testing.T) {
	r := pciCheck(pciFS(map[string][2]string{"0000:00:00.0": {"8086", "0x29c0"}}))
	if r.OK() || !strings.Contains(r.Err, `bad ID "8086"`) {
		t.Errorf("pciCheck = %q, want a bad ID failure", r)
	}
}
