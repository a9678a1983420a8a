package vmtest

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
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
	}
	return 99
}

func startFake(t testing.TB, kernel string) *VM {
	return start(t, os.Args[0], Config{Kernel: kernel}.args())
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
	if got := cfg.args(); !reflect.DeepEqual(got, want) {
		t.Errorf("args = %q, want %q", got, want)
	}
	if got := (Config{Kernel: "k"}).args(); !reflect.DeepEqual(got, []string{"boot", "--kernel", "k"}) {
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
