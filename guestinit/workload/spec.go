package workload

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// Spec is a workload resolved from a run config: everything exec needs.
type Spec struct {
	// Argv is the command; Argv[0] is looked up in the PATH of Env inside
	// the root filesystem when the workload starts.
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	UID  uint32   `json:"uid"`
	GID  uint32   `json:"gid"`
	// Groups is the setgroups(2) list: GID first, then the user's
	// supplementary groups, as docker passes them.
	Groups []uint32 `json:"groups"`
	// Hostname is the name the guest should take.
	Hostname string `json:"hostname"`
	// TTY makes stdin the workload's controlling terminal.
	TTY bool `json:"tty"`
	// OpenStdin connects stdin; without it (and without TTY) the
	// workload reads /dev/null, as docker run without -i.
	OpenStdin bool `json:"openStdin"`
}

// ErrNoCommand is returned when neither an entrypoint nor a command is
// left to run; docker's message is the same.
var ErrNoCommand = errors.New("no command specified")

// Resolve applies docker's rules to cfg. rootfs is the image's root
// filesystem, where users and groups are looked up: os.DirFS("/") once
// guestinit has switched into the image, or RootFS of its directory.
func Resolve(cfg protocol.RunConfig, rootfs fs.FS) (Spec, error) {
	if err := cfg.Validate(); err != nil {
		return Spec{}, err
	}
	argv, err := resolveArgv(cfg)
	if err != nil {
		return Spec{}, err
	}
	userSpec := cfg.User
	if userSpec == "" {
		userSpec = cfg.Image.User
	}
	u, err := LookupUser(rootfs, userSpec)
	if err != nil {
		return Spec{}, err
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = protocol.DefaultHostname
	}
	return Spec{
		Argv:      argv,
		Env:       resolveEnv(cfg, hostname, u.Home),
		Dir:       resolveDir(cfg),
		UID:       u.UID,
		GID:       u.GID,
		Groups:    u.Groups,
		Hostname:  hostname,
		TTY:       cfg.TTY,
		OpenStdin: cfg.Interactive,
	}, nil
}

// resolveArgv is docker's merge of the run's command with the image's
// (daemon mergeAndVerifyConfig): arguments replace Cmd; --entrypoint
// replaces Entrypoint and drops the image's Cmd, so only the arguments
// follow it; an entrypoint of [""] is none.
func resolveArgv(cfg protocol.RunConfig) ([]string, error) {
	entrypoint, cmd := cfg.Image.Entrypoint, cfg.Image.Cmd
	if cfg.Entrypoint != nil {
		entrypoint, cmd = *cfg.Entrypoint, nil
	}
	if len(cfg.Args) > 0 {
		cmd = cfg.Args
	}
	if len(entrypoint) == 1 && entrypoint[0] == "" {
		entrypoint = nil
	}
	argv := append(append([]string{}, entrypoint...), cmd...)
	if len(argv) == 0 {
		return nil, ErrNoCommand
	}
	return argv, nil
}

// resolveDir is -w, else the image's WorkingDir, else /. Validate has
// checked that it is absolute, as docker does.
func resolveDir(cfg protocol.RunConfig) string {
	for _, dir := range []string{cfg.WorkingDir, cfg.Image.WorkingDir} {
		if dir != "" {
			return path.Clean(dir)
		}
	}
	return "/"
}

// String is the command line as a person reads it, for error messages.
func (s Spec) String() string {
	return fmt.Sprintf("%q", s.Argv)
}
