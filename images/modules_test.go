package images

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// fakeModule returns a minimal ELF64 relocatable object whose .modinfo
// holds the given key=value strings, as modpost writes them.
func fakeModule(t *testing.T, modinfo ...string) []byte {
	t.Helper()
	info := []byte(strings.Join(modinfo, "\x00") + "\x00")
	shstrtab := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	infoOff := uint64(ehsize)
	strOff := infoOff + uint64(len(info))
	shOff := (strOff + uint64(len(shstrtab)) + 7) &^ 7

	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	sections := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: infoOff, Size: uint64(len(info)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstrtab)), Addralign: 1},
	}
	binary.Write(&b, binary.LittleEndian, hdr)
	b.Write(info)
	b.Write(shstrtab)
	b.Write(make([]byte, shOff-uint64(b.Len())))
	binary.Write(&b, binary.LittleEndian, sections)
	return b.Bytes()
}

func xzCompress(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fakeModulesTree lays out a lib/modules/<release> tree shaped like
// Debian's cloud kernel: virtio as modules (one xz-compressed, one with a
// '-' in its file name), ext4 and crc16 built in, no modules.dep.
func fakeModulesTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel string, data []byte) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mod := func(name, depends string) []byte {
		return fakeModule(t, "license=GPL", "depends="+depends, "name="+name)
	}
	write("kernel/drivers/virtio/virtio_ring.ko", mod("virtio_ring", ""))
	write("kernel/drivers/virtio/virtio.ko.xz", xzCompress(t, mod("virtio", "virtio_ring")))
	write("kernel/drivers/virtio/virtio_pci_modern_dev.ko", mod("virtio_pci_modern_dev", ""))
	write("kernel/drivers/virtio/virtio_pci.ko", mod("virtio_pci", "virtio_ring,virtio_pci_modern_dev,virtio"))
	write("kernel/drivers/block/virtio_blk.ko", mod("virtio_blk", "virtio,virtio_ring"))
	write("kernel/drivers/char/hw_random/virtio-rng.ko", mod("virtio_rng", "virtio,virtio_ring,rng_core"))
	write("kernel/net/core/failover.ko", mod("failover", ""))
	write("kernel/drivers/net/net_failover.ko", mod("net_failover", "failover"))
	write("kernel/drivers/net/virtio_net.ko", mod("virtio_net", "virtio_ring,virtio,net_failover"))
	write("kernel/drivers/char/virtio_console.ko", mod("virtio_console", "virtio,virtio_ring"))
	write("kernel/fs/overlayfs/overlay.ko", mod("overlay", ""))
	write("modules.builtin", []byte("kernel/fs/ext4/ext4.ko\nkernel/lib/crc16.ko\nkernel/drivers/char/hw_random/rng-core.ko\n"))
	write("modules.order", []byte("kernel/drivers/virtio/virtio_ring.ko\n"))
	return dir
}

func moduleNames(mods []Module) []string {
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
	}
	return names
}

func TestResolveModules_DependenciesFirst_BuiltinsLeftOut(t *testing.T) {
	mods, err := ResolveModules(fakeModulesTree(t), GuestModules())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio_ring", "virtio_pci_modern_dev", "virtio", "virtio_pci", "virtio_blk",
		"failover", "net_failover", "virtio_net", "virtio_rng", "virtio_console", "overlay"}
	if got := moduleNames(mods); !slices.Equal(got, want) {
		t.Errorf("load order = %v\nwant %v", got, want)
	}
	for _, m := range mods {
		if !bytes.HasPrefix(m.Data, []byte(elf.ELFMAG)) {
			t.Errorf("%s (%s): data starts %q, want a decompressed ELF image", m.Name, m.Path, m.Data[:4])
		}
	}
}

func TestResolveModules_DashedFileName(t *testing.T) {
	mods, err := ResolveModules(fakeModulesTree(t), []string{"virtio-rng"})
	if err != nil {
		t.Fatal(err)
	}
	last := mods[len(mods)-1]
	if last.Name != "virtio_rng" || last.Path != "kernel/drivers/char/hw_random/virtio-rng.ko" {
		t.Errorf("virtio-rng resolved to %+v", last)
	}
}

