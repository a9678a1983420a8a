package net

import "testing"

func TestTunOffloads(t *testing.T) {
	tests := []struct {
		features uint64
		want     int
	}{
		{0, 0},
		{FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureGuestECN, 0}, // nothing without GUEST_CSUM
		{FeatureGuestCsum, tunFCsum},
		{FeatureGuestCsum | FeatureGuestTSO4, tunFCsum | tunFTSO4},
		{FeatureGuestCsum | FeatureGuestTSO6 | FeatureGuestECN, tunFCsum | tunFTSO6 | tunFTSOECN},
		{FeatureGuestCsum | FeatureGuestECN, tunFCsum}, // the kernel refuses ECN without TSO
		{FeatureGuestCsum | FeatureHostTSO4 | FeatureCsum | FeatureMrgRxbuf, tunFCsum},
	}
	for _, tt := range tests {
		if got := tunOffloads(tt.features); got != tt.want {
			t.Errorf("tunOffloads(%#x) = %#x, want %#x", tt.features, got, tt.want)
		}
	}
}

func TestValidIfName(t *testing.T) {
	for name, want := range map[string]bool{
		"tap0": true, "a": true, "tap%d": true, "123456789012345": true,
		"": false, "1234567890123456": false, ".": false, "..": false,
		"a/b": false, "a:b": false, "a b": false, "a\tb": false, "a\x00": false,
	} {
		if got := ValidIfName(name); got != want {
			t.Errorf("ValidIfName(%q) = %v, want %v", name, got, want)
		}
	}
}
