package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/internal/testprog"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestExec_ArgvEnvDirStdin(t *testing.T) {
	s := serve(t, ServeOptions{Env: []string{"BASE=base", "FOO=overridden"}})
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	status, err := s.client.Exec(testCtx(t), Cmd{
		Argv:   []string{"sh", "-c", `printf '%s|%s|%s|%s|%s\n' "$0" "$1" "$FOO" "$BASE" "$(pwd)"; echo to-stderr >&2; cat`, "zero", "two words"},
		Env:    []string{"FOO=bar baz"},
		Dir:    dir,
		Stdin:  strings.NewReader("from stdin\n"),
		Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil || status != 0 {
		t.Fatalf("Exec = %d, %v; stderr %q", status, err, &stderr)
	}
	if want := "zero|two words|bar baz|base|" + dir + "\nfrom stdin\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", &stdout, want)
	}
	if stderr.String() != "to-stderr\n" {
		t.Errorf("stderr = %q, want %q", &stderr, "to-stderr\n")
	}
}

func TestExec_DefaultsPathAndStdinNull(t *testing.T) {
	s := serve(t, ServeOptions{})
	var stdout bytes.Buffer
	status, err := s.client.Exec(testCtx(t), Cmd{
		Argv:   []string{"sh", "-c", `echo "$PATH"; pwd; cat; echo end`},
		Stdout: &stdout,
	})
	if err != nil || status != 0 {
		t.Fatalf("Exec = %d, %v", status, err)
	}
	if want := DefaultPath + "\n/\nend\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", &stdout, want)
	}
}

func TestExec_OutputSeparateAndByteExact(t *testing.T) {
	s := serve(t, ServeOptions{Env: programEnv})
	const n = 3<<20 + 17
	var stdout, stderr bytes.Buffer
	status, err := s.client.Exec(testCtx(t), Cmd{Argv: programArgv(t, "output", fmt.Sprint(n)), Stdout: &stdout, Stderr: &stderr})
	if err != nil || status != 0 {
		t.Fatalf("Exec = %d, %v", status, err)
	}
	if !bytes.Equal(stdout.Bytes(), testprog.Payload(n, 'o')) {
		t.Errorf("stdout: %d bytes, not the %d written", stdout.Len(), n)
	}
	if !bytes.Equal(stderr.Bytes(), testprog.Payload(n, 'e')) {
		t.Errorf("stderr: %d bytes, not the %d written", stderr.Len(), n)
	}
}

func TestExec_ExitStatuses(t *testing.T) {
	s := serve(t, ServeOptions{Env: programEnv})
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		argv      []string
		dir       string
		want      int
		wantStart string // a *StartError with this in its message
	}{
		{"exit 0", programArgv(t, "exit", "0"), "", 0, ""},
		{"exit 3", programArgv(t, "exit", "3"), "", 3, ""},
		{"SIGKILL", programArgv(t, "kill-self", "9"), "", 128 + 9, ""},
		{"SIGTERM", programArgv(t, "kill-self", "15"), "", 128 + 15, ""},
		{"not found", []string{"no-such-program"}, "", 127, `exec: "no-such-program": executable file not found in $PATH`},
		{"missing path", []string{"/no/such/program"}, "", 127, "no such file or directory"},
		{"not executable", []string{notExec}, "", 126, "permission denied"},
		{"a directory", []string{dir}, "", 126, "permission denied"},
		{"missing working directory", []string{"true"}, "/no/such/dir", 126, "chdir /no/such/dir"},
		{"no argv", nil, "", 126, "no command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, err := s.client.Exec(testCtx(t), Cmd{Argv: tt.argv, Dir: tt.dir})
			if status != tt.want {
				t.Errorf("status %d, want %d (err %v)", status, tt.want, err)
			}
			var se *StartError
			switch {
			case tt.wantStart == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.wantStart != "" && (!errors.As(err, &se) || se.Status != tt.want || !strings.Contains(se.Message, tt.wantStart)):
				t.Errorf("err = %#v, want a *StartError with status %d saying %q", err, tt.want, tt.wantStart)
			}
		})
	}
}

// Flow control: a program that never reads its stdin ends its request
// without stalling the stream, and one that copies it gets every byte.
func TestExec_StdinFlowControl(t *testing.T) {
	s := serve(t, ServeOptions{Env: programEnv})
	big := testprog.Payload(8<<20, 's')
	var wg sync.WaitGroup
	wg.Go(func() {
		status, err := s.client.Exec(testCtx(t), Cmd{Argv: programArgv(t, "ignore-stdin"), Stdin: bytes.NewReader(big)})
		if err != nil || status != 0 {
			t.Errorf("ignore-stdin: Exec = %d, %v", status, err)
		}
	})
	var stdout bytes.Buffer
	status, err := s.client.Exec(testCtx(t), Cmd{Argv: programArgv(t, "cat"), Stdin: bytes.NewReader(big), Stdout: &stdout})
	if err != nil || status != 0 {
		t.Fatalf("cat: Exec = %d, %v", status, err)
	}
	if !bytes.Equal(stdout.Bytes(), big) {
		t.Errorf("cat gave back %d bytes, not the %d sent", stdout.Len(), len(big))
	}
	wg.Wait()
}

