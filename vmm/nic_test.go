package vmm

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestParseNIC(t *testing.T) {
	n, err := ParseNIC("tap=tap0,mac=02:00:00:00:00:02")
	if err != nil || n.TAP != "tap0" || n.Socket != "" || n.MAC.String() != "02:00:00:00:00:02" {
		t.Errorf("ParseNIC = %+v, %v", n, err)
	}
	if n, err := ParseNIC("tap=vm-eth1"); err != nil || n.TAP != "vm-eth1" || n.MAC != nil {
		t.Errorf("ParseNIC without mac = %+v, %v", n, err)
	}
	if n, err := ParseNIC("socket=/run/user/1000/lab.sock,mac=02:00:00:00:00:0a"); err != nil ||
		n.Socket != "/run/user/1000/lab.sock" || n.TAP != "" || n.MAC.String() != "02:00:00:00:00:0a" {
		t.Errorf("ParseNIC of a socket = %+v, %v", n, err)
	}
	if n, err := ParseNIC("socket=@lab"); err != nil || n.Socket != "@lab" || n.MAC != nil {
		t.Errorf("ParseNIC of an abstract socket = %+v, %v", n, err)
	}
	for spec, want := range map[string]string{
		"":                                    "tap=NAME or socket=PATH",
		"user":                                "tap=NAME or socket=PATH",
		"tap":                                 "no value",
		"tap=":                                "empty TAP name",
		"tap=0123456789abcdef":                "too long",
		"tap=a/b":                             "character",
		"tap=..":                              "not an interface name",
		"tap=t,mac=xx":                        "six hex bytes",
		"tap=t,mac=01:00:5e:00:00:01":         "multicast",
		"tap=t,mac=00:00:00:00:00:00":         "zero address",
		"tap=t,speed=10":                      "unknown option",
		"mac=02:00:00:00:00:01":               "tap=NAME or socket=PATH",
		"socket":                              "no value",
		"socket=":                             "empty socket path",
		"socket=/" + strings.Repeat("d", 107): "too long",
		"socket=/s,mac=01:00:5e:00:00:01":     "multicast",
		"socket=/s,tap=t0":                    "unknown option",
		"tap=t0,socket=/s":                    "unknown option",
	} {
		_, err := ParseNIC(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseNIC(%q) = %v, want an error mentioning %q", spec, err, want)
		}
	}
}

// TestNIC_Check: a Config's NIC names exactly one backend, valid.
func TestNIC_Check(t *testing.T) {
	for _, tt := range []struct {
		nic  NIC
		want string // "" for valid
	}{
		{NIC{TAP: "tap0"}, ""},
		{NIC{Socket: "/tmp/sw"}, ""},
		{NIC{Socket: "/tmp/sw", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, ""},
		{NIC{}, "empty TAP name"},
		{NIC{TAP: "tap0", Socket: "/tmp/sw"}, "not both"},
		{NIC{Socket: "/tmp/\x00"}, "NUL"},
		{NIC{Socket: "/tmp/sw", MAC: net.HardwareAddr{1, 0, 0, 0, 0, 1}}, "multicast"},
	} {
		err := tt.nic.check()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: check = %v, want %q", tt.nic, err, tt.want)
		}
	}
}

// TestNIC_MAC: a given address is kept; none means a random locally
// administered unicast one.
func TestNIC_MAC(t *testing.T) {
	mac, err := NIC{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}}.mac(bytes.NewReader(nil))
	if err != nil || mac.String() != "02:00:00:00:00:09" {
		t.Errorf("given MAC: %v, %v", mac, err)
	}
	mac, err = NIC{}.mac(bytes.NewReader([]byte{0xff, 1, 2, 3, 4, 5}))
	if err != nil || mac.String() != "fe:01:02:03:04:05" {
		t.Errorf("random MAC: %v, %v", mac, err)
	}
}
