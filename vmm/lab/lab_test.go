package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const sample = `
[[network]]
name = "lan"

[[network]]
name = "back"
subnet = "192.168.7.0/29"

[[vm]]
name = "server"
image = "oci-layout:img:latest"
command = ["httpd", "-f"]
env = ["A=1"]
networks = ["lan", "back"]

[[vm]]
name = "probe"
kernel = "probe.bzImage"
cmdline = "console=ttyS0"
memory = "64M"
cpus = 2
disks = ["/abs/d.img,ro"]
networks = ["lan"]

[[vm]]
name = "client"
image = "oci-layout:img:latest"
ip = "10.89.0.50"
networks = ["lan"]
`

func TestParseAndPlan(t *testing.T) {
	f, err := Parse(strings.NewReader(sample), "/labs")
	if err != nil {
		t.Fatal(err)
	}
	if f.VMs[1].Kernel != "/labs/probe.bzImage" || f.VMs[1].Disks[0] != "/abs/d.img,ro" {
		t.Errorf("paths: %+v", f.VMs[1])
	}
	p, err := f.Plan("/run/lab")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"run", "--hostname", "server", "--net", "socket=/run/lab/lan.sock,mac=02:76:6d:00:00:00,ip=10.89.0.2/24",
			"--net", "socket=/run/lab/back.sock,mac=02:76:6d:01:00:00", "--add-host", "client:10.89.0.50", "-e", "A=1",
			"oci-layout:img:latest", "httpd", "-f"},
		{"boot", "--stop-timeout", "5s", "--kernel", "/labs/probe.bzImage", "--cmdline", "console=ttyS0", "--memory", "64M", "--cpus", "2",
			"--disk", "/abs/d.img,ro", "--net", "socket=/run/lab/lan.sock,mac=02:76:6d:00:01:00"},
		{"run", "--hostname", "client", "--net", "socket=/run/lab/lan.sock,mac=02:76:6d:00:02:00,ip=10.89.0.50/24",
			"--add-host", "server:10.89.0.2", "oci-layout:img:latest"},
	}
	for i, vm := range p.VMs {
		if !slices.Equal(vm.Args, want[i]) {
			t.Errorf("vm %s args:\n%q\nwant\n%q", vm.Name, vm.Args, want[i])
		}
	}
	if p.VMs[1].Addr.IsValid() {
		t.Errorf("a kernel VM got address %s", p.VMs[1].Addr)
	}
}

func TestParse_Errors(t *testing.T) {
	base := "[[network]]\nname = \"lan\"\n"
	for _, c := range []struct{ file, want string }{
		{"", "no [[vm]]"},
		{base + "[[vm]]\nname = \"a\"\nkernel = \"k\"\nmemroy = \"1G\"\n", "unknown key vm.memroy"},
		{"[[vm]]\nname = \"a\"\n", "either kernel or image"},
		{"[[vm]]\nname = \"a\"\nkernel = \"k\"\nimage = \"i\"\n", "either kernel or image"},
		{"[[vm]]\nname = \"A b\"\nkernel = \"k\"\n", "lower-case"},
		{"[[vm]]\nname = \"a\"\nkernel = \"k\"\n[[vm]]\nname = \"a\"\nkernel = \"k\"\n", "defined twice"},
		{"[[vm]]\nname = \"a\"\nkernel = \"k\"\nnetworks = [\"wan\"]\n", `network "wan" is not defined`},
		{"[[vm]]\nname = \"a\"\nkernel = \"k\"\ncommand = [\"x\"]\n", "for image VMs"},
		{"[[vm]]\nname = \"a\"\nimage = \"i\"\ncmdline = \"x\"\n", "for kernel VMs"},
		{base + "[[vm]]\nname = \"a\"\nimage = \"i\"\nip = \"10.0.0.1\"\n", "ip without a network"},
		{base + "[[vm]]\nname = \"a\"\nimage = \"i\"\nip = \"fe80::1\"\nnetworks=[\"lan\"]\n", "IPv4"},
		{"[[network]]\nname = \"lan\"\nsubnet = \"10.0.0.1/24\"\n[[vm]]\nname = \"a\"\nkernel = \"k\"\n", "subnet"},
		{"[[vm]]\nname = \"a\"\nkernel = [1]\n", "bad lab file"},
	} {
		_, err := Parse(strings.NewReader(c.file), "/")
		if !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want ErrBadFile mentioning %q", c.file, err, c.want)
		}
	}
}

func TestPlan_AddressConflicts(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"[[network]]\nname = \"lan\"\n[[vm]]\nname = \"a\"\nimage = \"i\"\nnetworks=[\"lan\"]\n[[vm]]\nname = \"b\"\nimage = \"i\"\nip=\"10.89.0.2\"\nnetworks=[\"lan\"]\n", "also \"a\"'s"},
		{"[[network]]\nname = \"lan\"\n[[vm]]\nname = \"a\"\nimage = \"i\"\nip=\"10.1.0.2\"\nnetworks=[\"lan\"]\n", "not a host address"},
		{"[[network]]\nname = \"lan\"\nsubnet=\"10.0.0.0/29\"\n[[vm]]\nname = \"a\"\nimage = \"i\"\nip=\"10.0.0.7\"\nnetworks=[\"lan\"]\n", "not a host address"},
	} {
		f, err := Parse(strings.NewReader(c.file), "/")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Plan("/tmp"); !errors.Is(err, ErrBadFile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Plan: %v, want %q", err, c.want)
		}
	}
}

