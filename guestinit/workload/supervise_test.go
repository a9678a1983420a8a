package workload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if code, ok := helperMain(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// workloadSpec is a Spec that runs this test binary as a workload.
func workloadSpec(t *testing.T, args ...string) Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Argv: append([]string{exe}, args...), Env: []string{roleEnv + "=workload", noRaceExitWait}, Dir: "/"}
}

// supervisor is a re-executed test binary running Supervise.
type supervisor struct {
	cmd    *exec.Cmd
	result string
	stdout bytes.Buffer
	stderr bytes.Buffer // the supervisor's and, unless redirected, the workload's
}

// newSupervisor prepares a supervisor for spec. In a PID namespace it is
// a real PID 1; otherwise it makes itself a child subreaper, so orphans
// come to it as they would to PID 1.
func newSupervisor(t *testing.T, spec Spec, opts Options, pidns bool) *supervisor {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("Supervise sets uid, gid and groups, as docker does, which needs root")
	}
	specJSON, _ := json.Marshal(spec)
	optsJSON, _ := json.Marshal(opts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &supervisor{result: filepath.Join(t.TempDir(), "result.json")}
	s.cmd = exec.CommandContext(ctx, exe)
	s.cmd.Env = []string{roleEnv + "=supervisor", noRaceExitWait, specEnv + "=" + string(specJSON), optsEnv + "=" + string(optsJSON), resultEnv + "=" + s.result}
	s.cmd.Stderr = &s.stderr
	if pidns {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS}
	}
	return s
}

func (s *supervisor) wait(t *testing.T) supervisorResult {
	t.Helper()
	err := s.cmd.Wait()
	if s.stderr.Len() > 0 {
		t.Logf("supervisor's stderr:\n%s", &s.stderr)
	}
	if err != nil {
		t.Fatalf("supervisor: %v", err)
	}
	data, err := os.ReadFile(s.result)
	if err != nil {
		t.Fatal(err)
	}
	var r supervisorResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func supervise(t *testing.T, spec Spec, opts Options, pidns bool) (supervisorResult, string) {
	t.Helper()
	s := newSupervisor(t, spec, opts, pidns)
	s.cmd.Stdout = &s.stdout
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := s.wait(t)
	return r, s.stdout.String()
}

var modes = []struct {
	name  string
	pidns bool
}{{"subreaper", false}, {"pid1", true}}

func TestSupervise_ExitStatus(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		for _, tt := range []struct {
			name string
			args []string
			want int
		}{
			{"exit 0", []string{"exit", "0"}, 0},
			{"exit 1", []string{"exit", "1"}, 1},
			{"exit 42", []string{"exit", "42"}, 42},
			{"SIGKILL", []string{"kill-self", "9"}, 137},
			{"SIGTERM", []string{"kill-self", "15"}, 143},
		} {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				r, _ := supervise(t, workloadSpec(t, tt.args...), Options{}, m.pidns)
				if r.Status != tt.want || r.Err != "" {
					t.Errorf("Supervise = %d, %q; want %d", r.Status, r.Err, tt.want)
				}
			})
		}
	}
}

// The reaping loop and the workload's status: a workload that leaves
// children behind and exits at once must still report its own status.
func TestSupervise_StatusNotLostToReaping(t *testing.T) {
	t.Parallel()
	for i := range 4 {
		spec := workloadSpec(t, "exit", "42")
		// Fifty children that the workload (the shell, then this binary in
		// its place) leaves to exit around its own exit.
		spec.Argv = []string{"/bin/sh", "-c", `i=0; while [ $i -lt 50 ]; do (exit 3) & i=$((i+1)); done; exec "$0" "$@"`, spec.Argv[0], "exit", "42"}
		spec.Env = append(spec.Env, "PATH=/usr/bin:/bin")
		r, _ := supervise(t, spec, Options{}, i%2 == 1)
		if r.Status != 42 || r.Err != "" {
			t.Fatalf("run %d: Supervise = %d, %q; want 42", i, r.Status, r.Err)
		}
	}
}

func TestSupervise_ReapsOrphanedGrandchildren(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			r, _ := supervise(t, workloadSpec(t, "orphans", "3"), Options{}, m.pidns)
			if r.Status != 0 || r.Err != "" {
				t.Errorf("Supervise = %d, %q; want 0 (99: an orphan stayed a zombie)", r.Status, r.Err)
			}
			if len(r.Zombies) != 0 {
				t.Errorf("zombies of the supervisor left: %v", r.Zombies)
			}
		})
	}
}

