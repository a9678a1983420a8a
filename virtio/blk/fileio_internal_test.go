package blk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// File's system calls, faked: what each transfer call did with the counts
// and errnos the kernel may return. The real calls are tested from the
// outside (vectored_test.go, file_test.go).

// sysCall is one call a fakeSys saw.
type sysCall struct {
	write  bool
	vector bool // bufs, not p
	nbufs  int
	off    int64
	flags  int
}

// fakeSys is a sysFunc over an in-memory file: each call moves at most
// limit bytes (0: all), or returns the next of errs first.
type fakeSys struct {
	mu    sync.Mutex
	data  []byte
	limit int
	errs  []error
	calls []sysCall
	// during, if set, runs inside every call, with fd.
	during func(fd int)
}

func (f *fakeSys) call(fd int, p []byte, bufs [][]byte, off int64, write bool, flags int) (int, error) {
	if f.during != nil {
		f.during(fd)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, sysCall{write: write, vector: bufs != nil, nbufs: len(bufs), off: off, flags: flags})
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return -1, err
		}
	}
	if bufs == nil {
		bufs = [][]byte{p}
	}
	n := 0
	for _, b := range bufs {
		for i := range b {
			at := int(off) + n
			if (f.limit > 0 && n == f.limit) || at >= len(f.data) {
				return n, nil
			}
			if write {
				f.data[at] = b[i]
			} else {
				b[i] = f.data[at]
			}
			n++
		}
	}
	return n, nil
}

func (f *fakeSys) log() []sysCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// fakeFile is a File on a real (empty) file whose transfers go to fake,
// all of them: it has no mapping to copy cached pages from.
func fakeFile(t *testing.T, fake *fakeSys) *File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, make([]byte, SectorSize), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := NewFileBackend(path, false)
	if err != nil {
		t.Fatal(err)
	}
	b.sys = fake.call
	b.unmap()
	t.Cleanup(func() { b.Close() })
	return b
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// TestFileTransfer_ShortCountsCarryOn: a call that moves part of the
// request is followed by another for the rest, from where it stopped,
// until all of it moved; the caller's buffer list is left as it was.
func TestFileTransfer_ShortCountsCarryOn(t *testing.T) {
	fake := &fakeSys{data: seq(4096), limit: 300}
	b := fakeFile(t, fake)
	got := make([]byte, 1000)
	if n, err := b.ReadAt(got, 100); n != 1000 || err != nil || !bytes.Equal(got, fake.data[100:1100]) {
		t.Errorf("ReadAt = %d, %v; data equal %v", n, err, bytes.Equal(got, fake.data[100:1100]))
	}
	want := []sysCall{{off: 100}, {off: 400}, {off: 700}, {off: 1000}}
	if log := fake.log(); !slices.Equal(log, want) {
		t.Errorf("calls %+v, want %+v", log, want)
	}
	fake.calls, fake.limit = nil, 255
	got = make([]byte, 1000)
	bufs := [][]byte{got[:250], got[250:260], got[260:]}
	orig := slices.Clone(bufs)
	if n, err := b.ReadvAt(bufs, 0); n != 1000 || err != nil || !bytes.Equal(got, fake.data[:1000]) {
		t.Errorf("ReadvAt = %d, %v", n, err)
	}
	for i := range bufs {
		if len(bufs[i]) != len(orig[i]) || &bufs[i][0] != &orig[i][0] {
			t.Errorf("ReadvAt changed the caller's buffer %d", i)
		}
	}
	// After 255 bytes the rest is 2 buffers: 5 bytes of the second and
	// the third.
	if log := fake.log(); len(log) != 4 || log[1].off != 255 || log[1].nbufs != 2 || !log[1].vector {
		t.Errorf("calls %+v, want 4, the second at 255 with 2 buffers", log)
	}
	fake.calls, fake.limit = nil, 300
	if n, err := b.WritevAt([][]byte{seq(500), seq(500)}, 2000); n != 1000 || err != nil || len(fake.log()) != 4 {
		t.Errorf("WritevAt = %d, %v after %d calls", n, err, len(fake.log()))
	}
}

