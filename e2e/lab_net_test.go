package e2e

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/netswitch"
	"github.com/vmm-dev/vmm/vmtest"
)

// labMACs are the stations' fixed addresses.
var (
	labA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	labB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	labC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0c}
)

// labFeatures are the device-type feature bits (0-23) the device offers
// over a switch socket: MAC, MRG_RXBUF and STATUS, and no checksum or TSO
// offload either way (over a TAP it is 0x1bba3).
const labFeatures = "0x18020"

// labFrame is the frame vnetlab sends: EtherType 0x88b5 and
// "<what> from <src>".
func labFrame(dst, src net.HardwareAddr, what string) []byte {
	f := append(append(bytes.Clone(dst), src...), 0x88, 0xb5)
	return append(f, what+" from "+src.String()...)
}

// labRX is the line vnetlab prints for a frame it received.
func labRX(f []byte) string {
	return fmt.Sprintf("vnetlab: rx %d bytes %v > %v type %x: %x\n",
		len(f), net.HardwareAddr(f[6:12]), net.HardwareAddr(f[0:6]), f[12:14], f)
}

// TestLab_ThreeGuestsOnOneSwitch puts three micro-guests, each its own vmm
// process, on one netswitch.Switch that runs in this test process: A
// broadcasts a hello and pings B; B answers with a pong; C hears only the
// broadcast. Every console is compared whole, frames byte for byte, and
// the switch's counters must agree.
//
// It needs no root and no network namespace: the segment is a unix
// datagram socket in a temporary directory, and nothing touches a real
// interface. It is deterministic: B and C register their MACs when their
// vmm opens the socket, before they print "ready", and A starts only after
// that, so the switch knows every port before the first frame.
func TestLab_ThreeGuestsOnOneSwitch(t *testing.T) {
	kernel := guest(t, "vnetlab")
	sw, err := netswitch.New(filepath.Join(t.TempDir(), "sw"))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	start := func(mac net.HardwareAddr, role string) *vmtest.VM {
		return vmtest.Start(t, vmtest.Config{
			Kernel: kernel, Memory: "32M", Cmdline: "console=ttyS0 " + role,
			Args: []string{"--net", "socket=" + sw.Addr() + ",mac=" + mac.String(), "--rng=false"},
		})
	}
	b := start(labB, "reply")
	c := start(labC, "reply")
	b.Expect(`vnetlab: ready\n`, guestTimeout)
	c.Expect(`vnetlab: ready\n`, guestTimeout)
	a := start(labA, "bcast send="+labB.String())

	hello := labFrame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, labA, "hello")
	ping := labFrame(labB, labA, "ping")
	pong := labFrame(labA, labB, "pong")
	// Wait for the last frame each station receives, then end them all.
	b.Expect(`vnetlab: sent \d+ bytes to 02:00:00:00:00:0a\n`, guestTimeout)
	a.Expect(`vnetlab: rx .*\n`, guestTimeout)
	c.Expect(`vnetlab: rx .*\n`, guestTimeout)
	vms := []*vmtest.VM{a, b, c}
	for _, vm := range vms {
		vm.Write([]byte("q"))
	}
	for _, vm := range vms {
		if code := vm.Wait(guestTimeout); code != vmm.StatusGuestOff {
			t.Errorf("exit status %d, want %d; stderr:\n%s", code, vmm.StatusGuestOff, vm.Stderr())
		}
	}

	head := func(mac net.HardwareAddr) string {
		return fmt.Sprintf("vnetlab: features ok\nvnetlab: mac %v\nvnetlab: device features %s\nvnetlab: ready\n", mac, labFeatures)
	}
	sent := func(f []byte) string {
		return fmt.Sprintf("vnetlab: sent %d bytes to %v\n", len(f), net.HardwareAddr(f[0:6]))
	}
	want := map[*vmtest.VM]string{
		a: head(labA) + sent(hello) + sent(ping) + labRX(pong) + "vnetlab: done, 1 received\n",
		b: head(labB) + labRX(hello) + labRX(ping) + sent(pong) + "vnetlab: done, 2 received\n",
		c: head(labC) + labRX(hello) + "vnetlab: done, 1 received\n",
	}
	for i, vm := range vms {
		if got := vm.Console(); got != want[vm] {
			t.Errorf("station %c console:\n%s\nwant:\n%s", 'A'+i, got, want[vm])
			logFrames(t, got)
		}
	}

	st := sw.Stats()
	if len(st.Ports) != 3 || st.Dropped != 0 || st.Forgotten != 0 {
		t.Errorf("switch stats %+v, want 3 ports and nothing dropped or forgotten", st)
	}
	for _, tt := range []struct {
		mac                           net.HardwareAddr
		forwarded, flooded, delivered uint64
	}{
		{labA, 1, 1, 1}, // ping; hello; pong
		{labB, 1, 0, 2}, // pong; -; hello and ping
		{labC, 0, 0, 1}, // -; -; hello
	} {
		p, ok := st.Port(tt.mac)
		if !ok || p.Forwarded != tt.forwarded || p.Flooded != tt.flooded || p.Delivered != tt.delivered || p.Dropped != 0 || p.Lost != 0 {
			t.Errorf("port of %v: %+v; want forwarded %d, flooded %d, delivered %d, none dropped or lost",
				tt.mac, p, tt.forwarded, tt.flooded, tt.delivered)
		}
	}
}

// logFrames decodes the frames in a vnetlab console, to show how a frame
// differs from the one expected.
func logFrames(t *testing.T, console string) {
	for _, line := range strings.Split(console, "\n") {
		if _, h, ok := strings.Cut(line, "88b5: "); ok {
			if f, err := hex.DecodeString(h); err == nil {
				t.Logf("frame %q", f)
			}
		}
	}
}

// TestLab_NetSocket_Errors: a switch socket the VMM cannot use is a clear
// error before the guest starts.
func TestLab_NetSocket_Errors(t *testing.T) {
	kernel := guest(t, "vnetlab")
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arg      string
		wantCode int
		want     string
	}{
		{"socket=" + filepath.Join(dir, "none"), vmm.StatusSetupError, "no switch is listening there"},
		{"socket=" + file, vmm.StatusSetupError, "not a switch's socket"},
		{"socket=", vmm.StatusUsage, "empty socket path"},
		{"socket=/s,mac=01:00:00:00:00:01", vmm.StatusUsage, "multicast"},
	} {
		res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", Args: []string{"--net", tc.arg, "--rng=false"}}, guestTimeout)
		if res.Code != tc.wantCode || !strings.Contains(res.Stderr, tc.want) || res.Console != "" {
			t.Errorf("--net %s: status %d, stderr %q, console %q; want %d and a message mentioning %q before the guest runs",
				tc.arg, res.Code, res.Stderr, res.Console, tc.wantCode, tc.want)
		}
	}
}
