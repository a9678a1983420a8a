package main

import (
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseRunNet(t *testing.T) {
	nic, cfg, err := parseRunNet("tap=t0,ip=10.1.0.2/24,gw=10.1.0.1,mac=52:54:00:00:00:01")
	if err != nil {
		t.Fatal(err)
	}
	if nic.TAP != "t0" || nic.MAC.String() != "52:54:00:00:00:01" || cfg == nil ||
		cfg.Addr != netip.MustParsePrefix("10.1.0.2/24") || cfg.Gateway != netip.MustParseAddr("10.1.0.1") {
		t.Errorf("parseRunNet = %+v, %+v", nic, cfg)
	}
	if _, cfg, err := parseRunNet("tap=t0"); err != nil || cfg != nil {
		t.Errorf("plain TAP: %+v, %v", cfg, err)
	}
	for _, bad := range []string{"tap=t0,ip=10.1.0.2", "tap=t0,ip=fe80::1/64", "tap=t0,gw=10.0.0.1", "tap=t0,gw=x,ip=10.0.0.2/8", "ip=10.0.0.2/8", "tap=t0,speed=1"} {
		if _, _, err := parseRunNet(bad); err == nil {
			t.Errorf("parseRunNet(%q) accepted", bad)
		}
	}
}

// resolve applies docker's order (env files, then -e) and its rules for
// bare names, --entrypoint "" and the network of the first --net.
func TestRunOptions_Resolve(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# comment\nA=1\nFROMHOST\nMISSING\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, o := runFlags(io.Discard)
	err := fs.Parse([]string{"--env-file", envFile, "-e", "A=2", "-e", "FROMHOST", "-e", "UNSET", "--entrypoint", "",
		"-w", "/srv", "-u", "app", "--hostname", "h", "-it", "--cpus", "2", "--memory", "1G",
		"--net", "tap=t0,ip=10.0.0.2/24", "--disk", "d.img,ro", "img", "cmd", "-x"})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) {
		if k == "FROMHOST" {
			return "host value", true
		}
		return "", false
	}
	spec, m, err := o.resolve(fs, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=1", "FROMHOST=host value", "A=2", "FROMHOST=host value", "UNSET"}; !slices.Equal(spec.Env, want) {
		t.Errorf("env %q, want %q", spec.Env, want)
	}
	if spec.Entrypoint == nil || len(*spec.Entrypoint) != 0 {
		t.Errorf("--entrypoint \"\" gave %v, want an empty entrypoint", spec.Entrypoint)
	}
	if spec.WorkingDir != "/srv" || spec.User != "app" || spec.Hostname != "h" || !spec.TTY || !spec.Interactive {
		t.Errorf("spec %+v", spec)
	}
	if spec.Network == nil || spec.Network.Addr.String() != "10.0.0.2/24" {
		t.Errorf("network %+v", spec.Network)
	}
	if m.CPUs != 2 || m.MemoryBytes != 1<<30 || len(m.NICs) != 1 || len(m.Disks) != 1 || !m.Disks[0].ReadOnly {
		t.Errorf("machine %+v", m)
	}
	if args := fs.Args(); !slices.Equal(args, []string{"img", "cmd", "-x"}) {
		t.Errorf("args after IMAGE %q: the workload's flags must not be parsed", args)
	}

	fs, o = runFlags(io.Discard)
	fs.Parse([]string{"img"})
	if spec, _, _ := o.resolve(fs, lookup); spec.Entrypoint != nil {
		t.Errorf("no --entrypoint gave %v, want nil (the image's)", *spec.Entrypoint)
	}
	fs, o = runFlags(io.Discard)
	fs.Parse([]string{"--env-file", "/nonexistent/env", "img"})
	if _, _, err := o.resolve(fs, lookup); err == nil || !strings.Contains(err.Error(), "--env-file") {
		t.Errorf("missing env file: %v", err)
	}
}

func TestRunOptions_AddHost(t *testing.T) {
	fs, o := runFlags(io.Discard)
	fs.Parse([]string{"--net", "socket=/s", "--add-host", "db:10.0.2.20", "--add-host", "web:10.0.2.21", "img"})
	spec, _, err := o.resolve(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Network == nil || len(spec.Network.ExtraHosts) != 2 || spec.Network.ExtraHosts[1].Name != "web" ||
		spec.Network.ExtraHosts[0].Addr != netip.MustParseAddr("10.0.2.20") || spec.Network.Addr.IsValid() {
		t.Fatalf("network %+v", spec.Network)
	}
	for _, bad := range [][]string{{"--add-host", "db:10.0.2.20", "img"}, {"--net", "socket=/s", "--add-host", "db", "img"},
		{"--net", "socket=/s", "--add-host", "db:nope", "img"}} {
		fs, o := runFlags(io.Discard)
		fs.Parse(bad)
		if _, _, err := o.resolve(fs, nil); err == nil || !strings.Contains(err.Error(), "add-host") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
