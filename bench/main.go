// Command bench measures vmm side by side with QEMU on this host: see
// docs/benchmarks.md. Run it with `make bench`.
package main

func main() {}
