package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/vmm-dev/vmm/vmm"
	"github.com/vmm-dev/vmm/vmm/doctor"
)

func doctorFlags(stderr io.Writer) (*pflag.FlagSet, *bool) {
	fs := pflag.NewFlagSet("doctor", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON, for scripts")
	return fs, asJSON
}

// runDoctor prints what this host can do. It exits 0 when micro-guests can
// run (the host is usable), 1 when it cannot run any guest.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs, asJSON := doctorFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "vmm doctor: %v\n", err)
		return vmm.StatusUsage
	}
	r := doctor.Check(doctor.LocalHost())
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			fmt.Fprintf(stderr, "vmm doctor: %v\n", err)
			return vmm.StatusSetupError
		}
	} else {
		printReport(stdout, r)
	}
	if !r.MicroGuests {
		return vmm.StatusSetupError
	}
	return 0
}

func printReport(w io.Writer, r doctor.Report) {
	mark := map[doctor.Level]string{doctor.OK: "ok  ", doctor.Warn: "warn", doctor.Fail: "FAIL"}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "[%s] %s\n", mark[f.Level], f.Text)
	}
	virt := r.Virtualization
	if r.HypervisorModule != "" {
		virt += " (" + r.HypervisorModule + ")"
	}
	fmt.Fprintf(w, "\nvirtualization: %s\n", virt)
	fmt.Fprintf(w, "micro-guests:   %s\n", yesNo(r.MicroGuests))
	fmt.Fprintf(w, "Linux guests:   %s: %s\n", yesNo(r.LinuxGuests), r.LinuxGuestsReason)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
