package protocol

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func fullRunConfig() RunConfig {
	ep := []string{""}
	return RunConfig{
		Version: RunConfigVersion,
		Image: ImageConfig{
			Entrypoint: []string{"/docker-entrypoint.sh"},
			Cmd:        []string{"nginx", "-g", "daemon off;"},
			Env:        []string{"PATH=/usr/local/bin:/usr/bin", "NGINX_VERSION=1.27"},
			WorkingDir: "/srv",
			User:       "nginx",
		},
		Args:        []string{"sh", "-c", "echo hi"},
		Entrypoint:  &ep,
		Env:         []string{"A=1", "UNSET_ME"},
		WorkingDir:  "/tmp",
		User:        "1000:1000",
		Hostname:    "web-1.example.com",
		TTY:         true,
		Interactive: true,
		Network: &NetworkConfig{
			Interface:  "eth0",
			Addr:       netip.MustParsePrefix("10.0.2.15/24"),
			Gateway:    netip.MustParseAddr("10.0.2.2"),
			DNS:        DNSConfig{Nameservers: []netip.Addr{netip.MustParseAddr("10.0.2.3")}, Search: []string{"example.com"}, Options: []string{"ndots:2"}},
			ExtraHosts: []HostEntry{{Name: "db", Addr: netip.MustParseAddr("10.0.2.20")}},
		},
	}
}

func TestRunConfig_MarshalDecode_RoundTrip(t *testing.T) {
	for _, want := range []RunConfig{{Version: RunConfigVersion}, fullRunConfig()} {
		data, err := want.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRunConfig(data)
		if err != nil {
			t.Fatalf("DecodeRunConfig(%s): %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

// The distinction between no --entrypoint and --entrypoint "" must survive
// the trip: one keeps the image's, the other clears it.
func TestRunConfig_EntrypointGivenEmpty_SurvivesRoundTrip(t *testing.T) {
	empty := []string{}
	data, err := RunConfig{Version: RunConfigVersion, Entrypoint: &empty}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRunConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Entrypoint == nil || len(*got.Entrypoint) != 0 {
		t.Errorf("entrypoint = %v, want given and empty (%s)", got.Entrypoint, data)
	}
}

// The image's part decodes straight from an OCI image config.
func TestImageConfig_DecodesOCIConfig(t *testing.T) {
	oci := `{"version":1,"image":{"User":"app","Env":["PATH=/bin"],"Entrypoint":["/init"],"Cmd":["run"],"WorkingDir":"/app"}}`
	got, err := DecodeRunConfig([]byte(oci))
	if err != nil {
		t.Fatal(err)
	}
	want := ImageConfig{User: "app", Env: []string{"PATH=/bin"}, Entrypoint: []string{"/init"}, Cmd: []string{"run"}, WorkingDir: "/app"}
	if !reflect.DeepEqual(got.Image, want) {
		t.Errorf("image = %+v, want %+v", got.Image, want)
	}
}

func TestDecodeRunConfig_Bad(t *testing.T) {
	for _, tt := range []struct{ name, data, wantErr string }{
		{"not json", `{`, "unexpected EOF"},
		{"no version", `{}`, "version 0, guestinit reads version 1"},
		{"newer version", `{"version":2,"future":true}`, "version 2"},
		{"unknown field", `{"version":1,"argz":["x"]}`, `unknown field "argz"`},
		{"trailing data", `{"version":1} {}`, "data after the config"},
		{"relative -w", `{"version":1,"workingDir":"tmp"}`, "absolute path"},
		{"relative image workdir", `{"version":1,"image":{"WorkingDir":"app"}}`, "absolute path"},
		{"env without name", `{"version":1,"env":["=x"]}`, `env[0] "=x": no variable name`},
		{"image env without name", `{"version":1,"image":{"Env":["A=1","=x"]}}`, `image Env[1]`},
		{"NUL in argv", `{"version":1,"args":["a\u0000b"]}`, "NUL"},
		{"NUL in entrypoint", `{"version":1,"entrypoint":["a\u0000"]}`, "entrypoint[0]"},
		{"user with two colons", `{"version":1,"user":"a:b:c"}`, "want uid, uid:gid"},
		{"hostname with space", `{"version":1,"hostname":"a b"}`, "not allowed in a host name"},
		{"hostname too long", `{"version":1,"hostname":"` + strings.Repeat("a", 65) + `"}`, "1 to 64"},
		{"hostname leading dash", `{"version":1,"hostname":"-a"}`, "starts with"},
		{"bad interface", `{"version":1,"network":{"interface":"eth0/x"}}`, "interface"},
		{"gateway family", `{"version":1,"network":{"addr":"10.0.0.2/24","gateway":"fd00::1"}}`, "same IP version"},
		{"bad addr", `{"version":1,"network":{"addr":"10.0.0.2"}}`, "netip.ParsePrefix"},
		{"empty nameserver", `{"version":1,"network":{"dns":{"nameservers":[""]}}}`, "nameservers[0]"},
		{"search with space", `{"version":1,"network":{"dns":{"search":["a b"]}}}`, "dns search"},
		{"extra host without addr", `{"version":1,"network":{"extraHosts":[{"name":"db"}]}}`, "no address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRunConfig([]byte(tt.data))
			if !errors.Is(err, ErrBadRunConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("DecodeRunConfig(%s) = %v, want ErrBadRunConfig mentioning %q", tt.data, err, tt.wantErr)
			}
		})
	}
}

func TestDecodeRunConfig_TooLarge(t *testing.T) {
	data := append([]byte(`{"version":1,"args":["`), bytes.Repeat([]byte("a"), MaxRunConfigSize)...)
	if _, err := DecodeRunConfig(data); !errors.Is(err, ErrBadRunConfig) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("DecodeRunConfig(%d bytes) = %v, want a size error", len(data), err)
	}
}

func TestRunConfig_Marshal_Validates(t *testing.T) {
	_, err := RunConfig{Version: RunConfigVersion, Args: []string{"\xff"}}.Marshal()
	if !errors.Is(err, ErrBadRunConfig) || !strings.Contains(err.Error(), "not UTF-8") {
		t.Errorf("Marshal = %v, want a UTF-8 error: JSON would silently replace the byte", err)
	}
}

// FuzzDecodeRunConfig checks that no input panics the decoder, and that
// what it accepts encodes to something it reads back the same.
func FuzzDecodeRunConfig(f *testing.F) {
	full, _ := fullRunConfig().Marshal()
	f.Add(full)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"entrypoint":[],"args":["a"],"env":["K"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeRunConfig(data)
		if err != nil {
			return
		}
		once, err := c.Marshal()
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", data, err)
		}
		again, err := DecodeRunConfig(once)
		if err != nil {
			t.Fatalf("cannot decode own encoding %s: %v", once, err)
		}
		twice, err := again.Marshal()
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("encoding not stable:\n%s\n%s (%v)", once, twice, err)
		}
	})
}
