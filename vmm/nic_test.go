package vmm

import (
	"strings"
	"testing"
)

func TestParseNIC(t *testing.T) {
	n, err := ParseNIC("tap=tap0,mac=02:00:00:00:00:02")
	if err != nil || n.TAP != "tap0" || n.MAC.String() != "02:00:00:00:00:02" {
		t.Errorf("ParseNIC = %+v, %v", n, err)
	}
	if n, err := ParseNIC("tap=vm-eth1"); err != nil || n.TAP != "vm-eth1" || n.MAC != nil {
		t.Errorf("ParseNIC without mac = %+v, %v", n, err)
	}
	for spec, want := range map[string]string{
		"":                            "only backend",
		"user":                        "only backend",
		"tap":                         "no value",
		"tap=":                        "empty TAP name",
		"tap=0123456789abcdef":        "too long",
		"tap=a/b":                     "character",
		"tap=..":                      "not an interface name",
		"tap=t,mac=xx":                "six hex bytes",
		"tap=t,mac=01:00:5e:00:00:01": "multicast",
		"tap=t,mac=00:00:00:00:00:00": "zero address",
		"tap=t,speed=10":              "unknown option",
		"mac=02:00:00:00:00:01":       "only backend",
	} {
		_, err := ParseNIC(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseNIC(%q) = %v, want an error mentioning %q", spec, err, want)
		}
	}
}
