package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/vmtest"
)

// TestLinux_VMM_Lab_ThreeVMsByName is the Linux tier of the test lab:
// three busybox VMs on one switched segment; one serves HTTP, the other
// two reach it by name; commands and files go through the agent. It runs
// where vmm runs Linux guests and skips with the doctor's reason
// elsewhere; the agent's guest side runs under QEMU in
// agent_qemu_test.go, the switch with micro-guests in lab_net_test.go.
func TestLinux_VMM_Lab_ThreeVMsByName(t *testing.T) {
	requireLinuxGuests(t)
	ref := busyboxLayout(t)
	lan := vmtest.NewNetwork(t)
	nics := []vmtest.NIC{lan.NIC(), lan.NIC(), lan.NIC()}
	names := []string{"server", "alpha", "beta"}
	hosts := func(self int) []string {
		var args []string
		for i, n := range nics {
			if i != self {
				args = append(args, "--add-host", names[i]+":"+n.Addr())
			}
		}
		return append(args, "--hostname", names[self])
	}
	server := vmtest.Start(t, vmtest.Config{Image: ref, NICs: nics[:1], Agent: true, Args: hosts(0),
		Cmd: []string{"sh", "-c", "mkdir -p /srv && echo served by $(hostname) > /srv/index.html && exec httpd -f -p 80 -h /srv"}})
	var clients []*vmtest.VM
	for i := 1; i < 3; i++ {
		clients = append(clients, vmtest.Start(t, vmtest.Config{Image: ref, NICs: nics[i : i+1], Agent: true, Args: hosts(i),
			Cmd: []string{"sleep", "3600"}}))
	}
	for i, c := range clients {
		r := c.Exec("wget", "-qO-", "http://server/index.html")
		if r.Status != 0 || string(r.Stdout) != "served by server\n" {
			t.Errorf("%s: wget http://server/: status %d, stdout %q, stderr %q", names[i+1], r.Status, r.Stdout, r.Stderr)
		}
		r = c.Exec("sh", "-c", "hostname; echo oops >&2; exit 5")
		if r.Status != 5 || string(r.Stdout) != names[i+1]+"\n" || string(r.Stderr) != "oops\n" {
			t.Errorf("%s: exec: %+v", names[i+1], r)
		}
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	clients[0].PutFile("/tmp/blob", data, 0o644)
	sum := sha256.Sum256(data)
	r := clients[0].Exec("sha256sum", "/tmp/blob")
	if !strings.HasPrefix(string(r.Stdout), hex.EncodeToString(sum[:])) {
		t.Errorf("the guest's sha256 of the file put: %q", r.Stdout)
	}
	if got := clients[0].GetFile("/tmp/blob"); !bytes.Equal(got, data) {
		t.Errorf("GetFile returned %d bytes, want the %d put", len(got), len(data))
	}
	if r := server.Exec("cat", "/srv/index.html"); string(r.Stdout) != "served by server\n" {
		t.Errorf("server: exec cat: %+v", r)
	}
}