func TestSupervise_ForwardsSignals(t *testing.T) {
	t.Parallel()
	shell := func(t *testing.T) Spec {
		// A workload with default dispositions: sh, then sleep in its place.
		return Spec{Argv: []string{"sh", "-c", "echo ready; exec sleep 60"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"}
	}
	trap := func(sig unix.Signal) func(t *testing.T) Spec {
		return func(t *testing.T) Spec { return workloadSpec(t, "trap", strconv.Itoa(int(sig))) }
	}
	for _, m := range modes {
		for _, tt := range []struct {
			name string
			sig  unix.Signal
			spec func(*testing.T) Spec
			want int
		}{
			{"SIGTERM unhandled", unix.SIGTERM, shell, 143},
			{"SIGINT unhandled", unix.SIGINT, shell, 130},
			{"SIGHUP unhandled", unix.SIGHUP, shell, 129},
			{"SIGUSR1 unhandled", unix.SIGUSR1, shell, 138},
			{"SIGUSR2 unhandled", unix.SIGUSR2, shell, 140},
			{"SIGTERM handled", unix.SIGTERM, trap(unix.SIGTERM), 64 + 15},
			{"SIGINT handled", unix.SIGINT, trap(unix.SIGINT), 64 + 2},
			{"SIGHUP handled", unix.SIGHUP, trap(unix.SIGHUP), 64 + 1},
			{"SIGQUIT handled", unix.SIGQUIT, trap(unix.SIGQUIT), 64 + 3},
			{"SIGUSR1 handled", unix.SIGUSR1, trap(unix.SIGUSR1), 64 + 10},
			{"SIGUSR2 handled", unix.SIGUSR2, trap(unix.SIGUSR2), 64 + 12},
			{"SIGWINCH handled", unix.SIGWINCH, trap(unix.SIGWINCH), 64 + 28},
		} {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				s := newSupervisor(t, tt.spec(t), Options{}, m.pidns)
				out, err := s.cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := s.cmd.Start(); err != nil {
					t.Fatal(err)
				}
				if line, err := readLine(bufio.NewReader(out)); line != "ready" {
					t.Fatalf("workload said %q, %v; want ready", line, err)
				}
				if err := s.cmd.Process.Signal(tt.sig); err != nil {
					t.Fatal(err)
				}
				if r := s.wait(t); r.Status != tt.want || r.Err != "" {
					t.Errorf("after %v: Supervise = %d, %q; want %d", tt.sig, r.Status, r.Err, tt.want)
				}
			})
		}
	}
}

// Options.Signals reaches the workload, SIGKILL included, which no
// process can catch to forward; one queued before the start is delivered
// once the workload runs.
func TestSupervise_OptionsSignals_SIGKILLReachesWorkload(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			s := newSupervisor(t, workloadSpec(t, "sleep", "1m"), Options{}, m.pidns)
			s.cmd.Env = append(s.cmd.Env, signalEnv+"="+strconv.Itoa(int(unix.SIGKILL)))
			if err := s.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if r := s.wait(t); r.Status != 128+int(unix.SIGKILL) || r.Err != "" {
				t.Errorf("Supervise = %d, %q; want %d", r.Status, r.Err, 128+int(unix.SIGKILL))
			}
		})
	}
}

func TestSupervise_EnvDirArgvAsResolved(t *testing.T) {
	t.Parallel()
	spec := workloadSpec(t, "describe", "two words", "")
	spec.Env = append(spec.Env, "PATH=/usr/bin:/bin", "HOSTNAME=box", "EMPTY=", "HOME=/home/alice")
	spec.Dir = filepath.Join(t.TempDir(), "not", "yet")
	r, out := supervise(t, spec, Options{}, false)
	if r.Status != 0 || r.Err != "" {
		t.Fatalf("Supervise = %d, %q", r.Status, r.Err)
	}
	var d description
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("workload output %q: %v", out, err)
	}
	if !slices.Equal(d.Argv, spec.Argv) {
		t.Errorf("argv = %q, want %q", d.Argv, spec.Argv)
	}
	if d.Dir != spec.Dir {
		t.Errorf("working directory = %q, want %q (created)", d.Dir, spec.Dir)
	}
	if !slices.Equal(d.Env, spec.Env) {
		t.Errorf("environment = %q, want exactly %q", d.Env, spec.Env)
	}
}

