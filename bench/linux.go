package main

func init() { register(suite{name: "linux", run: runLinux}) }

// runLinux stands for the Linux boot figures (kernel start to init, to
// power-off): they need a KVM on hardware virtualization, which the
// doctor detects. Until the suite exists it says why it has no values.
func runLinux(e *Env) ([]Result, error) {
	r := Result{Suite: "linux", Metric: "Linux boot to init on hardware virtualization", Unit: "ms", PeerName: peerMicrovm}
	if e.Doctor.LinuxGuests {
		r.Note = "not measured yet: this host can boot Linux (" + e.Doctor.LinuxGuestsReason + "), but the suite is still a stub"
	} else {
		r.Note = "skipped: Linux cannot boot on this host: " + e.Doctor.LinuxGuestsReason
	}
	return []Result{r}, nil
}
