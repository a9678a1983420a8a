package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmm-dev/vmm/guestinit/agent"
	"github.com/vmm-dev/vmm/vmm/msgbridge"
)

// fakeEnv turns the test binary into a fake vmm, so the harness can be
// tested without KVM. The kernel path picks its behaviour.
const fakeEnv = "VMTEST_FAKE_VMM"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeVMM(os.Args[1:]))
	}
	os.Exit(Main(m))
}

func fakeVMM(args []string) int {
	fmt.Fprintln(os.Stderr, "fake vmm:", strings.Join(args, " "))
	switch args[2] {
	case "echo":
		fmt.Println("booting\nready")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Printf("echo: %s", line)
		return 3
	case "exit7":
		fmt.Println("bye")
		return 7
	case "silent":
		fmt.Println("nothing here")
		time.Sleep(time.Minute)
	case "agent":
		return fakeAgent(args)
	}
	return 99
}

// fakeAgent is a fake vmm whose guest end is the real thing without a VM:
// vmm's bridge of the agent port (msgbridge) wired to guestinit's agent
// server, rooted at $VMTEST_FAKE_ROOT.
func fakeAgent(args []string) int {
	var path string
	for i, a := range args {
		if a == "--port" && i+1 < len(args) {
			path = strings.TrimPrefix(args[i+1], agentPort+",socket=")
		}
	}
	b, err := msgbridge.Listen(path, msgbridge.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 98
	}
	defer b.Close()
	fmt.Println("agent up")
	off := make(chan struct{})
	go agent.Serve(context.Background(), struct {
		io.Reader
		io.Writer
	}{b.In(), b.Out()}, agent.ServeOptions{
		Root:     os.Getenv("VMTEST_FAKE_ROOT"),
		PowerOff: func() error { close(off); select {} },
	})
	<-off
	return 0
}

func startFake(t testing.TB, kernel string) *VM {
	return start(t, os.Args[0], Config{Kernel: kernel}.args(""))
}

// fakeTB records the first Fatalf and ends the calling goroutine, as
// testing.T does, so a test can check a harness failure.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalOf runs fn against a fakeTB and returns its Fatalf message, if any.
func fatalOf(t *testing.T, fn func(tb testing.TB)) string {
	tb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.fatal
}

func TestConfig_Args(t *testing.T) {
	cfg := Config{Kernel: "k", Initrd: "i", Cmdline: "a b", Memory: "128M", CPUs: 2, Args: []string{"--x"}}
	want := []string{"boot", "--kernel", "k", "--initrd", "i", "--cmdline", "a b", "--memory", "128M", "--cpus", "2", "--x"}
	if got := cfg.args(""); !reflect.DeepEqual(got, want) {
		t.Errorf("args = %q, want %q", got, want)
	}
	if got := (Config{Kernel: "k"}).args(""); !reflect.DeepEqual(got, []string{"boot", "--kernel", "k"}) {
		t.Errorf("minimal args = %q", got)
	}
}

func TestVM_ExpectSendWait(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	vm := startFake(t, "echo")
	vm.Expect(`ready`, 5*time.Second)
	vm.SendLine("hello there")
	subs := vm.Expect(`echo: (\w+) (\w+)`, 5*time.Second)
	if want := []string{"echo: hello there", "hello", "there"}; !reflect.DeepEqual(subs, want) {
		t.Errorf("submatches = %q, want %q", subs, want)
	}
	if code := vm.Wait(5 * time.Second); code != 3 {
		t.Errorf("exit status = %d, want 3", code)
	}
	if got, want := vm.Console(), "booting\nready\necho: hello there\n"; got != want {
		t.Errorf("console = %q, want %q", got, want)
	}
	if !strings.Contains(vm.Stderr(), "fake vmm: boot --kernel echo") {
		t.Errorf("stderr = %q, want the fake's banner", vm.Stderr())
	}
}

func TestVM_Expect_ConsumesMatches(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	vm := startFake(t, "echo")
	vm.Expect(`booting`, 5*time.Second)
	msg := fatalOf(t, func(tb testing.TB) {
		vm.t = tb
		vm.Expect(`booting`, 200*time.Millisecond)
	})
	if !strings.Contains(msg, `did not match "booting"`) {
		t.Errorf("second Expect of a consumed line: fatal = %q", msg)
	}
}

func TestVM_Expect_TimeoutShowsPatternAndOutput(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	msg := fatalOf(t, func(tb testing.TB) {
		vm := startFake(tb, "silent")
		vm.Expect(`never printed`, 300*time.Millisecond)
	})
	for _, want := range []string{`"never printed"`, "300ms", "nothing here", "fake vmm: boot --kernel silent"} {
		if !strings.Contains(msg, want) {
			t.Errorf("fatal message lacks %q:\n%s", want, msg)
		}
	}
}

