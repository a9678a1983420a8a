package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmm-dev/vmm/guestinit/workload"
	"github.com/vmm-dev/vmm/internal/testprog"
)

// initResult is what the init role reports.
type initResult struct {
	PID     int
	Status  int      // Supervise's status for the workload
	Execs   int      // execs that ran
	Errors  []string // everything that came out wrong
	Zombies []int    // zombie children of PID 1 left at the end
}

// TestExec_UnderGuestinitReaper runs guestinit's arrangement as PID 1 of
// a PID namespace of the test's: workload.Supervise runs a workload and
// reaps every child, while the agent, started with workload.Children,
// runs many programs at once (some exit at once, some leave orphans, some
// die by a signal, one copies stdin), each with its exit status intact;
// the workload's status reaches Supervise; programs run chrooted in a
// root and files go there; after Supervise returns, execs still work,
// and no zombie is left.
func TestExec_UnderGuestinitReaper(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a PID namespace needs root")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	result := filepath.Join(t.TempDir(), "result.json")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = []string{roleEnv + "=init", noRaceExitWait, resultEnv + "=" + result, "TMPDIR=" + t.TempDir()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("init role: %v\n%s", err, out)
	}
	t.Logf("the init role took %v", time.Since(start).Round(time.Millisecond))
	data, err := os.ReadFile(result)
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, out)
	}
	var r initResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.PID != 1 {
		t.Errorf("init role pid %d, want 1", r.PID)
	}
	if r.Status != 64+int(unix.SIGTERM) {
		t.Errorf("Supervise = %d, want %d: the workload's status was lost", r.Status, 64+int(unix.SIGTERM))
	}
	for _, e := range r.Errors {
		t.Error(e)
	}
	if r.Execs < 100 {
		t.Errorf("only %d execs ran", r.Execs)
	}
	if len(r.Zombies) != 0 {
		t.Errorf("zombies left: %v", r.Zombies)
	}
}

// initRun is the init role's state.
type initRun struct {
	mu  sync.Mutex
	res initResult
}

func (r *initRun) errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Errors = append(r.res.Errors, fmt.Sprintf(format, args...))
}

func initMain() int {
	// A hang shows where. (SIGQUIT would go to the workload: Supervise
	// forwards it.)
	time.AfterFunc(60*time.Second, func() {
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		os.Exit(4)
	})
	r := &initRun{res: initResult{PID: os.Getpid()}}
	if err := r.setup(); err != nil {
		fmt.Fprintf(os.Stderr, "init: %v\n", err)
		return 3
	}
	r.run()
	data, _ := json.Marshal(r.res)
	if err := os.WriteFile(os.Getenv(resultEnv), data, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "init: write result: %v\n", err)
		return 3
	}
	return 0
}

// setup gives PID 1 its own /proc, in mounts private to it.
func (r *initRun) setup() error {
	if os.Getpid() != 1 {
		return fmt.Errorf("pid %d, want 1", os.Getpid())
	}
	return testprog.BecomeReaper()
}

// client starts Serve with opts on a socket pair and returns its client.
func (r *initRun) client(ctx context.Context, opts ServeOptions) (*Client, func()) {
	host, guest, err := connPair()
	if err != nil {
		r.errorf("socketpair: %v", err)
		return nil, func() {}
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, guest, opts) }()
	c := NewClient(host)
	return c, func() {
		c.Close()
		if err := <-done; err != nil {
			r.errorf("Serve: %v", err)
		}
		guest.Close()
	}
}

// execCase is a program and what it must report.
type execCase struct {
	script string
	stdin  string
	want   int
	out    string
}

func execCases(n int) []execCase {
	var cs []execCase
	for i := range n {
		switch i % 5 {
		case 0:
			cs = append(cs, execCase{script: fmt.Sprintf("exit %d", i%200), want: i % 200})
		case 1:
			cs = append(cs, execCase{script: "kill -KILL $$", want: 128 + 9})
		case 2:
			cs = append(cs, execCase{script: fmt.Sprintf("(sleep 0.05 &); echo orphan %d; exit 3", i), want: 3, out: fmt.Sprintf("orphan %d\n", i)})
		case 3:
			cs = append(cs, execCase{script: "cat", stdin: fmt.Sprintf("stdin %d\n", i), out: fmt.Sprintf("stdin %d\n", i)})
		case 4:
			cs = append(cs, execCase{script: "true"})
		}
	}
	return cs
}

