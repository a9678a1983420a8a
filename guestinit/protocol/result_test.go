package protocol

import (
	"errors"
	"reflect"
	"testing"
)

func TestResult_String(t *testing.T) {
	for _, tt := range []struct {
		r    Result
		want string
	}{
		{Passed("cpus", "online", "0-1", "count", "2"), "VMM-CHECK cpus online=0-1 count=2 ok"},
		{Passed("pci"), "VMM-CHECK pci ok"},
		{Passed("disk", "path", "/a b"), "VMM-CHECK disk path=/a_b ok"},
		{Failed("disk", errors.New("mount /dev/vda on /mnt:\nno such device")), "VMM-CHECK disk FAIL mount /dev/vda on /mnt: no such device"},
		{Failed("net", nil), "VMM-CHECK net FAIL failed"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestParseResult_RoundTrip(t *testing.T) {
	for _, r := range []Result{
		Passed("cpus", "online", "0-1", "count", "2"),
		Passed("pci", "0000:00:01.0", "1af4:1042", "0000:00:02.0", "1af4:1041"),
		Passed("serve", "bytes", "5", "query", "a=b"),
		Failed("disk", errors.New("mount: no such device")),
	} {
		got, ok := ParseResult("[    1.234] junk " + r.String() + "\r")
		if !ok || !reflect.DeepEqual(got, r) {
			t.Errorf("ParseResult(%q) = %+v, %v; want %+v", r.String(), got, ok, r)
		}
	}
}

func TestParseResult_NotResults(t *testing.T) {
	for _, line := range []string{
		"", "VMM-CHECK", "VMM-CHECK cpus", "VMM-CHECK cpus online=0-1", "VMM-CHECK cpus online ok",
		"VMM-CHECKcpus x=1 ok", "[    0.1] Linux version 6.1",
	} {
		if r, ok := ParseResult(line); ok {
			t.Errorf("ParseResult(%q) = %+v, want no result", line, r)
		}
	}
}

func TestParseResults_InOrder_Get(t *testing.T) {
	rs := ParseResults("boot\r\nVMM-CHECK cpus online=0-1 count=2 ok\r\nnoise\nVMM-CHECK pci FAIL no sysfs\nVMM-CHECK net FAIL interf")
	if len(rs) != 2 || rs[0].Name != "cpus" || rs[1].Name != "pci" || rs[1].OK() || !rs[0].OK() {
		t.Fatalf("ParseResults = %+v", rs)
	}
	if v, ok := rs[0].Get("online"); !ok || v != "0-1" {
		t.Errorf("Get(online) = %q, %v", v, ok)
	}
	if _, ok := rs[0].Get("missing"); ok {
		t.Error("Get(missing) found a value")
	}
}
