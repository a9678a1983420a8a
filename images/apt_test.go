package images

import "testing"

func TestParseKernelDepends(t *testing.T) {
	tests := []struct {
		stanza string
		want   DebPackage
	}{
		{"Package: linux-image-cloud-amd64\nDepends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)\n",
			DebPackage{"linux-image-6.1.0-56-cloud-amd64", "6.1.192-2"}},
		{"Depends: kmod, linux-image-6.12.9-cloud-amd64 (= 6.12.9-1~bpo12+1), foo\n",
			DebPackage{"linux-image-6.12.9-cloud-amd64", "6.12.9-1~bpo12+1"}},
		{"Pre-Depends: linux-image-x (= 1)\nDepends: kmod\n", DebPackage{}},
		{"Depends: linux-image-6.1.0-56-cloud-amd64\n", DebPackage{}},
	}
	for _, tt := range tests {
		got, err := parseKernelDepends([]byte(tt.stanza))
		if got != tt.want || (err == nil) != (tt.want != DebPackage{}) {
			t.Errorf("parseKernelDepends(%q) = %+v, %v; want %+v", tt.stanza, got, err, tt.want)
		}
	}
}

func TestErrorLines_KeepsAptErrorsOnly(t *testing.T) {
	stderr := "W: Download is performed unsandboxed as root\nE: Failed to fetch http://x  Could not connect\n"
	if got, want := errorLines(stderr), "E: Failed to fetch http://x  Could not connect"; got != want {
		t.Errorf("errorLines = %q, want %q", got, want)
	}
	if got := errorLines("plain failure\n"); got != "plain failure" {
		t.Errorf("errorLines without E: lines = %q, want the text", got)
	}
}
