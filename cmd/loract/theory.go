package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/loract/loract/cmd/loract/internal/experiment"
	"github.com/loract/loract/cmd/loract/internal/plots"
	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/internal/testmat"
)

func init() {
	commands["theory"] = command{
		summary: "print the regime table of docs/theory.md (or -plot FILE.png: the error-vs-k plot)",
		run:     runTheory,
	}
}

// theoryOptions are the validated flags of 'loract theory'.
type theoryOptions struct {
	args       []string
	m, n, k, p int
	q          []int
	trials     int
	seed       uint64
	plotPath   string
}

// parseTheory parses and checks the flags of 'loract theory'; nil options
// (and no error) for -h.
func parseTheory(args []string, stderr io.Writer) (*theoryOptions, error) {
	fs := flag.NewFlagSet("theory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	m := fs.Int("m", 512, "rows of the test matrices (tall: the columns of A are sampled)")
	n := fs.Int("n", 256, "columns of the test matrices")
	k := fs.Int("k", 32, "target rank of the regime table")
	p := fs.Int("p", 5, "oversampling: both sketches have width k+p")
	qs := fs.String("q", "0,1", "comma-separated power-iteration counts")
	trials := fs.Int("trials", 30, "seeds per cell")
	seed := fs.Uint64("seed", 1, "base seed")
	plotPath := fs.String("plot", "", "write the error-vs-k plot to this PNG instead of printing the table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	o := &theoryOptions{args: args, m: *m, n: *n, k: *k, p: *p, trials: *trials, seed: *seed, plotPath: *plotPath}
	for _, s := range strings.Split(*qs, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("bad -q %q: comma-separated counts ≥ 0", *qs)
		}
		o.q = append(o.q, v)
	}
	r := min(*m, *n)
	switch {
	case *m < 1 || *n < 1:
		return nil, fmt.Errorf("-m %d -n %d: the matrices must be at least 1×1", *m, *n)
	case *p < 0:
		return nil, fmt.Errorf("-p %d: the oversampling is ≥ 0", *p)
	case *trials < 1:
		return nil, fmt.Errorf("-trials %d: need at least one seed", *trials)
	case *plotPath != "":
		if len(experiment.PanelRanks(*m, *n, *p)) == 0 {
			return nil, fmt.Errorf("-plot needs 4 + p ≤ min(m, n) = %d (the smallest rank plotted is 4)", r)
		}
		if err := writableDir(*plotPath); err != nil {
			return nil, fmt.Errorf("-plot: %w", err)
		}
	case *k < 1 || *k+*p > r:
		return nil, fmt.Errorf("-k %d -p %d: need 1 ≤ k and k+p ≤ min(m, n) = %d", *k, *p, r)
	}
	return o, nil
}

func runTheory(args []string) error {
	o, err := parseTheory(args, os.Stderr)
	if err != nil || o == nil {
		return err
	}
	return o.run(os.Stdout, progress.NewLog(os.Stderr))
}

func (o *theoryOptions) run(out io.Writer, log *progress.Log) error {
	if o.plotPath != "" {
		return o.plot(log)
	}
	log.Printf("regime table: %d×%d, k = %d, ℓ = k+p = %d, q ∈ %v, %d seeds per cell", o.m, o.n, o.k, o.k+o.p, o.q, o.trials)
	rs, err := experiment.Regimes(experiment.RegimeConfig{M: o.m, N: o.n, K: o.k, P: o.p, Q: o.q, Trials: o.trials, Seed: o.seed,
		Progress: func(done, total int, what string) { log.Printf("cell %d/%d done: %s", done, total, what) }},
		testmat.Spectra(), testmat.Structures())
	if err != nil {
		return err
	}
	experiment.WriteRegimeTable(out, rs)
	fmt.Fprintf(out, "\n`loract theory %s` (%d×%d, k = %d, ℓ = k+p = %d, %d seeds) in %.0f s.\n",
		strings.Join(o.args, " "), o.m, o.n, o.k, o.k+o.p, o.trials, log.Elapsed().Seconds())
	return nil
}

// plot writes the error-vs-k plot: relative Frobenius error of both
// sketches and their bounds, σ_j = 1/j, for an incoherent and a coherent
// matrix.
func (o *theoryOptions) plot(log *progress.Log) error {
	var sp testmat.Spectrum
	for _, s := range testmat.Spectra() {
		if s.Name == "1/j" {
			sp = s
		}
	}
	st := testmat.Structures()
	ks := experiment.PanelRanks(o.m, o.n, o.p)
	var panels []plots.Panel
	for i, s := range []testmat.Structure{st[0], st[3]} {
		log.Printf("panel %d/2: %s, %d ranks × %d seeds", i+1, s.Name, len(ks), o.trials)
		cs, err := experiment.ErrorCurves(experiment.CurveConfig{M: o.m, N: o.n, Spectrum: sp, Structure: s, Ks: ks, P: o.p,
			Trials: o.trials, Seed: o.seed, Progress: func(done, total int, what string) {
				if done%4 == 0 || done == total {
					log.Printf("  %d/%d ranks (%s)", done, total, what)
				}
			}})
		if err != nil {
			return err
		}
		panels = append(panels, plots.Panel{Title: fmt.Sprintf("σ_j = 1/j, %s, %d×%d, ℓ = k+%d, q = 0", s.Name, o.m, o.n, o.p), Curves: cs})
	}
	if err := plots.CurvePanels(o.plotPath, panels); err != nil {
		return err
	}
	log.Printf("wrote %s", o.plotPath)
	return nil
}