// execAll runs cs through c, as many at once as the agent takes (more
// would be refused as busy), and checks each.
func (r *initRun) execAll(ctx context.Context, c *Client, cs []execCase) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, MaxRequests/2)
	for _, ec := range cs {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			cmd := Cmd{Argv: []string{"/bin/sh", "-c", ec.script}}
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			if ec.stdin != "" {
				cmd.Stdin = strings.NewReader(ec.stdin)
			}
			status, err := c.Exec(ctx, cmd)
			r.mu.Lock()
			r.res.Execs++
			r.mu.Unlock()
			if err != nil || status != ec.want || stdout.String() != ec.out {
				r.errorf("%q: status %d, %v, stdout %q; want %d, %q", ec.script, status, err, &stdout, ec.want, ec.out)
			}
		})
	}
	wg.Wait()
}

func (r *initRun) run() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	children := workload.NewChildren()
	c, stop := r.client(ctx, ServeOptions{Start: children.Start})
	if c == nil {
		return
	}
	defer stop()

	exe, _ := os.Executable()
	spec := workload.Spec{Argv: []string{exe, "trap", strconv.Itoa(int(unix.SIGTERM))}, Env: programEnv, Dir: "/"}
	outR, outW, err := os.Pipe()
	if err != nil {
		r.errorf("pipe: %v", err)
		return
	}
	signals := make(chan os.Signal, 1)
	supervised := make(chan int, 1)
	go func() {
		status, err := workload.Supervise(spec, workload.Stdio{Stdout: outW, Stderr: os.Stderr},
			workload.Options{Signals: signals, Children: children, KillOthers: false})
		if err != nil {
			r.errorf("Supervise: %v", err)
		}
		supervised <- status
	}()
	if line, err := bufio.NewReader(outR).ReadString('\n'); line != "ready\n" {
		r.errorf("workload said %q, %v; want ready", line, err)
		return
	}

	// While Supervise reaps: many at once, then in a chroot.
	r.execAll(ctx, c, execCases(100))
	r.chrooted(ctx, children)
	time.Sleep(200 * time.Millisecond) // the last orphans exit while Supervise reaps

	signals <- unix.SIGTERM
	r.res.Status = <-supervised

	// No reaper now: each exec waits for its own program.
	var plain []execCase
	for _, ec := range execCases(20) {
		if !strings.Contains(ec.script, "&") {
			plain = append(plain, ec)
		}
	}
	r.execAll(ctx, c, plain)
	r.res.Zombies = zombies()
}

// chrooted runs programs and file copies in a root of their own: the
// host's programs bound read-only into it, and a file only it has.
func (r *initRun) chrooted(ctx context.Context, children *workload.Children) {
	root, err := os.MkdirTemp("", "agent-root-")
	if err != nil {
		r.errorf("%v", err)
		return
	}
	unbind, err := testprog.BindHostDirs(root)
	defer unbind()
	if err != nil {
		r.errorf("%v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(root, "marker"), []byte("inside the root\n"), 0o644); err != nil {
		r.errorf("%v", err)
		return
	}
	c, stop := r.client(ctx, ServeOptions{Root: root, Start: children.Start, Dir: "/work"})
	if c == nil {
		return
	}
	defer stop()
	if err := os.Mkdir(filepath.Join(root, "work"), 0o755); err != nil {
		r.errorf("%v", err)
		return
	}
	if err := c.PutFile(ctx, "/work/script", strings.NewReader("cat /marker; pwd\n"), 0o755); err != nil {
		r.errorf("put: %v", err)
	}
	var stdout bytes.Buffer
	status, err := c.Exec(ctx, Cmd{Argv: []string{"sh", "./script"}, Stdout: &stdout})
	if want := "inside the root\n/work\n"; err != nil || status != 0 || stdout.String() != want {
		r.errorf("chrooted exec: %d, %v, stdout %q; want %q", status, err, &stdout, want)
	}
	var got bytes.Buffer
	if err := c.GetFile(ctx, "/marker", &got); err != nil || got.String() != "inside the root\n" {
		r.errorf("chrooted get: %v, %q", err, &got)
	}
}

// zombies lists PID 1's zombie children, once the last orphans had time
// to exit and be reaped.
func zombies() []int {
	time.Sleep(200 * time.Millisecond)
	zs, _ := testprog.ScanProc(1)
	return zs
}
