package main

import "unsafe"

// hostAddr is where mem starts in this process, for KVM's memory slot.
func hostAddr(mem []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&mem[0]))) }
