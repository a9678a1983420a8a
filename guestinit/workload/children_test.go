package workload

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/internal/testprog"
)

// childrenResult is what the children role reports.
type childrenResult struct {
	PID      int
	Status   int      // Supervise's status for the workload
	Errors   []string // every child whose status came out wrong, and other failures
	Children int      // how many children were started and waited for
	Zombies  []int    // zombie children left at the end
}

// TestChildren_StatusesAroundAndDuringSupervise starts children through
// Children with no reaper running, then many at once while Supervise runs
// a workload and reaps (children that exit at once, or leave orphans, or
// die by a signal, so the reaper races every waiter), then under Reap, as
// guestinit's agent mode runs it. Every child's status must reach its
// waiter, the workload's must reach Supervise, and no zombie may be left.
func TestChildren_StatusesAroundAndDuringSupervise(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			if os.Getuid() != 0 {
				t.Skip("a PID namespace and mounting /proc need root")
			}
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			result := filepath.Join(t.TempDir(), "result.json")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe)
			cmd.Env = []string{roleEnv + "=children", noRaceExitWait, resultEnv + "=" + result}
			if m.pidns {
				cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS}
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("children role: %v\n%s", err, out)
			}
			data, err := os.ReadFile(result)
			if err != nil {
				t.Fatal(err)
			}
			var r childrenResult
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			if m.pidns && r.PID != 1 {
				t.Errorf("role pid %d, want 1", r.PID)
			}
			if r.Status != 64+int(unix.SIGTERM) {
				t.Errorf("Supervise = %d, want %d: the workload's status was lost", r.Status, 64+int(unix.SIGTERM))
			}
			for _, e := range r.Errors {
				t.Error(e)
			}
			if r.Children < 100 {
				t.Errorf("only %d children ran", r.Children)
			}
			if len(r.Zombies) != 0 {
				t.Errorf("zombies left: %v", r.Zombies)
			}
		})
	}
}

// childCase is a child and the status it must report.
type childCase struct {
	script string
	want   int
}

// childCases are children that exit at once with distinct statuses, die
// by a signal, or leave an orphan behind.
func childCases(n int) []childCase {
	var cs []childCase
	for i := range n {
		switch i % 4 {
		case 0:
			cs = append(cs, childCase{fmt.Sprintf("exit %d", i%200), i % 200})
		case 1:
			cs = append(cs, childCase{"kill -KILL $$", 128 + 9})
		case 2:
			cs = append(cs, childCase{fmt.Sprintf("(sleep 0.05 &); exit %d", 3+i%50), 3 + i%50})
		case 3:
			cs = append(cs, childCase{"true", 0})
		}
	}
	return cs
}

// runChildren starts cs through c, all at once, and checks each status.
func runChildren(c *Children, cs []childCase, res *childrenResult, mu *sync.Mutex) {
	var wg sync.WaitGroup
	for _, cc := range cs {
		wg.Go(func() {
			cmd := exec.Command("/bin/sh", "-c", cc.script)
			wait, err := c.Start(cmd)
			var got unix.WaitStatus
			if err == nil {
				got, err = wait()
			}
			mu.Lock()
			defer mu.Unlock()
			res.Children++
			switch {
			case err != nil:
				res.Errors = append(res.Errors, fmt.Sprintf("%q: %v", cc.script, err))
			case exitStatus(got) != cc.want:
				res.Errors = append(res.Errors, fmt.Sprintf("%q: status %d, want %d", cc.script, exitStatus(got), cc.want))
			}
		})
	}
	wg.Wait()
}

func childrenMain() int {
	if err := testprog.BecomeReaper(); err != nil {
		return fail("%v", err)
	}
	res := childrenResult{PID: os.Getpid()}
	var mu sync.Mutex
	c := NewChildren()

	// No reaper yet: each waiter reaps its own child.
	runChildren(c, childCases(20), &res, &mu)

	// Supervise reaps everything while the children run.
	exe, _ := os.Executable()
	spec := Spec{Argv: []string{exe, "trap", strconv.Itoa(int(unix.SIGTERM))}, Env: []string{roleEnv + "=workload", noRaceExitWait}, Dir: "/"}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail("pipe: %v", err)
	}
	signals := make(chan os.Signal, 1)
	type result struct {
		status int
		err    error
	}
	supervised := make(chan result, 1)
	go func() {
		status, err := Supervise(spec, Stdio{Stdout: outW, Stderr: os.Stderr}, Options{Signals: signals, Children: c})
		supervised <- result{status, err}
	}()
	if line, err := readLine(bufio.NewReader(outR)); line != "ready" {
		return fail("workload said %q, %v; want ready", line, err)
	}
	runChildren(c, childCases(100), &res, &mu)
	signals <- unix.SIGTERM
	r := <-supervised
	res.Status = r.status
	if r.err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("Supervise: %v", r.err))
	}

	// Reap, as guestinit's agent mode runs it; orphans are reaped too.
	ctx, cancel := context.WithCancel(context.Background())
	reaped := make(chan error, 1)
	go func() { reaped <- c.Reap(ctx) }()
	runChildren(c, childCases(40), &res, &mu)
	time.Sleep(300 * time.Millisecond) // the orphans' sleeps end and they are reaped
	cancel()
	if err := <-reaped; err != context.Canceled {
		res.Errors = append(res.Errors, fmt.Sprintf("Reap: %v", err))
	}
	res.Zombies, _ = testprog.ScanProc(os.Getpid())
	c.mu.Lock()
	if len(c.waiting) != 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("%d children still registered", len(c.waiting)))
	}
	c.mu.Unlock()

	data, _ := json.Marshal(res)
	if err := os.WriteFile(os.Getenv(resultEnv), data, 0o644); err != nil {
		return fail("write result: %v", err)
	}
	return 0
}

// A child that exits and is reaped by the reaper before anyone waits for
// it: the waiter gets the status from the hand-over after its wait's
// ECHILD. The test reaps that one pid only, so it leaves the children of
// parallel tests alone.
func TestChildren_ReapedBeforeWait_StatusHandedOver(t *testing.T) {
	c := NewChildren()
	wait, err := c.Start(exec.Command("/bin/sh", "-c", "exit 7"))
	if err != nil {
		t.Fatal(err)
	}
	pid := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		for pid := range c.waiting {
			return pid
		}
		return 0
	}()
	// What the reaper does, for this pid only.
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	c.exited(pid, ws)
	got, err := wait()
	if err != nil || exitStatus(got) != 7 {
		t.Fatalf("wait = %d, %v; want 7", exitStatus(got), err)
	}
	if len(c.waiting) != 0 {
		t.Errorf("%d children still registered", len(c.waiting))
	}
}

func TestChildren_StartFails_NothingRegistered(t *testing.T) {
	c := NewChildren()
	if _, err := c.Start(exec.Command("/no/such/program")); err == nil {
		t.Fatal("Start of a missing program succeeded")
	}
	if len(c.waiting) != 0 {
		t.Errorf("%d children registered", len(c.waiting))
	}
}