func TestExec_Concurrent(t *testing.T) {
	s := serve(t, ServeOptions{})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			var stdout bytes.Buffer
			status, err := s.client.Exec(testCtx(t), Cmd{Argv: []string{"sh", "-c", fmt.Sprintf("echo %d; exit %d", i, i)}, Stdout: &stdout})
			if err != nil || status != i || stdout.String() != fmt.Sprintf("%d\n", i) {
				t.Errorf("exec %d: status %d, %v, stdout %q", i, status, err, &stdout)
			}
		})
	}
	wg.Wait()
}

// An abandoned request's program is killed, and the frames it still sends
// are dropped: the next request sees only its own.
func TestExec_Abandoned_FramesIgnoredByTheNext(t *testing.T) {
	s := serve(t, ServeOptions{Env: programEnv})
	ctx, cancel := context.WithCancel(testCtx(t))
	started := make(chan struct{})
	spam := writerFunc(func(p []byte) (int, error) {
		select {
		case <-started:
		default:
			close(started)
		}
		return len(p), nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := s.client.Exec(ctx, Cmd{Argv: programArgv(t, "spam"), Stdout: spam})
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned Exec = %v, want context.Canceled", err)
	}
	for i := range 5 {
		var stdout bytes.Buffer
		status, err := s.client.Exec(testCtx(t), Cmd{Argv: []string{"echo", "only mine"}, Stdout: &stdout})
		if err != nil || status != 0 || stdout.String() != "only mine\n" {
			t.Fatalf("exec %d after the abandoned one: %d, %v, stdout %q", i, status, err, &stdout)
		}
	}
}

// A writer that fails cancels the program rather than blocking it.
func TestExec_FailingWriter_CancelsProgram(t *testing.T) {
	s := serve(t, ServeOptions{Env: programEnv})
	broken := errors.New("broken writer")
	_, err := s.client.Exec(testCtx(t), Cmd{Argv: programArgv(t, "spam"), Stdout: writerFunc(func([]byte) (int, error) { return 0, broken })})
	if !errors.Is(err, broken) {
		t.Fatalf("Exec = %v, want the writer's error", err)
	}
	var stdout bytes.Buffer
	if status, err := s.client.Exec(testCtx(t), Cmd{Argv: []string{"echo", "next"}, Stdout: &stdout}); err != nil || status != 0 || stdout.String() != "next\n" {
		t.Fatalf("next exec: %d, %v, %q", status, err, &stdout)
	}
}

// The program of a request in flight when the host goes away is killed.
func TestServe_End_KillsPrograms(t *testing.T) {
	host, guest := socketPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, guest, ServeOptions{}) }()
	c := NewClient(host)
	pidFile := filepath.Join(t.TempDir(), "pid")
	execDone := make(chan error, 1)
	go func() {
		_, err := c.Exec(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 600"}})
		execDone <- err
	}()
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			fmt.Sscan(string(b), &pid)
		}
		if time.Now().After(deadline) {
			t.Fatal("the program never started")
		}
	}
	c.Close()
	if err := <-execDone; !errors.Is(err, ErrClosed) {
		t.Errorf("Exec on a closed client = %v, want ErrClosed", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil at the stream's end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the host closed")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("pid %d still there after Serve returned", pid)
	}
}

func TestExec_NumericUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("switching users needs root")
	}
	s := serve(t, ServeOptions{})
	var stdout bytes.Buffer
	status, err := s.client.Exec(testCtx(t), Cmd{Argv: []string{"sh", "-c", "id -u; id -g"}, User: "1234:4321", Stdout: &stdout})
	if err != nil || status != 0 || stdout.String() != "1234\n4321\n" {
		t.Fatalf("Exec = %d, %v, stdout %q; want 1234 and 4321", status, err, &stdout)
	}
	_, err = s.client.Exec(testCtx(t), Cmd{Argv: []string{"true"}, User: "nobody"})
	var se *StartError
	if !errors.As(err, &se) || se.Status != 126 {
		t.Errorf("a user name without LookupUser: %v, want a StartError with 126", err)
	}
}

func TestPowerOff(t *testing.T) {
	called := make(chan struct{}, 1)
	s := serve(t, ServeOptions{PowerOff: func() error { called <- struct{}{}; return nil }})
	if err := s.client.PowerOff(testCtx(t)); err != nil {
		t.Fatalf("PowerOff = %v", err)
	}
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeOptions.PowerOff never called")
	}
	refused := serve(t, ServeOptions{})
	var re *RemoteError
	if err := refused.client.PowerOff(testCtx(t)); !errors.As(err, &re) {
		t.Errorf("PowerOff without ServeOptions.PowerOff = %v, want a RemoteError", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
