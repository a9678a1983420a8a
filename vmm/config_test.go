package vmm

import (
	"errors"
	"strings"
	"testing"
)

// TestConfig_ValidateLimits: every limit validate checks accepts its
// bound and refuses one past it, with ErrConfig and a message that names
// the value and what to give instead. docs/security.md's "Resource
// limits" table points here.
func TestConfig_ValidateLimits(t *testing.T) {
	nics := func(n int) []NIC {
		out := make([]NIC, n)
		for i := range out {
			out[i] = NIC{Socket: "/run/sw.sock"}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" for a valid Config
	}{
		{"memory at the minimum", func(c *Config) { c.MemoryBytes = MinMemory }, ""},
		{"memory below the minimum", func(c *Config) { c.MemoryBytes = MinMemory - MemoryPage }, "memory 16380K is below the 16M minimum: give at least 16M"},
		{"no memory", func(c *Config) { c.MemoryBytes = 0 }, "memory 0 is below the 16M minimum"},
		{"memory at the maximum", func(c *Config) { c.MemoryBytes = MaxMemory }, ""},
		{"memory above the maximum", func(c *Config) { c.MemoryBytes = MaxMemory + MemoryPage }, "is above the 1T maximum: give at most 1T"},
		{"memory in whole pages", func(c *Config) { c.MemoryBytes = 64<<20 + MemoryPage }, ""},
		{"memory not in whole pages", func(c *Config) { c.MemoryBytes = 1395864371 }, // --memory 1.3G
			"memory 1395864371 is not a whole number of 4K pages: give a multiple of 4K, such as 1332M"},
		{"one CPU", func(c *Config) { c.CPUs = 1 }, ""},
		{"no CPUs", func(c *Config) { c.CPUs = 0 }, "0 CPUs; give 1 to 254"},
		{"negative CPUs", func(c *Config) { c.CPUs = -1 }, "-1 CPUs; give 1 to 254"},
		{"CPUs at the maximum", func(c *Config) { c.CPUs = MaxCPUs }, ""},
		{"CPUs past the maximum", func(c *Config) { c.CPUs = MaxCPUs + 1 }, "255 CPUs; give 1 to 254"},
		{"disks at the maximum", func(c *Config) { c.Disks = make([]Disk, MaxDisks) }, ""},
		{"disks past the maximum", func(c *Config) { c.Disks = make([]Disk, MaxDisks+1) }, "17 disks; give at most 16"},
		{"NICs at the maximum", func(c *Config) { c.NICs = nics(MaxNICs) }, ""},
		{"NICs past the maximum", func(c *Config) { c.NICs = nics(MaxNICs + 1) }, "9 network devices; give at most 8"},
		{"ports at the maximum", func(c *Config) { c.Ports = make([]Port, MaxPorts) }, ""},
		{"ports past the maximum", func(c *Config) { c.Ports = make([]Port, MaxPorts+1) }, "32 console ports; give at most 31"},
		{"no kernel", func(c *Config) { c.Kernel = "" }, "no kernel given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Kernel: "bzImage", MemoryBytes: 64 << 20, CPUs: 1}
			tc.edit(&c)
			err := c.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validate: %v, want nil", err)
			case tc.want != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validate: %v, want ErrConfig and %q", err, tc.want)
			}
		})
	}
}

func TestCheckVCPULimit(t *testing.T) {
	for _, tc := range []struct {
		cpus, max int
		ok        bool
	}{{4, 0, true}, {4, 4, true}, {5, 4, false}, {254, 1024, true}} {
		err := checkVCPULimit(tc.cpus, tc.max)
		if (err == nil) != tc.ok || (err != nil && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "give at most 4"))) {
			t.Errorf("checkVCPULimit(%d, %d) = %v", tc.cpus, tc.max, err)
		}
	}
}