func TestResolveModules_Missing(t *testing.T) {
	dir := fakeModulesTree(t)
	if err := os.Remove(filepath.Join(dir, "kernel/net/core/failover.ko")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, want string }{
		{"virtio_net", "failover (needed by net_failover)"},
		{"e1000e", "e1000e in"},
	} {
		_, err := ResolveModules(dir, []string{tt.name})
		if !errors.Is(err, ErrModuleNotFound) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ResolveModules(%s) = %v, want ErrModuleNotFound naming %q", tt.name, err, tt.want)
		}
	}
}

func TestResolveModules_Cycle(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.ko"), fakeModule(t, "depends=b", "name=a"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.ko"), fakeModule(t, "depends=a", "name=b"), 0o644)
	_, err := ResolveModules(dir, []string{"a"})
	if err == nil || !strings.Contains(err.Error(), "cycle: a -> b -> a") {
		t.Errorf("ResolveModules = %v, want a cycle error", err)
	}
}

func TestResolveModules_NotAModule(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.ko"), []byte("not elf"), 0o644)
	if _, err := ResolveModules(dir, []string{"a"}); err == nil || !strings.Contains(err.Error(), "a.ko: not an ELF module") {
		t.Errorf("ResolveModules = %v, want a not-ELF error naming the file", err)
	}
}

func TestModuleFiles_DecompressedPathsAndList(t *testing.T) {
	mods := []Module{
		{Name: "virtio_ring", Path: "kernel/drivers/virtio/virtio_ring.ko", Data: []byte("ring")},
		{Name: "virtio", Path: "kernel/drivers/virtio/virtio.ko.xz", Data: []byte("virtio")},
	}
	files := ModuleFiles("6.1.0-test", mods)
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	want := []string{
		"/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio_ring.ko",
		"/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio.ko",
		protocol.ModuleList,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paths = %q, want %q", got, want)
	}
	if list := string(files[2].Data); list != want[0]+"\n"+want[1]+"\n" {
		t.Errorf("module list = %q", list)
	}
}

func TestGuestinitInitramfsWithModules_HoldsInitModulesAndList(t *testing.T) {
	cache := t.TempDir()
	k := Kernel{Version: "6.1.0-test", ModulesDir: fakeModulesTree(t)}
	a, err := GuestinitInitramfsWithModules(context.Background(), cache, k, GuestModules())
	if err != nil {
		t.Fatal(err)
	}
	b, err := GuestinitInitramfsWithModules(context.Background(), cache, k, GuestModules())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	contents := map[string][]byte{}
	for _, r := range readArchive(t, data) {
		buf := make([]byte, r.FileSize)
		r.ReadAt(buf, 0)
		contents[r.Name] = buf
	}
	list := protocol.ModuleList[1:]
	paths := strings.Fields(string(contents[list]))
	if a != b || len(paths) != 11 || !bytes.HasPrefix(contents["init"], []byte(elf.ELFMAG)) {
		t.Fatalf("paths %s, %s; module list %q; want one cached archive with /init and 11 modules", a, b, contents[list])
	}
	for _, p := range paths {
		if !bytes.HasPrefix(contents[p[1:]], []byte(elf.ELFMAG)) {
			t.Errorf("listed module %s is not an ELF file in the archive", p)
		}
	}
}

// Once built, the archive is found through the index without reading the
// modules again; an index entry whose archive is gone is rebuilt.
func TestGuestinitInitramfsWithModules_IndexSkipsModules(t *testing.T) {
	cache := t.TempDir()
	k := Kernel{Version: "6.1.0-test", ModulesDir: fakeModulesTree(t)}
	a, err := GuestinitInitramfsWithModules(context.Background(), cache, k, GuestModules())
	if err != nil {
		t.Fatal(err)
	}
	gone := k.ModulesDir + ".moved"
	if err := os.Rename(k.ModulesDir, gone); err != nil {
		t.Fatal(err)
	}
	b, err := GuestinitInitramfsWithModules(context.Background(), cache, k, GuestModules())
	if err != nil || b != a {
		t.Fatalf("second call without the modules tree: %s, %v; want the cached %s", b, err, a)
	}
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if _, err := GuestinitInitramfsWithModules(context.Background(), cache, k, GuestModules()); err == nil {
		t.Fatal("an index entry without its archive was trusted")
	}
	if err := os.Rename(gone, k.ModulesDir); err != nil {
		t.Fatal(err)
	}
	c, err := GuestinitInitramfsWithModules(context.Background(), cache, k, GuestModules())
	if err != nil || c != a {
		t.Fatalf("rebuild: %s, %v; want %s again", c, err, a)
	}
	if _, err := os.Stat(c); err != nil {
		t.Fatal(err)
	}
}
