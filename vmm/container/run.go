package container

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vmm-dev/vmm/vmm"
)

// Stdio is the workload's side of the host process.
type Stdio struct {
	// Stdin feeds the workload's stdin when the Spec is Interactive.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Console, if set, gets the guest's serial console (the kernel's and
	// guestinit's messages); its tail is in errors either way.
	Console io.Writer
	// Log gets the VMM's own warnings; nil discards them.
	Log io.Writer
}

// Run is one started run; Wait ends it.
type Run struct {
	Channel *Channel
	Machine *vmm.Machine
	started time.Time
}

// Start creates the machine m for p with the run's ports, and extra ports
// after them (such as the guest agent's, protocol.PortAgent). The caller
// sends signals and window sizes through Channel while Wait runs.
func Start(p *Prepared, m Machine, stdio Stdio, extra ...vmm.Port) (*Run, error) {
	withStdin := p.RunConfig.Interactive || p.RunConfig.TTY
	var stdin io.Reader
	if p.RunConfig.Interactive {
		stdin = stdio.Stdin
	}
	r := &Run{
		Channel: NewChannel(stdin, orDiscard(stdio.Stdout), orDiscard(stdio.Stderr), withStdin),
		started: time.Now(),
	}
	cfg := p.Config(m)
	cfg.Ports = append(r.Channel.Ports(), extra...)
	cfg.Console = stdio.Console
	cfg.Log = stdio.Log
	vm, err := vmm.New(cfg)
	if err != nil {
		r.Channel.Close()
		return nil, err
	}
	r.Machine = vm
	return r, nil
}

// ExitError is a run that ended without the workload's exit status: the
// guest crashed, failed to boot or was stopped first.
type ExitError struct {
	Outcome vmm.Outcome
	// Console is the end of the serial console, where the kernel and
	// guestinit say what went wrong.
	Console string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("the VM ended (%s) before the workload reported an exit status", e.Outcome)
	if c := strings.TrimSpace(e.Console); c != "" {
		msg += "; the guest console ended with:\n" + c
	}
	return msg
}

// Wait runs the machine until the guest powers off (or ctx ends, which
// stops it) and returns the workload's exit status.
func (r *Run) Wait(ctx context.Context) (int, error) {
	out := r.Machine.Run(ctx)
	// Close drains every queue the guest kicked before it stopped, so the
	// last output and the exit line arrive before the status is read.
	r.Machine.Close()
	r.Channel.Close()
	if status, ok := r.Channel.ExitStatus(); ok {
		return status, nil
	}
	return 0, &ExitError{Outcome: out, Console: out.ConsoleTail}
}

// Startup is how long the run took from Start to the guest's first
// instruction; zero before it ran.
func (r *Run) Startup() time.Duration {
	first := r.Machine.FirstRunTime()
	if first.IsZero() {
		return 0
	}
	return first.Sub(r.started)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
