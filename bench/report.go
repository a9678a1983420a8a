package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// goal is an issue's target for one metric; zero fields do not apply.
type goal struct {
	Max      float64 // vmm's median at most this (times, sizes)
	Min      float64 // vmm's median at least this (rates)
	MaxRatio float64 // vmm's median at most this times the peer's
	MinRatio float64 // vmm's median at least this times the peer's
}

// ratio is the goal's ratio to the peer, if it has one: what the plot marks.
func (g goal) ratio() float64 { return max(g.MaxRatio, g.MinRatio) }

// text says the goal in the metric's unit, e.g. "≤ 5 ms and ≤ 0.2 × peer".
func (g goal) text(unit string) string {
	var parts []string
	if g.Max != 0 {
		parts = append(parts, fmt.Sprintf("≤ %g %s", g.Max, unit))
	}
	if g.Min != 0 {
		parts = append(parts, fmt.Sprintf("≥ %g %s", g.Min, unit))
	}
	if g.MaxRatio != 0 {
		parts = append(parts, fmt.Sprintf("≤ %g × peer", g.MaxRatio))
	}
	if g.MinRatio != 0 {
		parts = append(parts, fmt.Sprintf("≥ %g × peer", g.MinRatio))
	}
	return strings.Join(parts, " and ")
}

// met says whether r's medians meet the goal; nil when vmm has no values.
// A ratio the peer cannot give (no peer values) counts as not met.
func (g goal) met(r Result) *bool {
	if len(r.VMM.Values) == 0 {
		return nil
	}
	v := r.VMM.Median()
	ok := (g.Max == 0 || v <= g.Max) && (g.Min == 0 || v >= g.Min)
	if g.MaxRatio != 0 {
		ok = ok && len(r.Peer.Values) > 0 && r.Ratio() <= g.MaxRatio
	}
	if g.MinRatio != 0 {
		ok = ok && len(r.Peer.Values) > 0 && r.Ratio() >= g.MinRatio
	}
	return &ok
}

// setGoal records g as r's target and whether r meets it.
func (r *Result) setGoal(g goal) {
	r.Target = g.text(r.Unit)
	r.Met = g.met(*r)
	r.goal = g
}

// Report is everything one run of the program found.
type Report struct {
	Machine Machine  `json:"machine"`
	Runs    int      `json:"runs"`
	Results []Result `json:"results"`
}

// formatValue gives three significant figures or so: 1234, 56.7, 8.91, 0.123.
func formatValue(v float64) string {
	switch a := max(v, -v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1 || a == 0:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// formatSample is "median (min–max) unit", or "—" for no values.
func formatSample(s Sample, unit string) string {
	if len(s.Values) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s (%s–%s) %s", formatValue(s.Median()), formatValue(s.Min()), formatValue(s.Max()), unit)
}

// formatRatio is "ratio× (low–high)" with RatioInterval's 95% interval,
// or the ratio alone when there is no interval.
func formatRatio(r Result) string {
	q := r.Ratio()
	if q == 0 {
		return "—"
	}
	if lo, hi, ok := r.RatioInterval(); ok {
		return fmt.Sprintf("%s× (%s–%s)", formatValue(q), formatValue(lo), formatValue(hi))
	}
	return formatValue(q) + "×"
}

func formatMet(m *bool) string {
	switch {
	case m == nil:
		return "—"
	case *m:
		return "yes"
	default:
		return "no"
	}
}

// row is one result as the table's cells, and the note that goes under the
// table (a skipped metric's reason).
func row(r Result) (cells []string, note string) {
	metric := r.Suite + ": " + r.Metric
	if len(r.VMM.Values) == 0 && r.Note != "" {
		return []string{metric, "skipped (see notes)", "—", "—", "—", "—"}, r.Note
	}
	peer := formatSample(r.Peer, r.Unit)
	if r.PeerName != "" && len(r.Peer.Values) > 0 {
		peer = r.PeerName + ": " + peer
	}
	target := r.Target
	if target == "" {
		target = "—"
	}
	return []string{metric, formatSample(r.VMM, r.Unit), peer, formatRatio(r), target, formatMet(r.Met)}, r.Note
}

var header = []string{"metric", "vmm median (min–max)", "peer median (min–max)", "vmm/peer (95% interval)", "target", "met"}

func (rep Report) machineLines() []string {
	m := rep.Machine
	return []string{
		fmt.Sprintf("machine: %s, %d cores; %s; KVM: %s", m.CPU, m.Cores, m.Kernel, m.KVM),
		fmt.Sprintf("peer: %s; %s; %d runs per side after one warm-up, vmm and peer alternating", m.QEMU, m.Date, rep.Runs),
	}
}

// Text is the report for a terminal: the machine, then an aligned table,
// then notes.
func (rep Report) Text() string {
	var b strings.Builder
	for _, l := range rep.machineLines() {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	var notes []string
	for _, r := range rep.Results {
		cells, note := row(r)
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
		if note != "" {
			notes = append(notes, r.Suite+": "+r.Metric+": "+note)
		}
	}
	tw.Flush()
	writeNotes(&b, notes)
	return b.String()
}

// Markdown is the same report as a markdown table, for docs/benchmarks.md.
func (rep Report) Markdown() string {
	var b strings.Builder
	for _, l := range rep.machineLines() {
		b.WriteString(l + "  \n")
	}
	b.WriteString("\n| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(header)) + "\n")
	var notes []string
	for _, r := range rep.Results {
		cells, note := row(r)
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		if note != "" {
			notes = append(notes, r.Suite+": "+r.Metric+": "+note)
		}
	}
	writeNotes(&b, notes)
	return b.String()
}

func writeNotes(b *strings.Builder, notes []string) {
	if len(notes) == 0 {
		return
	}
	b.WriteString("\nNotes:\n\n")
	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}
}
