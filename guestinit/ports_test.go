package guestinit

import (
	"maps"
	"strings"
	"testing"
	"testing/fstest"
)

func TestFindPorts(t *testing.T) {
	sys := fstest.MapFS{
		"class/virtio-ports/vport0p0/name": {Data: []byte("vmm.stdin\n")},
		"class/virtio-ports/vport0p1/name": {Data: []byte("vmm.stdout\n")},
		"class/virtio-ports/vport0p2/name": {Data: []byte("\n")}, // unnamed
		"class/virtio-ports/vport0p3/dev":  {Data: []byte("250:3\n")},
		"class/virtio-ports/other/name":    {Data: []byte("x\n")},
	}
	got, err := FindPorts(sys)
	want := map[string]string{"vmm.stdin": "/dev/vport0p0", "vmm.stdout": "/dev/vport0p1"}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("FindPorts = %v, %v; want %v", got, err, want)
	}

	sys["class/virtio-ports/vport1p0/name"] = &fstest.MapFile{Data: []byte("vmm.stdout\n")}
	if _, err := FindPorts(sys); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("duplicate names: %v, want an error naming both ports", err)
	}
	if _, err := FindPorts(fstest.MapFS{}); err == nil {
		t.Error("no virtio-ports class: no error")
	}
}
