// Package testprog is what guestinit's tests run when they re-execute
// their own test binary as a workload, an exec'd program or a PID 1: the
// workload behaviours they share, the payloads those write, and becoming
// the process orphans are reparented to. Only tests import it.
package testprog

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Run does the behaviour args[0] names, if it is one of these, and
// returns the status to exit with:
//
//	exit N       exit with N
//	kill-self N  die by signal N
//	trap N       print "ready", then exit 64+N on signal N
//	output N     write Payload(N, 'o') to stdout and Payload(N, 'e') to
//	             stderr, interleaved in 4 KiB pieces (4 or 5 if one fails)
//	cat          copy stdin to stdout (4 if that fails)
//
// ok is false for any other behaviour, which is the caller's own.
func Run(args []string) (status int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	arg := func(i int) int {
		if i >= len(args) {
			return 0
		}
		n, _ := strconv.Atoi(args[i])
		return n
	}
	switch args[0] {
	case "exit":
		return arg(1), true
	case "kill-self":
		unix.Kill(os.Getpid(), unix.Signal(arg(1)))
		time.Sleep(time.Minute)
		return 1, true
	case "trap":
		c := make(chan os.Signal, 1)
		signal.Notify(c, unix.Signal(arg(1)))
		fmt.Println("ready")
		return 64 + int((<-c).(syscall.Signal)), true
	case "output":
		return writeOutput(arg(1)), true
	case "cat":
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			return 4, true
		}
		return 0, true
	}
	return 0, false
}

// Payload is n bytes of every value, different for each seed.
func Payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>8) ^ byte(i>>16)
	}
	return b
}

func writeOutput(n int) int {
	out, errOut := Payload(n, 'o'), Payload(n, 'e')
	const chunk = 4096
	for i := 0; i < n; i += chunk {
		end := min(i+chunk, n)
		if _, err := os.Stdout.Write(out[i:end]); err != nil {
			return 4
		}
		if _, err := os.Stderr.Write(errOut[i:end]); err != nil {
			return 5
		}
	}
	return 0
}

// BecomeReaper makes this process the one orphans come to: as PID 1 of a
// new PID namespace it gets its own /proc, in its own mount namespace made
// private first so nothing leaks to the host; elsewhere it becomes a child
// subreaper.
func BecomeReaper() error {
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("become a subreaper: %w", err)
		}
		return nil
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	return nil
}

// ScanProc lists the zombies whose parent is parent, and every process
// other than parent.
func ScanProc(parent int) (zombies, others []int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == parent {
			continue
		}
		others = append(others, pid)
		if state, ppid, ok := ProcStat(pid); ok && state == "Z" && ppid == parent {
			zombies = append(zombies, pid)
		}
	}
	return zombies, others
}

// ProcStat reads a process's state and parent from /proc/PID/stat. The
// command name may hold spaces and parentheses; the fields after the last
// ')' do not.
func ProcStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, err == nil
}

// BindHostDirs makes the host's programs and libraries (/usr, /bin, /sbin,
// /lib, /lib64) visible in root, read-only, for workloads chrooted there;
// a merged-/usr symlink is copied as a symlink. unbind undoes the mounts
// (they are private to the caller's mount namespace in any case).
func BindHostDirs(root string) (unbind func(), err error) {
	var bound []string
	unbind = func() {
		for i := len(bound) - 1; i >= 0; i-- {
			unix.Unmount(bound[i], unix.MNT_DETACH)
		}
	}
	for _, d := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib64"} {
		fi, err := os.Lstat(d)
		if err != nil {
			continue
		}
		at := filepath.Join(root, d)
		if fi.Mode()&os.ModeSymlink != 0 { // merged /usr: /bin -> usr/bin
			target, err := os.Readlink(d)
			if err != nil {
				return unbind, err
			}
			if err := os.Symlink(target, at); err != nil {
				return unbind, err
			}
			continue
		}
		if err := os.MkdirAll(at, 0o755); err != nil {
			return unbind, err
		}
		bound = append(bound, at)
		if err := BindReadOnly(d, at); err != nil {
			return unbind, err
		}
	}
	return unbind, nil
}

// BindReadOnly bind-mounts from at to, read-only.
func BindReadOnly(from, to string) error {
	if err := unix.Mount(from, to, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", from, to, err)
	}
	if err := unix.Mount("", to, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("make %s read-only: %w", to, err)
	}
	return nil
}
