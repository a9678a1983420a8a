package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/vmm-dev/vmm/images"
	"github.com/vmm-dev/vmm/images/oci"
	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/container"
)

// The image commands work on the local store under the cache directory
// (images.CacheDir()/oci), the one `vmm run` pulls into.

func openImageStore() (*oci.Store, error) {
	cache, err := images.CacheDir()
	if err != nil {
		return nil, err
	}
	return oci.Open(filepath.Join(cache, "oci"))
}

// imageArg parses the one IMAGE argument of pull and rmi.
func imageArg(cmd string, args []string, stderr io.Writer) (oci.Ref, bool) {
	fs := pflag.NewFlagSet(cmd, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return oci.Ref{}, false
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "vmm %s: want one IMAGE, e.g. `vmm %s alpine:3.20`\n", cmd, cmd)
		return oci.Ref{}, false
	}
	ref, err := oci.ParseRef(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "vmm %s: %v\n", cmd, err)
		return oci.Ref{}, false
	}
	return ref, true
}

// runPull fetches IMAGE into the store (re-resolving a tag even if it is
// there already) and prints its digest.
func runPull(args []string, stdout, stderr io.Writer) int {
	ref, ok := imageArg("pull", args, stderr)
	if !ok {
		return vmm.StatusUsage
	}
	store, err := openImageStore()
	if err != nil {
		fmt.Fprintf(stderr, "vmm pull: %v\n", err)
		return vmm.StatusSetupError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	img, err := store.Pull(ctx, ref, oci.Options{Progress: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "vmm pull: %v\n", err)
		return vmm.StatusSetupError
	}
	digest, err := img.Digest()
	if err != nil {
		fmt.Fprintf(stderr, "vmm pull: %v\n", err)
		return vmm.StatusSetupError
	}
	fmt.Fprintf(stdout, "%s %s\n", ref, digest)
	return 0
}

// runImages lists the stored images.
func runImages(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("images", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "vmm images: takes no arguments")
		return vmm.StatusUsage
	}
	store, err := openImageStore()
	if err != nil {
		fmt.Fprintf(stderr, "vmm images: %v\n", err)
		return vmm.StatusSetupError
	}
	entries, err := store.List()
	if err != nil {
		fmt.Fprintf(stderr, "vmm images: %v\n", err)
		return vmm.StatusSetupError
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE\tCREATED")
	for _, e := range entries {
		created := "-"
		if !e.Created.IsZero() {
			created = e.Created.UTC().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Ref, container.ShortDigest(e.Digest.String()), vmm.FormatSize(uint64(e.Size)), created)
	}
	tw.Flush()
	return 0
}

// runRmi removes IMAGE's tag from the store; blobs no other image uses go
// with it.
func runRmi(args []string, stdout, stderr io.Writer) int {
	ref, ok := imageArg("rmi", args, stderr)
	if !ok {
		return vmm.StatusUsage
	}
	store, err := openImageStore()
	if err != nil {
		fmt.Fprintf(stderr, "vmm rmi: %v\n", err)
		return vmm.StatusSetupError
	}
	if err := store.Remove(ref); err != nil {
		fmt.Fprintf(stderr, "vmm rmi: %v\n", err)
		return vmm.StatusSetupError
	}
	fmt.Fprintf(stdout, "removed %s\n", ref)
	return 0
}
