// Command mkguest builds one micro-guest into a bzImage:
//
//	go run ./internal/microguest/mkguest -o hello.bzImage hello
//
// then boot it with: vmm boot --kernel hello.bzImage
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmm-dev/vmm/internal/microguest"
)

func main() {
	out := flag.String("o", "", "output bzImage path (default NAME.bzImage)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: mkguest [-o FILE] NAME\nguests: %s\n", strings.Join(microguest.Guests(), ", "))
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(flag.Arg(0), *out); err != nil {
		fmt.Fprintf(os.Stderr, "mkguest: %v\n", err)
		os.Exit(1)
	}
}

// build builds into a scratch directory next to the output, then renames,
// so a failed build never leaves a half-written image behind.
func build(name, out string) error {
	if out == "" {
		out = name + ".bzImage"
	}
	dir, err := os.MkdirTemp(filepath.Dir(out), ".mkguest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path, err := microguest.Build(name, dir)
	if err != nil {
		return err
	}
	return os.Rename(path, out)
}