// The tests run as root; the workload must not.
func TestSupervise_SwitchesUser(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("switching users needs root")
	}
	for _, tt := range []struct {
		name                    string
		uid, gid                uint32
		groups                  []uint32
		wantUID, wantGID, wantG string
	}{
		{"with supplementary groups", 1000, 1001, []uint32{1001, 2000, 3000}, "1000\t1000\t1000\t1000", "1001\t1001\t1001\t1001", "1001 2000 3000"},
		{"no supplementary groups", 4242, 4343, []uint32{4343}, "4242\t4242\t4242\t4242", "4343\t4343\t4343\t4343", "4343"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// cat, not this binary: go test's build directory is private to root.
			spec := Spec{
				Argv: []string{"cat", "/proc/self/status"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/",
				UID: tt.uid, GID: tt.gid, Groups: tt.groups,
			}
			r, out := supervise(t, spec, Options{}, false)
			if r.Status != 0 || r.Err != "" {
				t.Fatalf("Supervise = %d, %q", r.Status, r.Err)
			}
			fields := map[string]string{}
			for _, line := range strings.Split(out, "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok {
					fields[k] = strings.TrimSpace(v)
				}
			}
			if fields["Uid"] != tt.wantUID || fields["Gid"] != tt.wantGID || fields["Groups"] != tt.wantG {
				t.Errorf("workload's Uid %q Gid %q Groups %q; want %q %q %q",
					fields["Uid"], fields["Gid"], fields["Groups"], tt.wantUID, tt.wantGID, tt.wantG)
			}
		})
	}
}

func TestSupervise_KillOthers_AsPID1_EndsTheNamespace(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r, _ := supervise(t, workloadSpec(t, "background"), Options{KillOthers: true}, true)
	if r.PID != 1 {
		t.Fatalf("supervisor pid = %d, want 1", r.PID)
	}
	if r.Status != 5 || r.Err != "" {
		t.Errorf("Supervise = %d, %q; want 5", r.Status, r.Err)
	}
	if len(r.Others) != 0 {
		t.Errorf("processes left in the namespace: %v", r.Others)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v: the background child was waited for, not killed", d)
	}
}

// Start failures return before any child exists, so they are safe to run
// in the test process itself.
func TestSupervise_KillOthers_NotPID1_Refused(t *testing.T) {
	status, err := Supervise(workloadSpec(t, "exit", "0"), Stdio{}, Options{KillOthers: true})
	if !errors.Is(err, ErrNotPID1) || status != StatusRunFailed {
		t.Errorf("Supervise = %d, %v; want %d, ErrNotPID1", status, err, StatusRunFailed)
	}
}

func TestSupervise_StartFailures_DockerStatuses(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("chroot needs root")
	}
	root := testImageRoot(t)
	for _, tt := range []struct {
		name    string
		argv    []string
		dir     string
		want    int
		wantErr string
	}{
		{"not in PATH", []string{"no-such-program"}, "/", StatusNotFound, `exec: "no-such-program": executable file not found in $PATH`},
		{"no such file", []string{"/no/such/program"}, "/", StatusNotFound, "no such file or directory"},
		{"not executable", []string{"/usr/bin/tool"}, "/", StatusCannotInvoke, "permission denied"},
		{"a directory", []string{"/usr/bin/dir"}, "/", StatusCannotInvoke, "permission denied"},
		{"working directory is a file", []string{"/bin/busybox"}, "/bin/busybox", StatusRunFailed, "working directory /bin/busybox"},
		{"no command", nil, "/", StatusRunFailed, "no command specified"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{Argv: tt.argv, Env: []string{"PATH=/usr/bin:/bin"}, Dir: tt.dir}
			// With the chroot set the start fails before it, in the lookup,
			// or in the kernel's execve inside the image.
			status, err := Supervise(spec, Stdio{}, Options{Chroot: root})
			if status != tt.want || err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Supervise = %d, %v; want %d and an error mentioning %q", status, err, tt.want, tt.wantErr)
			}
			if se := (*StartError)(nil); !errors.As(err, &se) {
				t.Errorf("Supervise error %v is not a *StartError", err)
			}
		})
	}
}