func TestLineWriter_PrefixesWholeLines(t *testing.T) {
	var out bytes.Buffer
	m := &muxWriter{w: &out}
	a, b := m.prefixed("a | "), m.prefixed("b | ")
	a.Write([]byte("one\r\ntw"))
	b.Write([]byte("x\n"))
	a.Write([]byte("o\nthree"))
	a.flush()
	want := "a | one\nb | x\na | two\na | three\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// The test binary doubles as a fake vmm: it prints its arguments and
// exits with the status the last one names ("exit=N"), or sleeps until
// SIGTERM with "sleep".
func TestMain(m *testing.M) {
	if os.Getenv("LAB_FAKE_VMM") == "1" {
		fakeVMM(os.Args[1:])
	}
	os.Exit(m.Run())
}

func fakeVMM(args []string) {
	fmt.Printf("args %s\npartial", strings.Join(args, " "))
	fmt.Fprintln(os.Stderr, "on stderr")
	last := args[len(args)-1]
	if last == "sleep" {
		time.Sleep(time.Minute)
	}
	code, _ := strconv.Atoi(strings.TrimPrefix(last, "exit="))
	os.Exit(code)
}

type closer struct {
	mu     *sync.Mutex
	paths  *[]string
	closed *int
}

func (c closer) Close() error { c.mu.Lock(); *c.closed++; c.mu.Unlock(); return nil }

func fakeOptions(t *testing.T, out io.Writer) (Options, *[]string, *int) {
	t.Setenv("LAB_FAKE_VMM", "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var paths []string
	closed := 0
	return Options{Exe: exe, Out: out, Dir: t.TempDir(), StopTimeout: 5 * time.Second,
		StartSwitch: func(path string) (io.Closer, error) {
			mu.Lock()
			defer mu.Unlock()
			paths = append(paths, path)
			return closer{&mu, &paths, &closed}, nil
		}}, &paths, &closed
}

func TestRun_StatusesAndPrefixedOutput(t *testing.T) {
	f, err := Parse(strings.NewReader(`
[[network]]
name = "lan"
[[vm]]
name = "ok"
image = "i"
command = ["exit=0"]
networks = ["lan"]
[[vm]]
name = "failing"
image = "i"
command = ["exit=3"]
`), "/")
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	opts, paths, closed := fakeOptions(t, &out)
	res, err := Run(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != (Result{"ok", 0}) || res[1] != (Result{"failing", 3}) || OK(res) {
		t.Errorf("results %+v", res)
	}
	if len(*paths) != 1 || filepath.Base((*paths)[0]) != "lan.sock" || *closed != 1 {
		t.Errorf("switches started at %q, closed %d", *paths, *closed)
	}
	s := out.String()
	for _, want := range []string{"ok      | args run --hostname ok --net socket=", "failing | args run --hostname failing i exit=3\n",
		"ok      | partial\n", "failing | on stderr\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// Ending the context stops every VM with SIGTERM (the fake dies of it).
func TestRun_ContextEnd_StopsVMs(t *testing.T) {
	f, err := Parse(strings.NewReader("[[vm]]\nname = \"a\"\nimage = \"i\"\ncommand = [\"sleep\"]\n[[vm]]\nname = \"b\"\nimage = \"i\"\ncommand = [\"sleep\"]\n"), "/")
	if err != nil {
		t.Fatal(err)
	}
	opts, _, _ := fakeOptions(t, io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, f, opts)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 4*time.Second || res[0].Status != -1 || res[1].Status != -1 {
		t.Errorf("after %v: %+v, want both killed by SIGTERM promptly", time.Since(start), res)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// FuzzParse: any file is parsed or refused with ErrBadFile, and a parsed
// one plans without a panic.
func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("[[vm]]\nname = \"a\"\nkernel = \"k\"\n")
	f.Add("[[network]]\nname=\"n\"\nsubnet=\"10.0.0.0/30\"\n[[vm]]\nname=\"a\"\nimage=\"i\"\nnetworks=[\"n\"]\n[[vm]]\nname=\"b\"\nimage=\"i\"\nnetworks=[\"n\"]\n")
	f.Fuzz(func(t *testing.T, file string) {
		lf, err := Parse(strings.NewReader(file), "/d")
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("error %v is not ErrBadFile", err)
			}
			return
		}
		if _, err := lf.Plan("/s"); err != nil && !errors.Is(err, ErrBadFile) {
			t.Fatalf("Plan error %v is not ErrBadFile", err)
		}
	})
}