// TestFileTransfer_NothingMoved: a read that returns 0 has met the end of
// the file (io.EOF, with what came before); a write that returns 0 is
// short (io.ErrShortWrite). Neither is retried.
func TestFileTransfer_NothingMoved(t *testing.T) {
	fake := &fakeSys{data: seq(600)}
	b := fakeFile(t, fake)
	if n, err := b.ReadAt(make([]byte, 1000), 0); n != 600 || err != io.EOF {
		t.Errorf("ReadAt across the end = %d, %v; want 600, EOF", n, err)
	}
	if n, err := b.ReadvAt([][]byte{make([]byte, 10), make([]byte, 10)}, 600); n != 0 || err != io.EOF {
		t.Errorf("ReadvAt at the end = %d, %v; want 0, EOF", n, err)
	}
	if n, err := b.WriteAt(make([]byte, 100), 550); n != 50 || !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("WriteAt across the end = %d, %v; want 50, ErrShortWrite", n, err)
	}
	if len(fake.log()) != 5 {
		t.Errorf("%d calls, want 5: %+v", len(fake.log()), fake.log())
	}
}

// TestFileTransfer_Errors: EINTR is retried; any other errno fails the
// transfer at once, wrapped with the call and the file, after what moved.
func TestFileTransfer_Errors(t *testing.T) {
	fake := &fakeSys{data: seq(4096), limit: 100, errs: []error{unix.EINTR, nil, unix.EINTR, unix.EIO}}
	b := fakeFile(t, fake)
	n, err := b.ReadvAt([][]byte{make([]byte, 150), make([]byte, 150)}, 0)
	var pe *os.PathError
	if n != 100 || !errors.Is(err, syscall.EIO) || !errors.As(err, &pe) || pe.Op != "preadv" {
		t.Errorf("ReadvAt = %d, %v; want 100 and preadv's EIO", n, err)
	}
	if len(fake.log()) != 4 {
		t.Errorf("%d calls, want 4", len(fake.log()))
	}
	fake.errs = []error{unix.ENOSPC}
	if _, err := b.WriteAt(make([]byte, 10), 0); !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &pe) || pe.Op != "pwrite" {
		t.Errorf("WriteAt = %v, want pwrite's ENOSPC", err)
	}
	if err := b.Flush(); err != nil { // a real fdatasync on the real file
		t.Errorf("Flush: %v", err)
	}
}

