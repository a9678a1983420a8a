package workload

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/internal/testprog"
)

// The tests re-execute this test binary in three roles, chosen by
// roleEnv: a supervisor, which calls Supervise as guestinit would and
// writes what happened to resultEnv's file; a workload, which does what
// its arguments say; and children (children_test.go), which starts
// children through Children around and during a Supervise.
const (
	roleEnv   = "VMM_WORKLOAD_TEST_ROLE"
	specEnv   = "VMM_WORKLOAD_TEST_SPEC"
	optsEnv   = "VMM_WORKLOAD_TEST_OPTS"
	resultEnv = "VMM_WORKLOAD_TEST_RESULT"
	// signalEnv names a signal the supervisor queues on Options.Signals
	// before it calls Supervise.
	signalEnv = "VMM_WORKLOAD_TEST_SIGNAL"
)

// noRaceExitWait keeps the race detector from waiting a second at every
// helper's exit, as it does by default.
const noRaceExitWait = "GORACE=atexit_sleep_ms=0"

// supervisorResult is what a supervisor reports.
type supervisorResult struct {
	PID     int    // the supervisor's own pid: 1 in a PID namespace
	Status  int    // Supervise's status
	Err     string // Supervise's error
	Zombies []int  // zombie children left once Supervise returned
	Others  []int  // every other process its /proc shows then
}

func helperMain() (int, bool) {
	switch os.Getenv(roleEnv) {
	case "supervisor":
		return supervisorMain(), true
	case "workload":
		return workloadMain(os.Args[1:]), true
	case "children":
		return childrenMain(), true
	}
	return 0, false
}

func supervisorMain() int {
	var spec Spec
	var opts Options
	if err := json.Unmarshal([]byte(os.Getenv(specEnv)), &spec); err != nil {
		return fail("spec: %v", err)
	}
	if err := json.Unmarshal([]byte(os.Getenv(optsEnv)), &opts); err != nil {
		return fail("options: %v", err)
	}
	if err := testprog.BecomeReaper(); err != nil {
		return fail("%v", err)
	}
	if n, err := strconv.Atoi(os.Getenv(signalEnv)); err == nil {
		sigs := make(chan os.Signal, 1)
		sigs <- unix.Signal(n)
		opts.Signals = sigs
	}
	status, err := Supervise(spec, Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, opts)
	res := supervisorResult{PID: os.Getpid(), Status: status}
	if err != nil {
		res.Err = err.Error()
	}
	res.Zombies, res.Others = testprog.ScanProc(os.Getpid())
	data, _ := json.Marshal(res)
	if err := os.WriteFile(os.Getenv(resultEnv), data, 0o644); err != nil {
		return fail("write result: %v", err)
	}
	return 0
}

func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "helper: "+format+"\n", args...)
	return 3
}

// workloadMain runs one workload behaviour: testprog.Run's, or
//
//	describe          print argv, working directory and environment as JSON
//	orphans N         leave N grandchildren that exit after the workload's
//	                  middle child; exit 0 once all are reaped, 99 if not
//	spawn-orphan      (middle child) start a short-lived child, print its
//	                  pid, exit without waiting
//	sleep D           sleep for duration D
//	background        start a child that sleeps a minute, exit 5 at once
//	tty               exit 0 if stdin is the controlling terminal and this
//	                  process leads its foreground group, else 10+check
func workloadMain(args []string) int {
	if status, ok := testprog.Run(args); ok {
		return status
	}
	if len(args) == 0 {
		return fail("workload: no behaviour")
	}
	arg := func(i int) int {
		n, _ := strconv.Atoi(args[i])
		return n
	}
	switch args[0] {
	case "describe":
		dir, _ := os.Getwd()
		json.NewEncoder(os.Stdout).Encode(description{Argv: os.Args, Dir: dir, Env: os.Environ()})
		return 0
	case "orphans":
		return leaveOrphans(arg(1))
	case "spawn-orphan":
		cmd := selfCommand("sleep", "100ms")
		if err := cmd.Start(); err != nil {
			return fail("start grandchild: %v", err)
		}
		fmt.Println(cmd.Process.Pid)
		return 0
	case "sleep":
		d, _ := time.ParseDuration(args[1])
		time.Sleep(d)
		return 0
	case "background":
		if err := selfCommand("sleep", "1m").Start(); err != nil {
			return fail("start background child: %v", err)
		}
		return 5
	case "tty":
		return checkTTY()
	}
	return fail("workload: unknown behaviour %q", args[0])
}

type description struct {
	Argv []string
	Dir  string
	Env  []string
}

func selfCommand(args ...string) *exec.Cmd {
	exe, _ := os.Executable()
	cmd := exec.Command(exe, args...)
	cmd.Env = []string{roleEnv + "=workload", noRaceExitWait}
	return cmd
}

func leaveOrphans(n int) int {
	var pids []int
	for range n {
		out, err := selfCommand("spawn-orphan").Output()
		if err != nil {
			return fail("spawn-orphan: %v", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			return fail("spawn-orphan said %q", out)
		}
		pids = append(pids, pid)
	}
	// Each grandchild exits on its own shortly; its /proc entry goes only
	// once the supervisor, its new parent, has reaped it.
	deadline := time.Now().Add(20 * time.Second)
	for _, pid := range pids {
		for {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			if time.Now().After(deadline) {
				state, ppid, _ := testprog.ProcStat(pid)
				fmt.Fprintf(os.Stderr, "orphan %d still there: state %s, parent %d\n", pid, state, ppid)
				return 99
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return 0
}

func checkTTY() int {
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err != nil {
		return 10 // stdin is not a terminal
	}
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return 11 // no controlling terminal
	}
	f.Close()
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	if err != nil || pgrp != os.Getpid() {
		return 12 // not the terminal's foreground process group
	}
	if sid, _ := unix.Getsid(0); sid != os.Getpid() {
		return 13 // not a session leader
	}
	fmt.Println("tty ok")
	return 0
}

// readLine reads one line, for the "ready" handshake.
func readLine(r *bufio.Reader) (string, error) {
	s, err := r.ReadString('\n')
	return strings.TrimSpace(s), err
}
