// Command mkbusybox writes the busybox image (Debian's busybox-static in
// one layer) into an OCI image layout, for `vmm run oci-layout:DIR:TAG`:
//
//	go run ./images/busybox/mkbusybox -o out/busybox [-tag latest]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/vmm-dev/vmm/images"
	"github.com/vmm-dev/vmm/images/busybox"
)

func main() {
	out := flag.String("o", "", "OCI layout `directory` to write (created or updated)")
	tag := flag.String("tag", "latest", "the image's `tag` in the layout")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: mkbusybox -o DIR [-tag TAG]")
		os.Exit(2)
	}
	if err := run(*out, *tag); err != nil {
		fmt.Fprintf(os.Stderr, "mkbusybox: %v\n", err)
		os.Exit(1)
	}
}

func run(dir, tag string) error {
	cache, err := images.CacheDir()
	if err != nil {
		return err
	}
	img, err := busybox.Image(context.Background(), cache)
	if err != nil {
		return err
	}
	if err := busybox.WriteLayout(dir, tag, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("oci-layout:%s:%s %s\n", dir, tag, digest)
	return nil
}
