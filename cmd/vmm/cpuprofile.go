//go:build !vmm_pprof

package main

import "errors"

// startCPUProfile refuses: the profiler (runtime/pprof and its gzip
// writer) is left out of the VM process, where every linked package costs
// start-up time and resident memory in each VM. Build with -tags vmm_pprof
// (make build-pprof) to profile.
func startCPUProfile(string) (func(), error) {
	return nil, errors.New("this vmm was built without the CPU profiler; build one with `make build-pprof` (go build -tags vmm_pprof ./cmd/vmm)")
}