func TestVM_Expect_FailsFastWhenVMExits(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	begin := time.Now()
	msg := fatalOf(t, func(tb testing.TB) {
		startFake(tb, "exit7").Expect(`never printed`, time.Minute)
	})
	if !strings.Contains(msg, "exited with status 7") || !strings.Contains(msg, "bye") {
		t.Errorf("fatal = %q, want the exit status and the console", msg)
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("Expect waited %v after the VM exited", d)
	}
}

func TestVM_Wait_TimeoutKills(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	var vm *VM
	msg := fatalOf(t, func(tb testing.TB) {
		vm = startFake(tb, "silent")
		vm.Wait(300 * time.Millisecond)
	})
	if !strings.Contains(msg, "still running after 300ms, killed") {
		t.Errorf("fatal = %q", msg)
	}
	if !vm.exited() {
		t.Error("VM still running after Wait timed out")
	}
}

func TestRun_Result(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	t.Setenv(BinaryEnv, os.Args[0])
	res := Run(t, Config{Kernel: "exit7"}, 5*time.Second)
	if res.Code != 7 || res.Console != "bye\n" || !strings.Contains(res.Stderr, "fake vmm") {
		t.Errorf("Run = %+v", res)
	}
}

func TestConfig_Args_ImageNICsAgent(t *testing.T) {
	n := &Network{path: "/s/switch.sock", id: 1}
	nic := n.NIC()
	if nic.MAC != "02:76:74:01:01:00" || nic.IP != "10.90.1.2/24" || nic.Addr() != "10.90.1.2" {
		t.Fatalf("NIC() = %+v", nic)
	}
	cfg := Config{Image: "oci-layout:d:t", Cmd: []string{"sh", "-c", "x"}, Env: []string{"A=1"}, Memory: "256M",
		Disks: []string{"d.img,ro"}, NICs: []NIC{nic, n.NIC()}, Agent: true}
	want := []string{"run", "-i", "--memory", "256M", "--disk", "d.img,ro",
		"--net", "socket=/s/switch.sock,mac=02:76:74:01:01:00,ip=10.90.1.2/24", "--net", "socket=/s/switch.sock,mac=02:76:74:01:02:00",
		"--agent", "/a.sock", "-e", "A=1", "oci-layout:d:t", "sh", "-c", "x"}
	if got := cfg.args("/a.sock"); !reflect.DeepEqual(got, want) {
		t.Errorf("image args:\n%q\nwant\n%q", got, want)
	}
	cfg = Config{Kernel: "k", Initrd: "i", Agent: true, NICs: []NIC{nic}}
	want = []string{"boot", "--kernel", "k", "--initrd", "i", "--cmdline", "console=ttyS0 " + AgentCmdline,
		"--net", "socket=/s/switch.sock,mac=02:76:74:01:01:00", "--port", "vmm.agent,socket=/a.sock"}
	if got := cfg.args("/a.sock"); !reflect.DeepEqual(got, want) {
		t.Errorf("kernel agent args:\n%q\nwant\n%q", got, want)
	}
}

// Exec, PutFile, GetFile and PowerOff through vmm's bridge and guestinit's
// agent (a fake vmm with no VM between them): the harness's side.
func TestVM_Agent(t *testing.T) {
	t.Setenv(fakeEnv, "1")
	dir := t.TempDir()
	t.Setenv("VMTEST_FAKE_ROOT", "") // the host's root stands in for the guest's
	t.Setenv(BinaryEnv, os.Args[0])
	vm := Start(t, Config{Kernel: "agent", Agent: true})

	r := vm.Exec("/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	if string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.Status != 3 {
		t.Errorf("Exec = %+v", r)
	}
	data := make([]byte, 10<<20)
	rand.Read(data)
	vm.PutFile(dir+"/big.bin", data, 0o600)
	if got, _ := os.ReadFile(dir + "/big.bin"); !bytes.Equal(got, data) {
		t.Fatalf("PutFile wrote %d bytes, want the 10 MiB sent", len(got))
	}
	if got := vm.GetFile(dir + "/big.bin"); !bytes.Equal(got, data) {
		t.Fatalf("GetFile returned %d bytes, want the 10 MiB file", len(got))
	}
	msg := fatalOf(t, func(tb testing.TB) {
		vm2 := &VM{t: tb, agentPath: vm.agentPath, agent: vm.agent, done: vm.done, console: vm.console, stderr: vm.stderr}
		vm2.GetFile(dir + "/missing")
	})
	if !strings.Contains(msg, "/missing from the guest") {
		t.Errorf("GetFile of a missing file: %q", msg)
	}
	vm.PowerOff()
	if code := vm.Wait(5 * time.Second); code != 0 {
		t.Fatalf("fake vmm exited %d after PowerOff", code)
	}
}
