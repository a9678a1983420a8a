// Package vmlinux turns a bzImage into the kernel proper, on the host: it
// decompresses the payload (Extract), reads the vmlinux ELF's layout
// (Parse) and keeps both in a content-keyed cache (Cache), so a second
// boot of the same kernel skips the work. vmm-images runs it for the
// software-KVM profile (vmm.Profile.HostDecompress); the VM process only
// reads the cached image and its boot.Vmlinux layout, and never links this
// package's decoders (compress/gzip, zstd, LZ4, debug/elf).
package vmlinux
