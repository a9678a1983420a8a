// Package pci models conventional PCI as a guest sees it, with no KVM: type-0
// configuration spaces with write masks (PCI Local Bus 3.0 §6.1–§6.2), BARs
// and the sizing protocol (§6.2.5.1), capability lists (§6.7), MSI-X tables
// (§6.8.2), and a host bridge that exposes bus 0 through configuration
// mechanism #1 at ports 0xCF8/0xCFC (§3.2.2.3.2) and optionally ECAM.
//
// Nothing here knows where a device's registers live in the VMM: a Config
// reports where the guest programs its BARs through a callback, and an MSIX
// reports messages to deliver through another; the VMM maps them onto its
// buses and interrupt routes.
//
// Every type locks its own state; callbacks are documented with the locks
// they run under.
package pci
