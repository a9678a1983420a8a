package seccomp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/kvm"
	"github.com/vmm-dev/vmm/vmm/seccomp/policy"
)

// The filter is for good and process-wide, so it is tested in a child:
// the test binary re-run with childEnv set.
const childEnv = "VMM_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child(os.Getenv(childEnv)))
	}
	os.Exit(m.Run())
}

// child installs the filter and reports, one line each, what was allowed
// and what refused.
func child(dir string) int {
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	defer ln.Close()
	if err := Install(); err != nil {
		fmt.Println("install:", err)
		return 1
	}
	report := func(what string, err error) {
		switch {
		case err == nil:
			fmt.Println(what, "allowed")
		case errors.Is(err, unix.EPERM):
			fmt.Println(what, "refused")
		default:
			fmt.Println(what, "failed:", err)
		}
	}
	_, err = os.Open("/etc/hostname")
	report("open", err)
	report("exec", unix.Exec("/bin/true", []string{"true"}, nil))
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.Close(fd)
	}
	report("inet-socket", err)
	c, err := net.Dial("unix", filepath.Join(dir, "s"))
	if err == nil {
		c.Close()
	}
	report("unix-dial", err)
	report("mount", unix.Mount("none", dir, "tmpfs", 0, ""))
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
	report("unix-socketpair", err)
	_, err = unix.Socketpair(unix.AF_INET, unix.SOCK_STREAM, 0)
	report("inet-socketpair", err)
	// New OS threads (locked goroutines force them) still start: clone
	// for threads is allowed, clone3 falls back to it.
	var wg sync.WaitGroup
	var mu sync.Mutex
	tids := map[int]bool{}
	for range 8 {
		wg.Go(func() {
			runtime.LockOSThread()
			mu.Lock()
			tids[unix.Gettid()] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(tids) < 2 {
		fmt.Println("threads failed:", len(tids))
	} else {
		fmt.Println("threads allowed")
	}
	f := os.NewFile(uintptr(3), "inherited")
	_, err = f.Write([]byte("x"))
	report("write-held-fd", err)
	diskIO(f, report)
	for _, io := range append(policy.Ioctls(), refusedIoctls...) {
		// A regular file answers most requests ENOTTY: the filter let it
		// through. EPERM is the filter's.
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), io.Request, 0)
		if errno == unix.EPERM {
			fmt.Println("ioctl", io.Name, "refused")
		} else {
			fmt.Println("ioctl", io.Name, "allowed")
		}
	}
	return 0
}

// diskIO makes the calls virtio-blk's file backend makes on a disk image,
// on a held file: its inline path's RWF_NOWAIT reads and writes included
// (a filter that refused those made every request take the slow path,
// silently).
func diskIO(f *os.File, report func(string, error)) {
	fd := int(f.Fd())
	buf := make([]byte, 4096)
	iov := [][]byte{buf}
	_, err := unix.Preadv2(fd, iov, 0, unix.RWF_NOWAIT)
	report("preadv2-nowait", err)
	_, err = unix.Pwritev2(fd, iov, 4096, 0)
	report("pwritev2", err)
	_, err = unix.Preadv(fd, iov, 0)
	report("preadv", err)
	_, err = unix.Pwritev(fd, iov, 4096)
	report("pwritev", err)
	_, err = unix.Pread(fd, buf, 0)
	report("pread", err)
	_, err = unix.Pwrite(fd, buf[:1], 0)
	report("pwrite", err)
	report("fdatasync", unix.Fdatasync(fd))
	mappedDisk(fd, report)
}

// mappedDisk does what virtio-blk's file backend does with its mapping of
// the image (virtio/blk/filemap.go): map it, ask mincore which pages are
// cached, and turn the SIGBUS of a copy from a page past the end of the
// file into a recovered panic. The held file is two pages long here; the
// mapping has three.
func mappedDisk(fd int, report func(string, error)) {
	m, err := unix.Mmap(fd, 0, 3*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	report("mmap-shared", err)
	if err != nil {
		return
	}
	defer unix.Munmap(m)
	report("mincore", mincore(m, make([]byte, 3)))
	fmt.Println("copy past the end:", copyFaults(m[2*4096:]))
}

// copyFaults copies src and reports how that went: a fault the runtime
// turned into a panic is what the file backend relies on.
func copyFaults(src []byte) (how string) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if _, fault := recover().(interface{ Addr() uintptr }); fault {
			how = "a fault, recovered"
		}
	}()
	copy(make([]byte, len(src)), src)
	return "no fault"
}

// refusedIoctls are requests a running VMM never makes: one that would
// type into the terminal, set-up ones, and values that would pass if the
// filter compared the request as a call number (1 is write) or only its
// low half.
var refusedIoctls = []policy.Ioctl{
	{Name: "TIOCSTI", Request: unix.TIOCSTI},
	{Name: "FIONREAD", Request: unix.TIOCINQ}, // the same request
	{Name: "TUNSETIFF", Request: unix.TUNSETIFF},
	{Name: "KVM_CREATE_VM", Request: kvm.KVM_CREATE_VM},
	{Name: "KVM_GET_API_VERSION", Request: kvm.KVM_GET_API_VERSION},
	{Name: "KVM_SET_USER_MEMORY_REGION", Request: kvm.KVM_SET_USER_MEMORY_REGION},
	{Name: "KVM_SET_CPUID2", Request: kvm.KVM_SET_CPUID2},
	{Name: "request-0", Request: 0},
	{Name: "request-1", Request: 1},
	{Name: "TCGETS-high-bits", Request: 1<<32 | unix.TCGETS},
	{Name: "KVM_RUN-high-bits", Request: 0xffffffff<<32 | kvm.KVM_RUN},
}

func TestFilter_RefusesWhatAVMMDoesNotNeed(t *testing.T) {
	dir := t.TempDir()
	held, err := os.Create(filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.ExtraFiles = []*os.File{held}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := "open refused\nexec refused\ninet-socket refused\nunix-dial allowed\nmount refused\nunix-socketpair allowed\ninet-socketpair refused\nthreads allowed\nwrite-held-fd allowed\n" +
		"preadv2-nowait allowed\npwritev2 allowed\npreadv allowed\npwritev allowed\npread allowed\npwrite allowed\nfdatasync allowed\n" +
		"mmap-shared allowed\nmincore allowed\ncopy past the end: a fault, recovered\n"
	for _, io := range policy.Ioctls() {
		want += "ioctl " + io.Name + " allowed\n"
	}
	for _, io := range refusedIoctls {
		want += "ioctl " + io.Name + " refused\n"
	}
	if string(out) != want {
		t.Errorf("child said:\n%s\nwant:\n%s", out, want)
	}
	// "x", then diskIO's two 4 KiB writes of what it read back.
	if b, _ := os.ReadFile(held.Name()); len(b) != 8192 || b[0] != 'x' || b[4096] != 'x' {
		t.Errorf("held file holds %d bytes, %q...", len(b), b[:min(len(b), 8)])
	}
}

// filters.go is what the policy assembles to now: run go generate
// ./vmm/seccomp after changing the policy.
func TestFilters_AreCurrent(t *testing.T) {
	want, err := policy.Program()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(program, want) {
		t.Fatal("filters.go is stale: run go generate ./vmm/seccomp")
	}
}
