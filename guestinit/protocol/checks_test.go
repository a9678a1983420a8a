package protocol

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCmdline_NoChecks_Empty(t *testing.T) {
	c, err := ParseCmdline("console=ttyS0 panic=-1 root=/dev/vda\n")
	if err != nil || c.Any() {
		t.Fatalf("ParseCmdline = %+v, %v; want no checks", c, err)
	}
}

func TestParseCmdline_AllChecks(t *testing.T) {
	cmdline := `console=ttyS0 vmm.check=net,disk,cpus,pci vmm.disk.hash=/in.bin ` +
		`vmm.disk.write=/out%20file.txt "vmm.disk.data=hi there%0A" vmm.net.addr=10.0.2.15/24 ` +
		`vmm.net.gw=10.0.2.1 vmm.net.port=8080 vmm.net.file=/mnt/in.bin vmm.net.timeout=5` + "\n"
	got, err := ParseCmdline(cmdline)
	if err != nil {
		t.Fatal(err)
	}
	want := Checks{
		CPUs: true,
		PCI:  true,
		Disk: &DiskCheck{Device: "/dev/vda", FSType: "ext4", Hash: "/in.bin", Write: "/out file.txt", Data: []byte("hi there\n")},
		Net: &NetCheck{
			Interface: "eth0", Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.1"),
			Port: 8080, File: "/mnt/in.bin", Timeout: 5 * time.Second,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCmdline = %+v %+v %+v\nwant %+v %+v %+v", got, got.Disk, got.Net, want, want.Disk, want.Net)
	}
}

func TestParseCmdline_OptionsOfChecksNotAskedFor_Ignored(t *testing.T) {
	c, err := ParseCmdline("vmm.check=cpus vmm.net.addr=garbage vmm.disk.hash=/x")
	if err != nil || c.Disk != nil || c.Net != nil || !c.CPUs {
		t.Fatalf("ParseCmdline = %+v, %v; want only cpus", c, err)
	}
}

func TestParseCmdline_BadOptions(t *testing.T) {
	for _, tt := range []struct{ cmdline, wantErr string }{
		{"vmm.check=cpu", `unknown check "cpu"`},
		{"vmm.check=cpus vmm.disk.hsah=/x", "unknown option vmm.disk.hsah"},
		{"vmm.check=net", "vmm.net.addr"},
		{"vmm.check=net vmm.net.addr=10.0.2.15", "vmm.net.addr"},
		{"vmm.check=net vmm.net.addr=fd00::1/64", "vmm.net.addr"},
		{"vmm.check=net vmm.net.addr=10.0.2.15/24 vmm.net.gw=fd00::1", "vmm.net.gw"},
		{"vmm.check=net vmm.net.addr=10.0.2.15/24 vmm.net.port=0 vmm.net.file=/f", "vmm.net.port"},
		{"vmm.check=net vmm.net.addr=10.0.2.15/24 vmm.net.port=65536 vmm.net.file=/f", "vmm.net.port"},
		{"vmm.check=net vmm.net.addr=10.0.2.15/24 vmm.net.port=80", "needs vmm.net.file"},
		{"vmm.check=net vmm.net.addr=10.0.2.15/24 vmm.net.timeout=-1", "vmm.net.timeout"},
		{"vmm.check=disk vmm.disk.data=%zz", "vmm.disk.data"},
	} {
		_, err := ParseCmdline(tt.cmdline)
		if !errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseCmdline(%q) = %v, want ErrBadOption mentioning %q", tt.cmdline, err, tt.wantErr)
		}
	}
}

func TestParams_RoundTrip(t *testing.T) {
	want := Checks{
		CPUs: true,
		Disk: &DiskCheck{Device: "/dev/vdb", FSType: "ext4", Hash: "/a b", Write: "/out", Data: []byte("100% \"quoted\"\x00\xff\n")},
		Net:  &NetCheck{Interface: "eth1", Addr: netip.MustParsePrefix("192.168.1.2/16"), Port: 7, File: "/etc/x", Timeout: time.Minute},
	}
	params := want.Params()
	for _, p := range params {
		if strings.ContainsAny(p, " \"\n") {
			t.Errorf("param %q would not survive the kernel command line", p)
		}
	}
	got, err := ParseCmdline("console=ttyS0 " + strings.Join(params, " "))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip of %q:\n got %+v %+v %+v\nwant %+v %+v %+v", params, got, got.Disk, got.Net, want, want.Disk, want.Net)
	}
}

func TestParams_NoChecks_Nothing(t *testing.T) {
	if p := (Checks{}).Params(); p != nil {
		t.Errorf("Params() = %q, want nothing", p)
	}
}

func TestSplitCmdline_LikeTheKernel(t *testing.T) {
	got := SplitCmdline(" a=1  \"b=two words\" c=\"3 4\"\tlast\n")
	want := []string{"a=1", "b=two words", "c=3 4", "last"}
	if !slices.Equal(got, want) {
		t.Errorf("SplitCmdline = %q, want %q", got, want)
	}
}

func FuzzParams_RoundTrip(f *testing.F) {
	f.Add("/in", "/out", []byte("data"))
	f.Fuzz(func(t *testing.T, hash, write string, data []byte) {
		in := Checks{Disk: &DiskCheck{Device: "/dev/vda", FSType: "ext4", Hash: hash, Write: write, Data: data}}
		out, err := ParseCmdline(strings.Join(in.Params(), " "))
		if err != nil {
			t.Fatal(err)
		}
		if out.Disk == nil || out.Disk.Hash != hash || out.Disk.Write != write || string(out.Disk.Data) != string(data) {
			t.Fatalf("round trip of %q: got %+v", in.Params(), out.Disk)
		}
	})
}
