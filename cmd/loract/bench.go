package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/loract/loract/cmd/loract/internal/bench"
	"github.com/loract/loract/cmd/loract/internal/cputime"
	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/cmd/loract/internal/step"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/internal/npy"
	"github.com/loract/loract/lowrank"
)

func init() {
	commands["bench"] = command{
		summary: "time loract against NumPy, scikit-learn, SciPy and PyTorch (CPU) and print the ratio table",
		run:     runBench,
	}
}

// benchOptions are the validated flags of 'loract bench'.
type benchOptions struct {
	comparisons []bench.Comparison
	backend     string
	saveInput   string
	repeats     int
	seed        uint64
	torch       bool
	keepEnv     bool
	core        bool
	rounds      int
	jsonOut     string
	step        *step.BenchConfig
}

// parseBench parses and checks the flags of 'loract bench'; it returns
// nil options (and no error) for -h.
func parseBench(args []string, stderr io.Writer) (*benchOptions, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	m := fs.Int("m", 4096, "rows of the activation-like test matrix")
	n := fs.Int("n", 1024, "columns")
	k := fs.Int("k", 64, "target rank")
	dtypes := fs.String("dtype", "fp32", "comma-separated input element types: fp32, fp64 (cpu); fp32, bf16 (gpu)")
	backend := fs.String("backend", "cpu", "loract backend: cpu, or gpu (CUDA device 0; PyTorch peers then run on CUDA, the CPU peers are skipped)")
	saveInput := fs.String("save-input", "", "only write the -m×-n test matrix of the first -dtype (fp32 or fp64) to this .npy file and exit (for running the peer scripts by hand)")
	repeats := fs.Int("repeats", 3, "timed calls per measurement (the median is reported) after one warm-up call")
	seed := fs.Uint64("seed", 1, "seed of the test matrix and of the first draw")
	exact := fs.Bool("exact", true, "include the exact SVD (loract, SciPy gesdd, torch.linalg.svd)")
	useTorch := fs.Bool("torch", true, "include the PyTorch peer (CPU)")
	fair := fs.Bool("fair", true, "run the fair-comparison grid: q ∈ {0,1,2} × p ∈ {0,10} for every method")
	all := fs.Bool("all", false, "list every loract setting in the side-by-side table, not only the headline ones")
	md := fs.Bool("md", false, "print Markdown tables")
	jsonOut := fs.String("json", "", "also write every record as JSON lines to this file")
	keepEnv := fs.Bool("keep-openblas-env", false, "run the peers with this environment's OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE and force no kernel (by default both are unset, and where OpenBLAS then falls back to a kernel below the CPU's AVX2/AVX-512 the peer runs with OPENBLAS_CORETYPE=Haswell or SkylakeX, after a check of its results)")
	stepRun := fs.Bool("step", false, "time one Llama-7B decoder layer's seven linear projections with LoRA on the GPU, forward and backward, activations kept as bf16 and compressed by loract, beside the same layer in PyTorch (-tokens, -ranks, -lora-rank, -workers, -batch, -batch-streams, -late-join, -priority, -warmup, -repeats, -torch, -json)")
	tokens := fs.String("tokens", "8192,16384,32768", "-step: comma-separated token counts L")
	ranks := fs.String("ranks", "128,256", "-step: comma-separated compression ranks k")
	loraRank := fs.Int("lora-rank", 16, "-step: LoRA rank r")
	workers := fs.String("workers", "0", "-step: comma-separated compressor Workers settings (0: the caller's stream; n: n side streams)")
	batch := fs.Bool("batch", false, "-step: also run each setting with the layer's inputs compressed together in one CompressBatch after forward's last projection (each input held until then)")
	batchStreams := fs.String("batch-streams", "0", "-step with -batch: comma-separated activation.Config.BatchStreams of the batched runs (0, the default, or 1: the batch on one stream; 2: split over two), one batched run each")
	lateJoin := fs.Bool("late-join", false, "-step: also run each setting with side streams without the Join between forward and backward (each weight gradient waits for its own compression)")
	priority := fs.Int("priority", 0, "-step: also run each setting with side streams at this CUDA stream priority (negative: higher; gpu.Backend.SetForkPriority)")
	warmup := fs.Int("warmup", 3, "-step: untimed steps before the timed ones")
	rounds := fs.Int("rounds", 1, "-core: measure every entry this many times in a row, the peers and loract in alternating order, and report the median over the rounds with the range of loract ÷ NumPy (for a machine whose speed drifts)")
	core := fs.Bool("core", false, "print the core library timing table instead (sampling.QB and rsvd.QB at 8192×4096 k=128 and 4096×1024 k=64, fp64 and fp32, exact SVD at 4096×1024, beside NumPy and scikit-learn); takes several minutes")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: loract bench [flags]\n\nTimes loract's methods and the same algorithms in NumPy/OpenBLAS, scikit-learn,\nSciPy and PyTorch on one activation-like matrix (σ_j = 1/(j+1) + 1e-3, known\noptimal error) and prints loract time ÷ peer time and each method's error ÷ optimal.\nEvery peer runs its best BLAS kernel; the header names it.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil
		}
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	o := &benchOptions{backend: *backend, saveInput: *saveInput, repeats: *repeats, seed: *seed, torch: *useTorch,
		keepEnv: *keepEnv, core: *core, rounds: *rounds, jsonOut: *jsonOut}
	if *repeats < 1 {
		return nil, fmt.Errorf("-repeats %d: need at least one timed call", *repeats)
	}
	if *rounds < 1 {
		return nil, fmt.Errorf("-rounds %d: need at least one", *rounds)
	}
	if !*core && len(setFlags(fs, "rounds")) > 0 {
		return nil, errors.New("-rounds applies only with -core")
	}
	if *stepRun {
		if set := setFlags(fs, "m", "n", "k", "dtype", "exact", "fair", "all", "md", "core", "save-input", "backend", "keep-openblas-env"); len(set) > 0 {
			return nil, fmt.Errorf("-step runs a fixed layer on the GPU: %s do not apply", strings.Join(set, ", "))
		}
		c := &step.BenchConfig{LoRARank: *loraRank, Warmup: *warmup, Repeats: *repeats, Seed: *seed, Priority: *priority, LateJoin: *lateJoin, Batch: *batch}
		var err error
		if c.Tokens, err = parseInts("-tokens", *tokens); err != nil {
			return nil, err
		}
		if c.Ranks, err = parseInts("-ranks", *ranks); err != nil {
			return nil, err
		}
		if c.Workers, err = parseInts("-workers", *workers); err != nil {
			return nil, err
		}
		if c.BatchStreams, err = parseInts("-batch-streams", *batchStreams); err != nil {
			return nil, err
		}
		if len(setFlags(fs, "repeats")) == 0 {
			c.Repeats = 20
		}
		if err := c.Check(); err != nil {
			return nil, err
		}
		if err := writableDir(*jsonOut); err != nil {
			return nil, fmt.Errorf("-json: %w", err)
		}
		o.step = c
		return o, nil
	}
	if set := setFlags(fs, "tokens", "ranks", "lora-rank", "workers", "warmup", "priority", "late-join", "batch", "batch-streams"); len(set) > 0 {
		return nil, fmt.Errorf("%s apply only with -step", strings.Join(set, ", "))
	}
	if *saveInput != "" {
		dt := strings.TrimSpace(strings.Split(*dtypes, ",")[0])
		if dt != "fp32" && dt != "fp64" {
			return nil, fmt.Errorf("-save-input writes fp32 or fp64, not %q", dt)
		}
		if *m < 1 || *n < 1 {
			return nil, fmt.Errorf("-m %d -n %d: the matrix must be at least 1×1", *m, *n)
		}
		o.comparisons = []bench.Comparison{{M: *m, N: *n, Dtype: dt}}
		return o, nil
	}
	if *backend != "cpu" && *backend != "gpu" {
		return nil, fmt.Errorf("unknown -backend %q (cpu, gpu)", *backend)
	}
	if *core {
		if *backend != "cpu" {
			return nil, errors.New("-core times the CPU library functions: it takes no -backend gpu")
		}
		if set := setFlags(fs, "m", "n", "k", "dtype", "exact", "fair", "all", "md"); len(set) > 0 {
			return nil, fmt.Errorf("-core times fixed shapes and prints Markdown: %s do not apply", strings.Join(set, ", "))
		}
	} else {
		for _, d := range strings.Split(*dtypes, ",") {
			c := bench.Comparison{M: *m, N: *n, K: *k, Dtype: strings.TrimSpace(d), Exact: *exact, Fair: *fair, All: *all, Markdown: *md}
			if err := c.Check(*backend); err != nil {
				return nil, err
			}
			o.comparisons = append(o.comparisons, c)
		}
	}
	if err := writableDir(*jsonOut); err != nil {
		return nil, fmt.Errorf("-json: %w", err)
	}
	return o, nil
}

