package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// RunConfigVersion is the RunConfig layout this package writes and reads.
// The host and the guestinit in its initramfs come from one build, so a
// different version means a stale cached initramfs: decoding refuses it
// rather than guess.
const RunConfigVersion = 1

// RunConfigPath is where the host puts the encoded RunConfig: a file in
// the per-run cpio appended to the cached initramfs. guestinit runs a
// workload when the file exists.
const RunConfigPath = "/vmm/run.json"

// MaxRunConfigSize bounds what DecodeRunConfig accepts. Linux limits one
// execve's argv and environment together to a few MiB; a config larger
// than this could not start its workload anyway.
const MaxRunConfigSize = 4 << 20

// DefaultHostname is the guest's hostname when RunConfig.Hostname is empty.
const DefaultHostname = "vmm"

// ErrBadRunConfig marks a run config that guestinit cannot use.
var ErrBadRunConfig = errors.New("bad run config")

// RunConfig is what `vmm run` tells guestinit about one run: the image's
// own config and the command line's overrides of it. guestinit applies
// docker's rules to the two (package guestinit/workload); the host only
// resolves what needs the host, such as -e K taking K from its
// environment, so every value here is final.
type RunConfig struct {
	Version int         `json:"version"`
	Image   ImageConfig `json:"image"`

	// Args are the arguments after the image name; when there are any they
	// replace the image's Cmd.
	Args []string `json:"args,omitempty"`
	// Entrypoint is --entrypoint; nil when it was not given. Given, it
	// replaces the image's Entrypoint and drops the image's Cmd. An empty
	// list (or docker's [""]) means no entrypoint.
	Entrypoint *[]string `json:"entrypoint,omitempty"`
	// Env is --env-file's entries, then -e's, in order, as docker sends
	// them. "K=V" sets K; a bare "K" (from -e K when the host has no K)
	// unsets K, as docker does.
	Env []string `json:"env,omitempty"`
	// WorkingDir is -w; it must be absolute.
	WorkingDir string `json:"workingDir,omitempty"`
	// User is -u: uid, uid:gid, name or name:group, looked up in the
	// image's /etc/passwd and /etc/group.
	User string `json:"user,omitempty"`
	// Hostname is --hostname, or a name the host picked (docker uses the
	// container id's first 12 hex digits); empty means DefaultHostname.
	Hostname string `json:"hostname,omitempty"`
	TTY      bool   `json:"tty,omitempty"` // -t
	// Terminal is the host terminal's size when it is known at start, for
	// -t; later changes come as winsize control messages.
	Terminal    *TerminalSize `json:"terminal,omitempty"`
	Interactive bool          `json:"interactive,omitempty"` // -i: keep stdin open
	// Network is the guest's network; nil when it has none (--network none).
	Network *NetworkConfig `json:"network,omitempty"`
}

// TerminalSize is a terminal's size in character cells.
type TerminalSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// ImageConfig is the part of an OCI image config ("config" in
// application/vnd.oci.image.config.v1+json) a run uses. The JSON names
// are the OCI ones, so the image's config object decodes into it directly.
type ImageConfig struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	// Env entries are "K=V"; a bare "K" unsets K, as docker treats it.
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	User       string   `json:"User,omitempty"`
}

// NetworkConfig is the guest's network as /etc/hosts and resolv.conf need
// it; the interface itself is configured by guestinit's network setup.
type NetworkConfig struct {
	Interface  string       `json:"interface,omitempty"` // default DefaultInterface
	Addr       netip.Prefix `json:"addr,omitzero"`       // the guest's address and prefix length
	Gateway    netip.Addr   `json:"gateway,omitzero"`
	DNS        DNSConfig    `json:"dns,omitzero"`
	ExtraHosts []HostEntry  `json:"extraHosts,omitempty"` // --add-host
}

// Marshal validates c and encodes it for RunConfigPath.
func (c RunConfig) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(c, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRunConfig, err)
	}
	return append(b, '\n'), nil
}

// DecodeRunConfig reads a config that Marshal wrote. Unknown fields and
// trailing data are errors: the two sides come from one build, so either
// is corruption, not a newer writer.
func DecodeRunConfig(data []byte) (RunConfig, error) {
	if len(data) > MaxRunConfigSize {
		return RunConfig{}, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRunConfig, len(data), MaxRunConfigSize)
	}
	// The version comes first, so a config from another build is reported
	// as that rather than as whichever field it added.
	var v struct {
		Version int `json:"version"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&v); err != nil {
		return RunConfig{}, fmt.Errorf("%w: %v", ErrBadRunConfig, err)
	}
	if v.Version != RunConfigVersion {
		return RunConfig{}, fmt.Errorf("%w: version %d, guestinit reads version %d (is the initramfs stale?)",
			ErrBadRunConfig, v.Version, RunConfigVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c RunConfig
	if err := dec.Decode(&c); err != nil {
		return RunConfig{}, fmt.Errorf("%w: %v", ErrBadRunConfig, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return RunConfig{}, fmt.Errorf("%w: data after the config", ErrBadRunConfig)
	}
	if err := c.Validate(); err != nil {
		return RunConfig{}, err
	}
	return c, nil
}
