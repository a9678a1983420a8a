// Command bench measures vmm side by side with QEMU on this host: see
// docs/benchmarks.md. Run it with `make bench`.
//
//	go run ./bench [-runs N] [-only SUITE,...] [-json] [-markdown FILE] [-plot FILE.png] [-vmm PATH]
//
// Every figure is one warm-up, then vmm and its peer alternately, N runs
// each, so drift on the host (other work, caches) falls on both sides alike.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

// suite is one group of measurements. Each suite's file registers it in an
// init function with register.
type suite struct {
	name string
	run  func(*Env) ([]Result, error)
	// baseline: the suite can compare with another vmm build
	// (-baseline) instead of QEMU.
	baseline bool
}

// suites holds the registered suites; main sorts them by suiteOrder. It is
// written only by init functions.
var suites []suite

func register(s suite) { suites = append(suites, s) }

// suiteOrder is the report's order; suites not listed come after, by name.
var suiteOrder = []string{"start-up", "memory", "burst", "exits", "virtio-blk", "virtio-net", "virtio-blk-model", "virtio-net-model", "linux"}

func orderedSuites() []suite {
	s := slices.Clone(suites)
	rank := func(name string) int {
		if i := slices.Index(suiteOrder, name); i >= 0 {
			return i
		}
		return len(suiteOrder)
	}
	slices.SortStableFunc(s, func(a, b suite) int {
		if d := rank(a.name) - rank(b.name); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	return s
}

// baselineSuites keeps the suites that can compare two vmm builds; named
// in -only, one that cannot is an error.
func baselineSuites(todo []suite, named bool) ([]suite, error) {
	var out []suite
	for _, s := range todo {
		switch {
		case s.baseline:
			out = append(out, s)
		case named:
			return nil, fmt.Errorf("suite %s compares vmm with QEMU only; -baseline works with start-up, exits, virtio-blk and virtio-net", s.name)
		}
	}
	return out, nil
}

// selectSuites keeps the suites named in only (comma-separated; empty keeps
// all) and fails on a name that is not a suite.
func selectSuites(all []suite, only string) ([]suite, error) {
	if only == "" {
		return all, nil
	}
	var out []suite
	for _, name := range strings.Split(only, ",") {
		i := slices.IndexFunc(all, func(s suite) bool { return s.name == name })
		if i < 0 {
			names := make([]string, len(all))
			for j, s := range all {
				names[j] = s.name
			}
			return nil, fmt.Errorf("no suite %q (have %s)", name, strings.Join(names, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

const minRuns = 5

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	opts := Options{}
	flag.IntVar(&opts.Runs, "runs", minRuns, "runs of each side per figure, after one warm-up (at least 5)")
	flag.IntVar(&opts.Burst, "burst", 20, "VMs started at once by the burst suite")
	flag.StringVar(&opts.VMM, "vmm", "", "vmm binary to measure (default: build bin/vmm from this checkout)")
	flag.StringVar(&opts.QEMU, "qemu", "", "QEMU binary (default: qemu-system-x86_64 on PATH)")
	flag.StringVar(&opts.Baseline, "baseline", "", "compare with this vmm `binary` instead of QEMU, in start-up, exits, virtio-blk and virtio-net only; -vmm's own binary gives the noise floor of a ratio")
	only := flag.String("only", "", "run only these suites, comma-separated")
	asJSON := flag.Bool("json", false, "print the results as JSON instead of a table")
	markdown := flag.String("markdown", "", "also write the report as a markdown table to `FILE`")
	plot := flag.String("plot", "", "also draw the vmm/peer ratios as a PNG to `FILE`")
	flag.Parse()
	if opts.Runs < minRuns {
		return fmt.Errorf("-runs %d: at least %d runs are needed for a median and a range", opts.Runs, minRuns)
	}
	todo, err := selectSuites(orderedSuites(), *only)
	if err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	if opts.Baseline != "" {
		if todo, err = baselineSuites(todo, *only != ""); err != nil {
			return fmt.Errorf("-baseline: %w", err)
		}
	}

	env, err := NewEnv(opts)
	if err != nil {
		return err
	}
	defer env.Close()

	var results []Result
	for _, s := range todo {
		env.Logf("== %s", s.name)
		rs, err := s.run(env)
		if err != nil {
			return fmt.Errorf("suite %s: %w", s.name, err)
		}
		results = append(results, rs...)
	}

	withIntervals(results)
	rep := Report{Machine: env.Machine, Runs: opts.Runs, Results: results}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Print(rep.Text())
	}
	if *markdown != "" {
		if err := os.WriteFile(*markdown, []byte(rep.Markdown()), 0o644); err != nil {
			return err
		}
	}
	if *plot != "" {
		if err := writePlot(*plot, results); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	return nil
}
