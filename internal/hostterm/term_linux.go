package hostterm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether fd refers to a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// MakeRaw puts the terminal fd in raw mode, as cfmakeraw(3) does, and
// returns a function that restores the previous mode. Raw means every key,
// Ctrl-C included, goes to the guest, and output is not post-processed: the
// guest's own tty turns "\n" into "\r\n", so text the VMM itself prints
// before restore should end lines with "\r\n".
//
// When fd is not a terminal MakeRaw does nothing and restore is a no-op, so
// callers need not check IsTerminal first.
func MakeRaw(fd int) (restore func() error, err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if errors.Is(err, unix.ENOTTY) {
		return func() error { return nil }, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get terminal attributes: %w", err)
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP |
		unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1 // a read returns as soon as one byte is there
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("set terminal raw: %w", err)
	}
	return func() error {
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, old); err != nil {
			return fmt.Errorf("restore terminal: %w", err)
		}
		return nil
	}, nil
}
