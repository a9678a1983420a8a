package workload

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

func list(s ...string) *[]string { return &s }

// Docker's ENTRYPOINT/CMD table ("Understand how CMD and ENTRYPOINT
// interact") and how docker run's arguments and --entrypoint change it.
func TestResolve_Argv_DockerMatrix(t *testing.T) {
	entry := []string{"/entry", "p1_entry"}
	cmd := []string{"exec_cmd", "p1_cmd"}
	for _, tt := range []struct {
		name       string
		image      protocol.ImageConfig
		args       []string
		entrypoint *[]string
		want       []string
	}{
		{"entrypoint only", protocol.ImageConfig{Entrypoint: entry}, nil, nil, []string{"/entry", "p1_entry"}},
		{"cmd only", protocol.ImageConfig{Cmd: cmd}, nil, nil, []string{"exec_cmd", "p1_cmd"}},
		{"entrypoint and cmd", protocol.ImageConfig{Entrypoint: entry, Cmd: cmd}, nil, nil,
			[]string{"/entry", "p1_entry", "exec_cmd", "p1_cmd"}},
		{"args replace cmd", protocol.ImageConfig{Entrypoint: entry, Cmd: cmd}, []string{"a", "b"}, nil,
			[]string{"/entry", "p1_entry", "a", "b"}},
		{"args without entrypoint", protocol.ImageConfig{Cmd: cmd}, []string{"sh"}, nil, []string{"sh"}},
		{"args, image has nothing", protocol.ImageConfig{}, []string{"sh", "-c", "x"}, nil, []string{"sh", "-c", "x"}},
		{"--entrypoint drops the image's cmd", protocol.ImageConfig{Entrypoint: entry, Cmd: cmd}, nil, list("/bin/sh"),
			[]string{"/bin/sh"}},
		{"--entrypoint with args", protocol.ImageConfig{Entrypoint: entry, Cmd: cmd}, []string{"-c", "x"}, list("/bin/sh"),
			[]string{"/bin/sh", "-c", "x"}},
		{`--entrypoint "" with args`, protocol.ImageConfig{Entrypoint: entry, Cmd: cmd}, []string{"ls"}, list(""),
			[]string{"ls"}},
		{"--entrypoint [] with args", protocol.ImageConfig{Entrypoint: entry}, []string{"ls"}, list(), []string{"ls"}},
		{`image entrypoint [""] is none`, protocol.ImageConfig{Entrypoint: []string{""}, Cmd: cmd}, nil, nil,
			[]string{"exec_cmd", "p1_cmd"}},
		{"empty argument kept", protocol.ImageConfig{Cmd: []string{"echo", ""}}, nil, nil, []string{"echo", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := protocol.RunConfig{Version: protocol.RunConfigVersion, Image: tt.image, Args: tt.args, Entrypoint: tt.entrypoint}
			spec, err := Resolve(cfg, fstest.MapFS{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(spec.Argv, tt.want) {
				t.Errorf("argv = %q, want %q", spec.Argv, tt.want)
			}
		})
	}
}

func TestResolve_NoCommand(t *testing.T) {
	cmd := []string{"nginx"}
	for _, tt := range []struct {
		name       string
		image      protocol.ImageConfig
		entrypoint *[]string
	}{
		{"image has neither", protocol.ImageConfig{}, nil},
		{`--entrypoint "" drops the image's cmd`, protocol.ImageConfig{Entrypoint: []string{"/e"}, Cmd: cmd}, list("")},
		{"--entrypoint [] drops the image's cmd", protocol.ImageConfig{Cmd: cmd}, list()},
	} {
		cfg := protocol.RunConfig{Version: protocol.RunConfigVersion, Image: tt.image, Entrypoint: tt.entrypoint}
		_, err := Resolve(cfg, fstest.MapFS{})
		if !errors.Is(err, ErrNoCommand) || err.Error() != "no command specified" {
			t.Errorf("%s: Resolve = %v, want %q", tt.name, err, ErrNoCommand)
		}
	}
}

func TestResolve_Env_DockerOrderAndOverrides(t *testing.T) {
	for _, tt := range []struct {
		name     string
		image    []string
		run      []string
		tty      bool
		hostname string
		want     []string
	}{
		{"defaults", nil, nil, false, "",
			[]string{"PATH=" + DefaultPath, "HOSTNAME=vmm", "HOME=/root"}},
		{"image PATH replaces the default in place; run before image", []string{"PATH=/x", "A=0", "C=3"}, []string{"B=2", "A=1"}, false, "h",
			[]string{"PATH=/x", "HOSTNAME=h", "B=2", "A=1", "C=3", "HOME=/root"}},
		{"tty adds TERM, which the image may override", []string{"TERM=dumb"}, nil, true, "h",
			[]string{"PATH=" + DefaultPath, "HOSTNAME=h", "TERM=dumb", "HOME=/root"}},
		{"tty TERM", nil, nil, true, "h",
			[]string{"PATH=" + DefaultPath, "HOSTNAME=h", "TERM=xterm", "HOME=/root"}},
		{"run HOSTNAME and HOME win", nil, []string{"HOSTNAME=mine", "HOME=/h"}, false, "h",
			[]string{"PATH=" + DefaultPath, "HOSTNAME=mine", "HOME=/h"}},
		{"empty HOME is filled from passwd", []string{"HOME="}, nil, false, "h",
			[]string{"PATH=" + DefaultPath, "HOSTNAME=h", "HOME=/root"}},
		{"bare name in run env unsets the image's", []string{"SECRET=1", "KEEP=1"}, []string{"SECRET"}, false, "h",
			[]string{"PATH=" + DefaultPath, "HOSTNAME=h", "KEEP=1", "HOME=/root"}},
		{"bare PATH in the image unsets the default", []string{"PATH"}, nil, false, "h",
			[]string{"HOSTNAME=h", "HOME=/root"}},
		{"same name twice: last value, first place", nil, []string{"A=1", "B=2", "A=3"}, false, "h",
			[]string{"PATH=" + DefaultPath, "HOSTNAME=h", "A=3", "B=2", "HOME=/root"}},
		{"values keep their equals signs", nil, []string{"Q=a=b"}, false, "h",
			[]string{"PATH=" + DefaultPath, "HOSTNAME=h", "Q=a=b", "HOME=/root"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := protocol.RunConfig{
				Version: protocol.RunConfigVersion, Image: protocol.ImageConfig{Cmd: []string{"x"}, Env: tt.image},
				Env: tt.run, TTY: tt.tty, Hostname: tt.hostname,
			}
			spec, err := Resolve(cfg, testRootfs())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(spec.Env, tt.want) {
				t.Errorf("env =\n %q\nwant\n %q", spec.Env, tt.want)
			}
		})
	}
}

func TestResolve_WorkingDir(t *testing.T) {
	for _, tt := range []struct{ image, run, want string }{
		{"", "", "/"},
		{"/app", "", "/app"},
		{"/app", "/tmp", "/tmp"},
		{"/app/../srv/", "", "/srv"},
	} {
		cfg := protocol.RunConfig{Version: protocol.RunConfigVersion, Image: protocol.ImageConfig{Cmd: []string{"x"}, WorkingDir: tt.image}, WorkingDir: tt.run}
		spec, err := Resolve(cfg, fstest.MapFS{})
		if err != nil || spec.Dir != tt.want {
			t.Errorf("Resolve(image %q, -w %q) dir = %q, %v; want %q", tt.image, tt.run, spec.Dir, err, tt.want)
		}
	}
}

func TestResolve_WorkingDirRelative_Refused(t *testing.T) {
	cfg := protocol.RunConfig{Version: protocol.RunConfigVersion, Image: protocol.ImageConfig{Cmd: []string{"x"}}, WorkingDir: "app"}
	if _, err := Resolve(cfg, fstest.MapFS{}); !errors.Is(err, protocol.ErrBadRunConfig) {
		t.Errorf("Resolve = %v, want ErrBadRunConfig", err)
	}
}

// The whole path with a rootfs on disk, as guestinit will use it.
func TestResolve_TempRootfs_UserEnvFlags(t *testing.T) {
	root := t.TempDir()
	for name, data := range testRootfs() {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := protocol.RunConfig{
		Version: protocol.RunConfigVersion,
		Image: protocol.ImageConfig{
			Entrypoint: []string{"/usr/bin/app"}, Cmd: []string{"--serve"}, User: "alice",
			Env: []string{"PATH=/usr/bin:/bin", "APP_MODE=prod"}, WorkingDir: "/srv",
		},
		Args: []string{"--debug"}, Env: []string{"APP_MODE=dev"}, Hostname: "box", Interactive: true,
	}
	got, err := Resolve(cfg, RootFS(root))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		Argv: []string{"/usr/bin/app", "--debug"},
		Env:  []string{"PATH=/usr/bin:/bin", "HOSTNAME=box", "APP_MODE=dev", "HOME=/home/alice"},
		Dir:  "/srv", UID: 1000, GID: 1000, Groups: []uint32{1000, 10, 50, 999},
		Hostname: "box", OpenStdin: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve =\n %+v\nwant\n %+v", got, want)
	}
	cfg.User = "mallory"
	if _, err := Resolve(cfg, RootFS(root)); !errors.Is(err, ErrUnknownUser) || !strings.Contains(err.Error(), `"mallory"`) {
		t.Errorf("Resolve(-u mallory) = %v, want ErrUnknownUser naming mallory", err)
	}
}
