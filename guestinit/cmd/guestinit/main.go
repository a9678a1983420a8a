// Command guestinit is PID 1 in a vmm guest. images.BuildGuestinit builds it
// as a static linux/amd64 binary for the initramfs.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/vmm-dev/vmm/guestinit"
)

// Exit codes. As PID 1 any exit panics the kernel (with panic=-1 the
// machine resets, which the host reports), so they matter only when run
// by hand.
const (
	exitFailed  = 1
	exitRefused = 2
)

func main() {
	err := guestinit.Run(os.Stdout, guestinit.LinuxOps(), guestinit.Mounts())
	if err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "guestinit: %v\n", err)
	if errors.Is(err, guestinit.ErrNotPID1) {
		os.Exit(exitRefused)
	}
	os.Exit(exitFailed)
}
