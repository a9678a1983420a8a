package oci

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRenderBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		want        string
	}{
		{0, 4_000_000, "img [>         ]   0.0/4.0 MB"},
		{1_000_000, 4_000_000, "img [==>       ]   1.0/4.0 MB"},
		{4_000_000, 4_000_000, "img [==========]   4.0/4.0 MB"},
		{5_000_000, 4_000_000, "img [==========]   4.0/4.0 MB"}, // clamped
		{1_500, 3_000, "img [=====>    ]   1.5/3.0 kB"},
		{12, 800, "img [>         ]  12.0/800.0 B"},
		{2_500_000_000, 5_000_000_000, "img [=====>    ]   2.5/5.0 GB"},
	} {
		if got := renderBar("img", tc.done, tc.total, 10); got != tc.want {
			t.Errorf("renderBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}

func TestStore_Pull_ProgressToNonTerminal_WritesNothing(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "test/img:v1", randomImage(t, 2))
	var out bytes.Buffer
	opts := anonymous()
	opts.Progress = &out
	if _, err := openStore(t).Pull(context.Background(), ref, opts); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("wrote %q to a non-terminal", out.String())
	}
}

func TestStore_Pull_ProgressToTerminal_DrawsBar(t *testing.T) {
	ptmx, tty := openPTY(t)
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&out, ptmx) // ends with EIO once the tty side closes
		close(done)
	}()
	reg := newTestRegistry(t)
	ref := reg.push(t, "test/img:v1", randomImage(t, 2))
	opts := anonymous()
	opts.Progress = tty
	if _, err := openStore(t).Pull(context.Background(), ref, opts); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	<-done

	got := out.String()
	if !strings.HasPrefix(got, "\r"+ref.display()+" [") || !strings.Contains(got, "] ") || !strings.HasSuffix(got, "\r\n") {
		t.Errorf("terminal got %q, want a \\r-redrawn bar ending the line", got)
	}
}

// openPTY returns a pseudo-terminal's master and its terminal side.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	ptmx = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}