// TestFileTry_OneNoWaitCall: a try is one RWF_NOWAIT call, which succeeds
// only if it moved everything; EAGAIN, a short count or an error make it
// fail, and EOPNOTSUPP makes later tries fail without a call.
func TestFileTry_OneNoWaitCall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		errs  []error
		ok    bool
	}{
		{"all from the cache", 0, nil, true},
		{"would wait", 0, []error{unix.EAGAIN}, false},
		{"part of it", 100, nil, false},
		{"an error", 0, []error{unix.EIO}, false},
		{"interrupted", 0, []error{unix.EINTR}, false},
	} {
		fake := &fakeSys{data: seq(4096), limit: tc.limit, errs: tc.errs}
		b := fakeFile(t, fake)
		got := make([]byte, 512)
		if ok := b.TryReadvAt([][]byte{got}, 512); ok != tc.ok {
			t.Errorf("%s: TryReadvAt = %v, want %v", tc.name, ok, tc.ok)
		}
		want := []sysCall{{vector: true, nbufs: 1, off: 512, flags: unix.RWF_NOWAIT}}
		if log := fake.log(); !slices.Equal(log, want) {
			t.Errorf("%s: calls %+v, want one RWF_NOWAIT preadv2 %+v", tc.name, log, want)
		}
	}
	// A filesystem without RWF_NOWAIT, a kernel without preadv2, a
	// seccomp filter that refuses it: asked once.
	for _, refusal := range []error{unix.EOPNOTSUPP, unix.ENOSYS, unix.EPERM} {
		fake := &fakeSys{data: seq(4096), errs: []error{refusal, refusal}}
		b := fakeFile(t, fake)
		for range 2 {
			if b.TryReadvAt([][]byte{make([]byte, 512)}, 0) {
				t.Errorf("TryReadvAt succeeded after %v", refusal)
			}
		}
		if len(fake.log()) != 1 {
			t.Errorf("%d calls after %v, want the first only", len(fake.log()), refusal)
		}
	}
	// A filesystem that refuses RWF_NOWAIT writes (ext4's buffered ones)
	// is asked once; CanTry then says so for writes only, and the device
	// makes them with pwrite.
	fake := &fakeSys{data: seq(4096), errs: []error{unix.EOPNOTSUPP}}
	b := fakeFile(t, fake)
	if !b.CanTry(true) || !b.CanTry(false) {
		t.Error("CanTry false before any try")
	}
	if b.TryWritevAt([][]byte{seq(512)}, 0) || b.TryWritevAt([][]byte{seq(512)}, 512) {
		t.Error("TryWritevAt succeeded where RWF_NOWAIT writes are not supported")
	}
	if b.CanTry(true) || !b.CanTry(false) {
		t.Errorf("after EOPNOTSUPP for a write: CanTry(write) %v, CanTry(read) %v; want false, true", b.CanTry(true), b.CanTry(false))
	}
	want := []sysCall{{write: true, vector: true, nbufs: 1, flags: unix.RWF_NOWAIT}}
	if log := fake.log(); !slices.Equal(log, want) {
		t.Errorf("calls %+v, want %+v", log, want)
	}
}

// TestFileClose_CallsAfterFailWithoutSyscall: once closed, every transfer
// and Flush fails with os.ErrClosed, and no call reaches the descriptor
// number, which the process may have reused.
func TestFileClose_CallsAfterFailWithoutSyscall(t *testing.T) {
	fake := &fakeSys{data: seq(4096)}
	b := fakeFile(t, fake)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 512)
	for name, err := range map[string]error{
		"ReadAt":   second(b.ReadAt(p, 0)),
		"WriteAt":  second(b.WriteAt(p, 0)),
		"ReadvAt":  second(b.ReadvAt([][]byte{p, p}, 0)),
		"WritevAt": second(b.WritevAt([][]byte{p, p}, 0)),
		"Flush":    b.Flush(),
		"Close":    b.Close(),
	} {
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if b.TryReadvAt([][]byte{p}, 0) || b.TryWritevAt([][]byte{p}, 0) {
		t.Error("a try after Close succeeded")
	}
	if log := fake.log(); len(log) != 0 {
		t.Errorf("calls after Close: %+v", log)
	}
}

func second(_ int, err error) error { return err }

// TestFileClose_WaitsForCallInFlight: Close does not close the descriptor
// while a call is using it: the call still finds it open after Close was
// asked for, and Close returns only after the call did.
func TestFileClose_WaitsForCallInFlight(t *testing.T) {
	inside, release := make(chan struct{}), make(chan struct{})
	var fdErr error
	fake := &fakeSys{data: seq(4096)}
	fake.during = func(fd int) {
		close(inside)
		<-release
		_, fdErr = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	}
	b := fakeFile(t, fake)
	readDone := make(chan error)
	go func() { _, err := b.ReadAt(make([]byte, 512), 0); readDone <- err }()
	<-inside
	closed := make(chan error)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a call was inside", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-readDone; err != nil {
		t.Errorf("ReadAt: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if fdErr != nil {
		t.Errorf("descriptor closed under the call: %v", fdErr)
	}
}
