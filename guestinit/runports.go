package guestinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/vmm-dev/vmm/guestinit/protocol"
	"golang.org/x/sys/unix"
)

// errPortsMissing makes openPorts' wait go on.
var errPortsMissing = errors.New("ports missing")

// runPorts are a run's open virtio-console ports; a port that is missing
// is nil.
type runPorts struct {
	stdin, stdout, stderr, control *os.File
}

// needPorts names the ports a run uses. Without a config (known) stdin's
// need is unknown, and the run is not going to start anyway.
func needPorts(cfg protocol.RunConfig, known bool) []string {
	names := []string{protocol.PortStdout, protocol.PortStderr, protocol.PortControl}
	if known && (cfg.Interactive || cfg.TTY) {
		names = append(names, protocol.PortStdin)
	}
	return names
}

// openPorts waits for the ports names to appear and opens them: stdin for
// reading, stdout and stderr for writing, control both ways. When some
// are still missing after r.DeviceWait, or do not open, it opens the rest
// and returns an error naming the missing ones.
func (r *Runner) openPorts(names []string) (*runPorts, error) {
	var found map[string]string
	var missing []string
	listErr := waitFor(r.DeviceWait, func() error {
		var err error
		if found, err = r.Ops.Ports(); err != nil {
			return err
		}
		missing = missing[:0]
		for _, name := range names {
			if _, ok := found[name]; !ok {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return errPortsMissing
		}
		return nil
	})
	var errs []error
	if listErr != nil {
		err := fmt.Errorf("virtio-console ports %s did not appear within %v", strings.Join(missing, ", "), r.DeviceWait)
		if found == nil {
			err = fmt.Errorf("virtio-console ports %s did not appear within %v: %w", strings.Join(names, ", "), r.DeviceWait, listErr)
		}
		errs = append(errs, err)
	}
	p := &runPorts{}
	for _, port := range []struct {
		name string
		flag int
		f    **os.File
	}{
		{protocol.PortStdout, os.O_WRONLY, &p.stdout},
		{protocol.PortStderr, os.O_WRONLY, &p.stderr},
		{protocol.PortControl, os.O_RDWR, &p.control},
		{protocol.PortStdin, os.O_RDONLY, &p.stdin},
	} {
		path, ok := found[port.name]
		if !ok || !slices.Contains(names, port.name) {
			continue
		}
		f, err := r.Ops.OpenPort(path, port.flag)
		if err != nil {
			errs = append(errs, fmt.Errorf("open port %s: %w", port.name, err))
			continue
		}
		*port.f = f
	}
	return p, errors.Join(errs...)
}

// closeOutput closes stdout and stderr: the host sees their end.
func (p *runPorts) closeOutput() {
	for _, f := range []**os.File{&p.stdout, &p.stderr} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// openPort opens a port's device node in blocking mode, on purpose: a
// blocking write to a virtio-console port returns only once the host has
// taken the data (drivers/char/virtio_console.c, __send_to_port), so the
// exit status has left the guest before it powers off. The workload
// inherits the stdout and stderr descriptors, and blocking ones are what
// programs expect there. os.OpenFile would make them non-blocking for Go's
// poller.
func openPort(path string, flag int) (*os.File, error) {
	fd, err := unix.Open(path, flag|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
