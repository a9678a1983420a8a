package workload

import (
	"strings"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// DefaultPath is PATH when neither the image nor the run sets it
// (docker's oci.DefaultPathEnv for Linux).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// resolveEnv builds the environment as docker does. The daemon starts
// from PATH, HOSTNAME and, with a TTY, TERM=xterm (CreateDaemonEnvironment);
// lays over them the run's variables and then the image's that the run
// does not set (merge), replacing in place and appending new names; and
// runc sets HOME from the user's passwd entry when it is unset or empty.
// A bare "K" unsets K. Where docker would keep a name twice (the same name
// given twice with -e), the later value wins at the first one's place:
// what a shell's export does, and what getenv should see.
func resolveEnv(cfg protocol.RunConfig, hostname, home string) []string {
	var e envList
	e.set("PATH", DefaultPath)
	e.set("HOSTNAME", hostname)
	if cfg.TTY {
		e.set("TERM", "xterm")
	}
	runNames := map[string]bool{}
	for _, kv := range cfg.Env {
		name, _, _ := strings.Cut(kv, "=")
		runNames[name] = true
		e.apply(kv)
	}
	for _, kv := range cfg.Image.Env {
		if name, _, _ := strings.Cut(kv, "="); !runNames[name] {
			e.apply(kv)
		}
	}
	if v, ok := e.get("HOME"); !ok || v == "" {
		e.set("HOME", home)
	}
	return e.list()
}

// envList is an environment that keeps its order and one value per name.
type envList struct {
	names  []string
	values map[string]string
}

func (e *envList) set(name, value string) {
	if e.values == nil {
		e.values = map[string]string{}
	}
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

func (e *envList) get(name string) (string, bool) {
	v, ok := e.values[name]
	return v, ok
}

// apply sets "K=V" or unsets a bare "K".
func (e *envList) apply(kv string) {
	name, value, ok := strings.Cut(kv, "=")
	if ok {
		e.set(name, value)
		return
	}
	if _, ok := e.values[name]; ok {
		delete(e.values, name)
		for i, n := range e.names {
			if n == name {
				e.names = append(e.names[:i], e.names[i+1:]...)
				break
			}
		}
	}
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.values[n])
	}
	return out
}

// envValue returns name's value in env, the last one if there are more.
func envValue(env []string, name string) string {
	var v string
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}
