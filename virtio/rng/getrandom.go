package rng

import (
	"io"

	"golang.org/x/sys/unix"
)

// Getrandom reads the kernel's CSPRNG with getrandom(2), which never
// blocks once the pool is initialised and needs no open file.
type Getrandom struct{}

// Read fills p, or part of it: getrandom may return fewer bytes than
// asked for large reads interrupted by a signal.
func (Getrandom) Read(p []byte) (int, error) {
	for {
		n, err := unix.Getrandom(p, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.ErrNoProgress // never seen; keeps io.ReadFull from spinning
		}
		return n, nil
	}
}
