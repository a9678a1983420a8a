package acpi

import (
	"encoding/binary"

	"github.com/vmm-dev/vmm/guestmem"
)

// FADT field offsets (§5.2.9, Table 5.9). Fields we leave zero are listed
// too, so the layout can be read against the spec.
const (
	fadtSignature      = "FACP"
	fadtRevision       = 6
	fadtMinorRevision  = 4 // ACPI 6.4
	fadtLen            = 276
	fadtFirmwareCtrl   = 36 // 32-bit FACS address: zero, X_FIRMWARE_CTRL is used
	fadtDSDT           = 40 // 32-bit DSDT address: zero, X_DSDT is used
	fadtPreferredPM    = 45
	fadtSCIInt         = 46
	fadtSMICmd         = 48 // zero: no SMM, the platform is always in ACPI mode
	fadtPM1aEvtBlk     = 56
	fadtPM1aCntBlk     = 64
	fadtPMTmrBlk       = 76
	fadtPM1EvtLen      = 88
	fadtPM1CntLen      = 89
	fadtPMTmrLen       = 91
	fadtPLvl2Lat       = 96
	fadtPLvl3Lat       = 98
	fadtIAPCBootArch   = 109
	fadtFlags          = 112
	fadtMinor          = 131
	fadtXFirmwareCtrl  = 132
	fadtXDSDT          = 140
	fadtXPM1aEvtBlk    = 148
	fadtXPM1aCntBlk    = 172
	fadtXPMTmrBlk      = 208
	fadtHypervisorID   = 268
	fadtHypervisorName = "VMM-DEV "
)

const (
	// C2 and C3 latencies above these say the state is not supported.
	noC2Latency = 101
	noC3Latency = 1001
)

// FADT fixed feature flags (§5.2.9, Table 5.10).
const (
	fadtFlagWBINVD    = 1 << 0 // WBINVD works: required of x86 platforms
	fadtFlagProcC1    = 1 << 2 // C1 (HLT) works on every CPU
	fadtFlagPwrButton = 1 << 4 // no fixed-feature power button
	fadtFlagSlpButton = 1 << 5 // no fixed-feature sleep button
	fadtFlagFixRTC    = 1 << 6 // no RTC wake status in PM1
	fadtFlagTmrValExt = 1 << 8 // the PM timer is 32 bits wide
	fadtFlagHWReduced = 1 << 20
	fadtFlagsOurs     = fadtFlagWBINVD | fadtFlagProcC1 | fadtFlagPwrButton | fadtFlagSlpButton | fadtFlagFixRTC | fadtFlagTmrValExt
)

// IA-PC boot architecture flags (§5.2.9.3). LEGACY_DEVICES and 8042 stay
// clear: the i8042 we emulate only carries the reset line, so Linux should
// not probe it for a keyboard. MSI_NOT_SUPPORTED stays clear: virtio-pci
// uses MSI-X. CMOS_RTC_NOT_PRESENT stays clear: the CMOS/RTC is part of
// the design's device set.
const (
	bootArchVGANotPresent = 1 << 2
	bootArchPCIeASPM      = 1 << 4 // OSPM must not enable ASPM: no link to manage
	bootArchOurs          = bootArchVGANotPresent | bootArchPCIeASPM
)

// FADT returns the Fixed ACPI Description Table for cfg, pointing at the
// DSDT and FACS.
//
// It is a full (not hardware-reduced) FADT: the PM1a event and control
// blocks carry SLP_TYP/SLP_EN, the classic power-off path every x86 kernel
// implements, and the PM timer gives the kernel the acpi_pm clocksource to
// calibrate the TSC against. HW_REDUCED_ACPI forbids both (§4.1), so the
// flag stays clear, and the FACS that a full FADT requires is provided.
func FADT(cfg Config, dsdt, facs guestmem.GuestAddr) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, fadtLen-headerLen)
	at := func(off int) []byte { return b[off-headerLen:] }
	binary.LittleEndian.PutUint16(at(fadtSCIInt), uint16(cfg.SCI))
	binary.LittleEndian.PutUint32(at(fadtPM1aEvtBlk), uint32(cfg.PM1aEvt))
	binary.LittleEndian.PutUint32(at(fadtPM1aCntBlk), uint32(cfg.PM1aCnt))
	binary.LittleEndian.PutUint32(at(fadtPMTmrBlk), uint32(cfg.PMTmr))
	at(fadtPM1EvtLen)[0] = PM1EventLen
	at(fadtPM1CntLen)[0] = PM1ControlLen
	at(fadtPMTmrLen)[0] = PMTimerLen
	binary.LittleEndian.PutUint16(at(fadtPLvl2Lat), noC2Latency)
	binary.LittleEndian.PutUint16(at(fadtPLvl3Lat), noC3Latency)
	binary.LittleEndian.PutUint16(at(fadtIAPCBootArch), bootArchOurs)
	binary.LittleEndian.PutUint32(at(fadtFlags), fadtFlagsOurs)
	at(fadtMinor)[0] = fadtMinorRevision
	// Only the 64-bit pointers are set: the spec allows one of each pair.
	binary.LittleEndian.PutUint64(at(fadtXFirmwareCtrl), uint64(facs))
	binary.LittleEndian.PutUint64(at(fadtXDSDT), uint64(dsdt))
	// The 32-bit block addresses and these must agree, or ACPICA warns.
	putGAS(at(fadtXPM1aEvtBlk), cfg.PM1aEvt, PM1EventLen, gasAccessWord)
	putGAS(at(fadtXPM1aCntBlk), cfg.PM1aCnt, PM1ControlLen, gasAccessWord)
	putGAS(at(fadtXPMTmrBlk), cfg.PMTmr, PMTimerLen, gasAccessDWord)
	copy(at(fadtHypervisorID), fadtHypervisorName)
	return sdt(fadtSignature, fadtRevision, b), nil
}
