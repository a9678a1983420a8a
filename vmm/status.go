package vmm

// Exit statuses of the vmm process, one per way a VM run can end. The e2e
// tests and scripts branch on them, so they are part of the CLI contract.
const (
	StatusGuestOff      = 0   // guest powered off or reset (i8042, ACPI): a clean end
	StatusSetupError    = 1   // the VMM could not build or start the machine
	StatusUsage         = 2   // bad command line
	StatusTripleFault   = 3   // KVM_EXIT_SHUTDOWN: the guest triple-faulted
	StatusInternalError = 4   // KVM_EXIT_INTERNAL_ERROR, e.g. an instruction KVM could not emulate
	StatusFailEntry     = 5   // KVM_EXIT_FAIL_ENTRY: hardware refused the guest state
	StatusVMMError      = 6   // the VMM failed while the guest ran (KVM_RUN error, unexpected exit)
	StatusGuestPanic    = 7   // the guest kernel panicked ("Kernel panic - not syncing" on its console)
	StatusInterrupted   = 130 // stopped by SIGINT (128+2)
	StatusTerminated    = 143 // stopped by SIGTERM (128+15)
)
