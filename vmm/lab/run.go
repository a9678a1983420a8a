package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Options say how Run starts a lab.
type Options struct {
	// Exe is the vmm binary each VM runs as.
	Exe string
	// Out gets every VM's output (its console, or its workload's stdout
	// and stderr, and vmm's own messages), line by line, each line
	// prefixed with the VM's name.
	Out io.Writer
	// StartSwitch starts a network's switch listening at a socket path.
	StartSwitch func(path string) (io.Closer, error)
	// StopTimeout is how long VMs get to end after a SIGTERM before they
	// are killed; 0 means 10 s.
	StopTimeout time.Duration
	// Dir holds the switches' sockets; empty means a temporary directory.
	Dir string
}

// Result is how one VM ended: its vmm's exit status (-1 when killed by a
// signal).
type Result struct {
	Name   string
	Status int
}

// OK reports whether every VM ended with status 0.
func OK(results []Result) bool {
	for _, r := range results {
		if r.Status != 0 {
			return false
		}
	}
	return len(results) > 0
}

// Run brings the lab up: the networks' switches, then every VM at once.
// It waits until every VM has ended. When ctx ends first, each VM gets
// SIGTERM (vmm then stops its guest, or passes it to the workload), and
// after StopTimeout SIGKILL.
func Run(ctx context.Context, f File, opts Options) ([]Result, error) {
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "vmm-lab-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	plan, err := f.Plan(dir)
	if err != nil {
		return nil, err
	}
	for _, n := range plan.Networks {
		sw, err := opts.StartSwitch(n.Socket)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		defer sw.Close()
	}
	stop := opts.StopTimeout
	if stop == 0 {
		stop = 10 * time.Second
	}
	out := &muxWriter{w: opts.Out}
	width := 0
	for _, vm := range plan.VMs {
		width = max(width, len(vm.Name))
	}
	results := make([]Result, len(plan.VMs))
	procs := make([]*exec.Cmd, len(plan.VMs))
	var wg sync.WaitGroup
	for i, vm := range plan.VMs {
		cmd := exec.Command(opts.Exe, vm.Args...)
		prefix := fmt.Sprintf("%-*s | ", width, vm.Name)
		stdout, stderr := out.prefixed(prefix), out.prefixed(prefix)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		// The lab's VMs must not outlive it, and its Ctrl-C is its own.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			for _, p := range procs[:i] {
				p.Process.Kill()
			}
			wg.Wait()
			return nil, fmt.Errorf("start vm %s: %w", vm.Name, err)
		}
		procs[i] = cmd
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd.Wait()
			stdout.flush()
			stderr.flush()
			results[i] = Result{Name: vm.Name, Status: cmd.ProcessState.ExitCode()}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-done:
		case <-time.After(stop):
			for _, p := range procs {
				p.Process.Kill()
			}
			<-done
		}
	}
	return results, nil
}

// muxWriter serialises whole lines from several VMs onto one writer.
type muxWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (m *muxWriter) prefixed(prefix string) *lineWriter {
	return &lineWriter{m: m, prefix: prefix}
}

// lineWriter prefixes each complete line it is given; a partial line
// waits for its end (or flush).
type lineWriter struct {
	m       *muxWriter
	prefix  string
	partial []byte
}

// maxPartial bounds a line held back waiting for its newline.
const maxPartial = 64 << 10

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.emit(l.partial[:i+1])
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > maxPartial {
		l.flush()
	}
	l.partial = append([]byte(nil), l.partial...)
	return n, nil
}

func (l *lineWriter) flush() {
	if len(l.partial) > 0 {
		l.emit(append(l.partial, '\n'))
		l.partial = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	fmt.Fprintf(l.m.w, "%s%s\n", l.prefix, line)
}
