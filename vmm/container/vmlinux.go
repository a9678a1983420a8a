package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/vmm-dev/vmm/boot"
	"github.com/vmm-dev/vmm/vmm"
)

// The host-side kernel decompression of the software-KVM profile
// (vmm.Profile.HostDecompress) runs in vmm-images, `vmm-images vmlinux
// KERNEL`, which keeps the decompressed kernel in its cache: the VM
// process links none of the decoders and reads the cached image straight
// into guest memory.

// VmlinuxReply is what `vmm-images vmlinux KERNEL` writes on its stdout,
// as JSON: the cached vmlinux and its layout, or Error.
type VmlinuxReply struct {
	Image  string        `json:",omitempty"`
	Layout *boot.Vmlinux `json:",omitempty"`
	Error  string        `json:",omitempty"`
	// Fallback, with Error, says the kernel is not a payload the host can
	// unpack, so the guest must decompress it itself: FallbackCompression
	// or FallbackNoPayload.
	Fallback string `json:",omitempty"`
	// Temporary says Image is not in the cache (it could not be written)
	// but a file of its own, which the VM process removes once open.
	Temporary bool `json:",omitempty"`
}

// The values of VmlinuxReply.Fallback and the boot sentinels they stand for.
const (
	FallbackCompression = "unsupported-compression" // boot.ErrUnsupportedCompression: xz, bzip2, lzma, lzo
	FallbackNoPayload   = "no-payload"              // boot.ErrNoPayload: nothing compressed, as in micro-guests
)

// NewVmlinuxReply is the reply for vmlinux.Cache's results.
func NewVmlinuxReply(image string, layout *boot.Vmlinux, err error) VmlinuxReply {
	if err == nil {
		return VmlinuxReply{Image: image, Layout: layout}
	}
	r := VmlinuxReply{Error: err.Error()}
	switch {
	case errors.Is(err, boot.ErrUnsupportedCompression):
		r.Fallback = FallbackCompression
	case errors.Is(err, boot.ErrNoPayload):
		r.Fallback = FallbackNoPayload
	}
	return r
}

// err is the reply's error, word for word, with Fallback mapped back to
// its boot sentinel for errors.Is.
func (r VmlinuxReply) err() error {
	if r.Error == "" {
		return nil
	}
	switch r.Fallback {
	case FallbackCompression:
		return &replyError{msg: r.Error, is: boot.ErrUnsupportedCompression}
	case FallbackNoPayload:
		return &replyError{msg: r.Error, is: boot.ErrNoPayload}
	}
	return errors.New(r.Error)
}

// replyError is an error from vmm-images that unwraps to the sentinel its
// reply named.
type replyError struct {
	msg string
	is  error
}

func (e *replyError) Error() string { return e.msg }
func (e *replyError) Unwrap() error { return e.is }

// HostVmlinux is a vmm.Config.Vmlinux: it asks vmm-images (FindTool's) for
// the decompressed kernel of the bzImage at kernelPath and opens the
// cached image; the returned function closes it. boot.Load checks the
// layout against the image as opened. A bzImage without a payload (a
// micro-guest) is answered boot.ErrNoPayload here, without running
// vmm-images; a missing vmm-images is vmm.ErrHostDecompressUnavailable.
func HostVmlinux(kernelPath string) (*boot.Vmlinux, func(), error) {
	if err := checkPayload(kernelPath); err != nil {
		return nil, nil, err
	}
	tool, err := FindTool()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", vmm.ErrHostDecompressUnavailable, err)
	}
	return runVmlinux(context.Background(), tool, kernelPath)
}

// checkPayload returns boot.ErrNoPayload for a bzImage whose header
// locates no compressed kernel, and ParseHeader's error for a file that is
// no bzImage.
func checkPayload(kernelPath string) error {
	f, err := os.Open(kernelPath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h, err := boot.ParseHeader(f, st.Size())
	if err != nil {
		return err
	}
	if h.PayloadLength == 0 {
		return boot.ErrNoPayload
	}
	return nil
}

// maxVmlinuxReply bounds the reply read: a real one is a few hundred bytes.
const maxVmlinuxReply = 64 << 10

// runVmlinux runs `tool vmlinux KERNEL` and opens the image it names.
func runVmlinux(ctx context.Context, tool, kernelPath string) (*boot.Vmlinux, func(), error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, "vmlinux", "--", kernelPath)
	cmd.Stdout = &out
	// Its warnings (a cache it could not use) are the user's to see.
	cmd.Stderr = io.MultiWriter(&stderr, os.Stderr)
	runErr := cmd.Run()
	var reply VmlinuxReply
	if out.Len() > maxVmlinuxReply {
		return nil, nil, fmt.Errorf("%s vmlinux: reply of %d bytes, over the %d limit", tool, out.Len(), maxVmlinuxReply)
	}
	if err := json.Unmarshal(out.Bytes(), &reply); err != nil {
		if runErr != nil {
			return nil, nil, fmt.Errorf("%s vmlinux: %w%s", tool, runErr, stderrTail(stderr.String()))
		}
		return nil, nil, fmt.Errorf("%s vmlinux: unreadable reply: %w", tool, err)
	}
	if err := reply.err(); err != nil {
		return nil, nil, err
	}
	if reply.Image == "" || reply.Layout == nil || runErr != nil {
		return nil, nil, fmt.Errorf("%s vmlinux: %v, and no image in the reply", tool, runErr)
	}
	f, err := os.Open(reply.Image)
	if reply.Temporary {
		os.Remove(reply.Image) // the open file keeps it until it is closed
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open the decompressed kernel: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	v := reply.Layout
	v.Image, v.ImageSize = f, st.Size()
	return v, func() { f.Close() }, nil
}

// stderrTail is the last line a failed tool wrote, to name why.
func stderrTail(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return ": " + s
}