func runBench(args []string) error {
	o, err := parseBench(args, os.Stderr)
	if err != nil || o == nil {
		return err
	}
	return o.run(context.Background(), os.Stdout, os.Stderr)
}

func (o *benchOptions) run(ctx context.Context, out, stderr io.Writer) (err error) {
	if o.saveInput != "" {
		c := o.comparisons[0]
		return npy.WriteFile(o.saveInput, bench.Activation(c.M, c.N, o.seed).Input(c.Dtype))
	}
	log := progress.NewLog(stderr)
	if o.step != nil {
		return o.runStep(ctx, log, out)
	}
	s, cleanup, err := newSession(ctx, log, true, o.repeats, o.seed, o.torch, "loract-bench-")
	if err != nil {
		return err
	}
	defer cleanup()
	if o.keepEnv {
		s.Env, s.FairKernels = os.Environ(), false
	}
	var be lowrank.Backend = cpu.Backend{}
	if o.backend == "gpu" {
		g, err := gpu.Open(0, nil)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := g.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		dev, arch := g.Device()
		log.Printf("GPU: %s (%s)", dev, arch)
		be = g
	}
	if o.core {
		err = s.Core(ctx, out, bench.CoreShapes, o.rounds)
	} else {
		for _, c := range o.comparisons {
			if err = s.Compare(ctx, out, be, c); err != nil {
				break
			}
		}
	}
	self, children := cputime.Self().Seconds(), cputime.Children().Seconds()
	log.Printf("done: wall %.0f s; CPU time %.0f s (loract %.0f s + peers %.0f s): with %d idle cores the wall time would be about CPU/%d",
		time.Since(log.Start).Seconds(), self+children, self, children, runtime.NumCPU(), runtime.NumCPU())
	bench.WriteMachine(out, s.CPU, s.Envs)
	if o.jsonOut != "" {
		if werr := bench.WriteJSON(o.jsonOut, s.Records); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// runStep runs the step benchmark on CUDA device 0.
func (o *benchOptions) runStep(ctx context.Context, log *progress.Log, out io.Writer) (err error) {
	g, err := gpu.Open(0, nil)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := g.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	dev, arch := g.Device()
	drv, _ := gpu.DriverVersion()
	log.Printf("GPU: %s (%s), CUDA driver API %d", dev, arch, drv)
	cfg := *o.step
	if o.torch {
		py := bench.FindPython(ctx)
		if py.Have["torch"] {
			cfg.Python = py.Exe
			log.Printf("PyTorch peer: %s (torch %s)", py.Exe, py.Versions["torch"])
		} else {
			log.Printf("PyTorch peer skipped: no python3 with torch (%s)", bench.InstallHint)
		}
	}
	ours, peer, err := step.Bench(ctx, g, cfg, log.Printf)
	step.WriteTable(out, ours, peer)
	fmt.Fprintf(out, "\ndevice: %s (%s), CUDA driver API %d; loract time ÷ its own bf16 run, and PyTorch's ÷ its own, in one process run on the same card\n", dev, arch, drv)
	if o.jsonOut != "" {
		if werr := step.WriteJSON(o.jsonOut, append(ours, peer...)); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// parseInts parses a comma-separated list of integers.
func parseInts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", flagName, s, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// newSession finds Python (if peers), writes the peer scripts into a new
// temporary folder and returns the session; cleanup removes the folder.
func newSession(ctx context.Context, log *progress.Log, peers bool, repeats int, seed uint64, torch bool, prefix string) (*bench.Session, func(), error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	s := &bench.Session{Log: log, Dir: dir, Repeats: repeats, Seed: seed, Torch: torch, FairKernels: true, CPU: bench.ReadCPUInfo()}
	if peers {
		py := bench.FindPython(ctx)
		bench.DescribePeers(log, py)
		if py.Exe != "" {
			sc, err := bench.NewScripts(py, dir)
			if err != nil {
				cleanup()
				return nil, nil, err
			}
			s.Peers, s.Have = sc, py.Have
		}
	}
	return s, cleanup, nil
}

// noArgs rejects positional arguments: every input is a flag.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: loract %s takes flags only (see loract %s -h)",
			fs.Args(), fs.Name(), fs.Name())
	}
	return nil
}

// setFlags returns those of names that were set on the command line, as
// "-name".
func setFlags(fs *flag.FlagSet, names ...string) []string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var set []string
	fs.Visit(func(f *flag.Flag) {
		if want[f.Name] {
			set = append(set, "-"+f.Name)
		}
	})
	return set
}

// writableDir checks that the folder of the file name exists (an empty
// name passes), so that a long run does not fail at its last step.
func writableDir(name string) error {
	if name == "" {
		return nil
	}
	dir := filepath.Dir(name)
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	return nil
}
