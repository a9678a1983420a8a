package vmlinux

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"testing"
)

// TestExtractVmlinux_KernelBuildTools compresses with the command lines
// arch/x86/boot/compressed/Makefile (and scripts/xz_wrap.sh) use, reading
// from a pipe as the build does, when those tools are installed.
func TestExtractVmlinux_KernelBuildTools(t *testing.T) {
	data := append(compressible(100<<10), callsAndJumps(200<<10)...)
	tests := []struct {
		format Compression
		argv   []string
	}{
		{CompressionGzip, []string{"gzip", "-n", "-f", "-9"}},
		{CompressionLZ4, []string{"lz4", "-l", "-9", "-c", "-"}},
		{CompressionZstd, []string{"zstd", "-22", "--ultra", "-c", "-"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			if _, err := exec.LookPath(tt.argv[0]); err != nil {
				t.Skip(err)
			}
			cmd := exec.Command(tt.argv[0], tt.argv[1:]...)
			cmd.Stdin = bytes.NewReader(data)
			payload, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			if tt.format != CompressionGzip {
				payload = binary.LittleEndian.AppendUint32(payload, uint32(len(data))) // size_append
			}
			got, err := extractBytes(wrapPayload(payload), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("decoded bytes differ")
			}
		})
	}
}

// callsAndJumps is x86-like code: near calls and jumps (E8/E9 rel32) with
// small displacements, the instructions x86 BCJ rewrites, among filler.
func callsAndJumps(n int) []byte {
	b := make([]byte, 0, n+8)
	x := uint32(7)
	for len(b) < n {
		x = x*1664525 + 1013904223
		rel := int32(x>>8)%0x20000 - 0x10000
		b = append(b, 0xE8|byte(x&1))
		b = binary.LittleEndian.AppendUint32(b, uint32(rel))
		b = append(b, make([]byte, x>>28)...)
	}
	return b[:n]
}
