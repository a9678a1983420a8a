package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/vmm-dev/vmm/internal/fullfs"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmtest"
)

// TestVirtio_BlockAndRNG has a guest drive the virtio-pci devices as a
// polled driver: it finds the capabilities, negotiates VERSION_1, sets up
// queue 0 and sends the block device GET_ID, a read of sector 0, a write
// of sector 1, a flush and a read past the end (IOERR), and the entropy
// device one 16-byte buffer. What
// the guest read must be the file's sector 0 and what it wrote must land
// in the file; on a read-only disk the write fails with IOERR and the file
// is untouched.
func TestVirtio_BlockAndRNG(t *testing.T) {
	kernel := guest(t, "virtio")
	const sector = 512
	pattern := make([]byte, sector)
	for i := range pattern {
		pattern[i] = byte(i*7 + 3)
	}
	for _, tc := range []struct {
		name        string
		readOnly    bool
		writeStatus int
	}{
		{"rw", false, 0},
		{"ro", true, 1}, // VIRTIO_BLK_S_IOERR
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := filepath.Join(t.TempDir(), "disk.img")
			img := make([]byte, 64<<10)
			rand.Read(img[:sector])
			if err := os.WriteFile(disk, img, 0o644); err != nil {
				t.Fatal(err)
			}
			h := fnv.New32a()
			h.Write(img[:sector])
			arg := disk
			if tc.readOnly {
				arg += ",ro"
			}

			res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", Args: []string{"--disk", arg}}, guestTimeout)

			before := "virtio: device 1 id=0x1042\n" +
				"virtio-blk: features ok\n" +
				"virtio-blk: capacity 128 sectors\n" +
				"virtio-blk: id "
			after := "\n" +
				fmt.Sprintf("virtio-blk: sector0 fnv=%#x\n", h.Sum32()) +
				fmt.Sprintf("virtio-blk: write status %d\n", tc.writeStatus) +
				"virtio-blk: flush status 0\n" +
				"virtio-blk: past end status 1\n" +
				"virtio: device 2 id=0x1044\n" +
				"virtio-rng: features ok\n" +
				"virtio-rng: got 16 bytes\n" +
				"virtio: 2 device(s)\n"
			id := diskID(t, disk)
			if !regexp.MustCompile(`\A` + regexp.QuoteMeta(before) + id + regexp.QuoteMeta(after) + `\z`).MatchString(res.Console) {
				t.Errorf("console:\n%s\nwant (id matching %s):\n%s<id>%s", res.Console, id, before, after)
			}
			if res.Code != vmm.StatusGuestOff {
				t.Errorf("exit status %d, want %d; stderr:\n%s", res.Code, vmm.StatusGuestOff, res.Stderr)
			}

			got, err := os.ReadFile(disk)
			if err != nil {
				t.Fatal(err)
			}
			// The write lands in sector 1 and nowhere else; read-only, nothing moves.
			wantImg := img
			if !tc.readOnly {
				wantImg = bytes.Clone(img)
				copy(wantImg[sector:], pattern)
			}
			switch {
			case len(got) != len(wantImg):
				t.Errorf("disk is %d bytes after the run, want %d", len(got), len(wantImg))
			case !bytes.Equal(got[sector:2*sector], wantImg[sector:2*sector]):
				t.Errorf("sector 1 after the run starts % x, want % x", got[sector:sector+16], wantImg[sector:sector+16])
			case !bytes.Equal(got, wantImg):
				t.Errorf("disk changed outside sector 1")
			}
		})
	}
}

// diskID is a regexp for the GET_ID string of the file at path: "dev:ino"
// in hex as virtio/blk makes it, or its hashed form when that is longer than
// the 20 bytes GET_ID has.
func diskID(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return `\S+`
	}
	if id := fmt.Sprintf("%x:%x", uint64(st.Dev), st.Ino); len(id) <= 20 {
		return regexp.QuoteMeta(id)
	}
	return `vmm-[0-9a-f]{16}`
}

// TestVirtio_Interrupts has a guest take the block device's used-buffer
// interrupts: an MSI-X message (held pending while its vector is masked,
// sent on unmask; the VMM delivers it through a GSI route and an irqfd),
// then, with MSI-X off, INTx through the IOAPIC input the Interrupt Line
// register names, which the ISR read must deassert (the function's STATUS
// Interrupt Status bit shows it).
func TestVirtio_Interrupts(t *testing.T) {
	kernel := guest(t, "virtioirq")
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", Args: []string{"--disk", disk, "--rng=false"}}, guestTimeout)
	want := regexp.MustCompile(`\Avirtio-irq: features ok
virtio-irq: msi-x masked, pending 1
virtio-irq: msi-x vector 0x41, pending 0
virtio-irq: features ok
virtio-irq: intx gsi (1[6-9]|2[0-3]) vector 0x42 isr 0x1
virtio-irq: intx status 1 before the isr read, 0 after
\z`)
	if !want.MatchString(res.Console) {
		t.Errorf("console:\n%s\nwant to match:\n%s", res.Console, want)
	}
	if res.Code != vmm.StatusGuestOff {
		t.Errorf("exit status %d, want %d; stderr:\n%s", res.Code, vmm.StatusGuestOff, res.Stderr)
	}
}

// TestVirtio_FlushedDataSurvivesSIGKILL: once the guest's flush has
// completed, killing vmm outright (SIGKILL: no cleanup runs) leaves the
// written sector in the disk image.
func TestVirtio_FlushedDataSurvivesSIGKILL(t *testing.T) {
	kernel := guest(t, "virtio")
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.Start(t, vmtest.Config{Kernel: kernel, Memory: "32M", Cmdline: "console=ttyS0 hold",
		Args: []string{"--rng=false", "--disk", disk}})
	vm.Expect(`virtio-blk: flush status 0\n`, guestTimeout)
	vm.Expect(`virtio-blk: holding\n`, guestTimeout)
	vm.Signal(syscall.SIGKILL)
	if code := vm.Wait(guestTimeout); code != -1 {
		t.Fatalf("vmm exited %d, want death by SIGKILL", code)
	}
	got, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 512 {
		if got[512+i] != byte(i*7+3) {
			t.Fatalf("sector 1 byte %d is %#x after SIGKILL, want %#x: flushed data lost", i, got[512+i], byte(i*7+3))
		}
	}
}

// TestVirtio_HostDiskFull_IOError: when the host filesystem under a disk
// is full, the guest's write fails with VIRTIO_BLK_S_IOERR and the VM
// goes on; vmm does not die.
func TestVirtio_HostDiskFull_IOError(t *testing.T) {
	kernel := guest(t, "virtio")
	disk := fullfs.SparseDisk(t, 64<<10)
	res := vmtest.Run(t, vmtest.Config{Kernel: kernel, Memory: "32M", Args: []string{"--rng=false", "--disk", disk}}, guestTimeout)
	if !strings.Contains(res.Console, "virtio-blk: write status 1\n") || !strings.Contains(res.Console, "virtio: 1 device(s)") || res.Code != 0 {
		t.Fatalf("status %d, console:\n%s\nstderr:\n%s\nwant the write to fail with IOERR (1) and the guest to finish", res.Code, res.Console, res.Stderr)
	}
}
