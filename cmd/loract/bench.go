package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cmd/loract/internal/bench"
	"github.com/loract/loract/cmd/loract/internal/cputime"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/internal/npy"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
)

func init() {
	commands["bench"] = command{
		summary: "time loract against NumPy, scikit-learn, SciPy and PyTorch (CPU) and print the ratio table",
		run:     runBench,
	}
}

// benchRun holds the state of one 'loract bench' invocation.
type benchRun struct {
	start   time.Time
	log     io.Writer
	py      bench.Python
	cpuPy   string
	torchPy string
	env     []string
	repeats int
	seed    uint64
	useT    bool
	backend string
	gpu     *gpu.Backend
	records []bench.Record
	envs    []bench.Env
}

// writePeerScripts writes the peer scripts into a new temporary folder
// (when Python was found) and sets the peers' timing environment. The
// caller removes the folder.
func (b *benchRun) writePeerScripts(prefix string) (dir string, err error) {
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", err
	}
	if b.py.Exe != "" {
		if b.cpuPy, b.torchPy, err = bench.WriteScripts(dir); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	b.env = bench.TimingEnv()
	return dir, nil
}

func (b *benchRun) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

func (b *benchRun) show(r bench.Record, opt float64) {
	if !r.Ok() {
		b.progress("%-8s %-14s %-18s %s: n/a (%s)", r.Peer, r.Method, r.Setting(), r.Dtype, r.Error)
		return
	}
	b.progress("%-8s %-14s %-18s %s %s: %9.2f ms (CPU %9.2f ms)  err/opt %.3f", r.Peer, r.Method, r.Setting(), r.Dtype,
		bench.Shape(r.M, r.N, r.K), r.Ms, r.CPUMs, r.Err()/opt)
}

func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
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
	keepEnv := fs.Bool("keep-openblas-env", false, "keep OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for the peers (by default they are unset so that OpenBLAS picks its own kernel)")
	core := fs.Bool("core", false, "print the core library timing table instead (sampling.QB and rsvd.QB at 8192×4096 k=128 and 4096×1024 k=64, fp64 and fp32, exact SVD at 4096×1024, beside NumPy and scikit-learn); takes several minutes")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: loract bench [flags]\n\nTimes loract's methods and the same algorithms in NumPy/OpenBLAS, scikit-learn,\nSciPy and PyTorch on one activation-like matrix (σ_j = 1/(j+1) + 1e-3, known\noptimal error) and prints loract time ÷ peer time and each method's error ÷ optimal.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if *saveInput != "" {
		dt := strings.TrimSpace(strings.Split(*dtypes, ",")[0])
		if dt != "fp32" && dt != "fp64" {
			return fmt.Errorf("-save-input writes fp32 or fp64, not %q", dt)
		}
		return npy.WriteFile(*saveInput, bench.Activation(*m, *n, *seed).Input(dt))
	}
	if *backend != "cpu" && *backend != "gpu" {
		return fmt.Errorf("unknown -backend %q (cpu, gpu)", *backend)
	}
	ctx := context.Background()
	b := &benchRun{start: time.Now(), log: os.Stderr, repeats: *repeats, seed: *seed, useT: *useTorch, backend: *backend}
	b.py = bench.FindPython(ctx)
	if err := b.describePeers(); err != nil {
		return err
	}
	dir, err := b.writePeerScripts("loract-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *keepEnv {
		b.env = os.Environ()
	}
	out := os.Stdout
	if *core {
		err = b.core(ctx, dir, out)
	} else {
		var dts []string
		for _, d := range strings.Split(*dtypes, ",") {
			d = strings.TrimSpace(d)
			if (*backend == "cpu" && d != "fp32" && d != "fp64") || (*backend == "gpu" && d != "fp32" && d != "bf16") {
				return fmt.Errorf("-dtype %q is not an input type of the %s backend", d, *backend)
			}
			dts = append(dts, d)
		}
		for _, dt := range dts {
			if err = b.compare(ctx, dir, out, *m, *n, *k, dt, *exact, *fair, *all, *md); err != nil {
				break
			}
		}
	}
	if b.gpu != nil {
		if cerr := b.gpu.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	self, children := cpuSeconds()
	b.progress("done: wall %.0f s; CPU time %.0f s (loract %.0f s + peers %.0f s): with %d idle cores the wall time would be about CPU/%d",
		time.Since(b.start).Seconds(), self+children, self, children, runtime.NumCPU(), runtime.NumCPU())
	b.describeEnvs(out)
	if *jsonOut != "" {
		if werr := writeJSON(*jsonOut, b.records); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// describePeers says which peers were found and how to install the others.
func (b *benchRun) describePeers() error {
	if b.py.Exe == "" {
		b.progress("no python3 found: peers skipped; install them with: %s", bench.InstallHint)
		return nil
	}
	var have []string
	for _, pm := range bench.PeerModules {
		if v, ok := b.py.Versions[pm.Module]; ok {
			have = append(have, pm.Module+" "+v)
		}
	}
	b.progress("python: %s (%s)", b.py.Exe, strings.Join(have, ", "))
	if miss := b.py.Missing(); len(miss) > 0 {
		var pk []string
		for _, pm := range bench.PeerModules {
			if !b.py.Have[pm.Module] {
				pk = append(pk, pm.Package)
			}
		}
		b.progress("peers not found: %s — install with: apt-get install %s (or set LORACT_PYTHON to an interpreter that has them)",
			strings.Join(miss, ", "), strings.Join(pk, " "))
	}
	return nil
}

// writeInput writes the matrix in the given type for the peers.
func writeInput(dir string, x *bench.Matrix, dtype string) (string, error) {
	name := filepath.Join(dir, fmt.Sprintf("a_%dx%d_%s.npy", x.M, x.N, dtype))
	if _, err := os.Stat(name); err == nil {
		return name, nil
	}
	return name, npy.WriteFile(name, x.Input(dtype))
}

func ints(v ...int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// Grid of the fair comparison.
var (
	fairQ = []int{0, 1, 2}
	fairP = []int{0, 10}
)

// compare runs the side-by-side comparison on one matrix and prints its
// tables.
func (b *benchRun) compare(ctx context.Context, dir string, out io.Writer, m, n, k int, dtype string, exact, fair, all, md bool) error {
	b.progress("building the %d×%d activation-like matrix (seed %d)", m, n, b.seed)
	x := bench.Activation(m, n, b.seed)
	opt := x.Optimal(k)
	var be lowrank.Backend = cpu.Backend{}
	var a lowrank.Matrix
	var host mat.Matrix
	if b.backend == "gpu" {
		if b.gpu == nil {
			g, err := gpu.Open(0, nil)
			if err != nil {
				return err
			}
			b.gpu = g
			dev, arch := g.Device()
			b.progress("GPU: %s (%s)", dev, arch)
		}
		dt := gpu.Float32
		if dtype == "bf16" {
			dt = gpu.BFloat16
		}
		da, err := b.gpu.UploadDense32(x.A32, dt)
		if err != nil {
			return err
		}
		defer b.gpu.Free(da)
		be, a, host = b.gpu, da, x.A32
		exact = exact && b.useT // the exact SVD runs in PyTorch only
	} else {
		host = x.Input(dtype)
		a = host.(lowrank.Matrix)
	}

	// loract: the headline settings, then the fair grid.
	autoQ := 4
	if float64(k) < 0.1*float64(min(m, n)) {
		autoQ = 7 // scikit-learn's n_iter='auto'
	}
	head := []bench.Setting{
		{Method: "rows"}, {Method: "rows", Q: 1},
		{Method: "gaussian"}, {Method: "gaussian", Q: 1},
		{Method: "svd", Norm: rsvd.None},
		{Method: "svd", P: 10, Q: autoQ, Norm: rsvd.LU},
		{Method: "svd", Q: 2, Norm: rsvd.QR},
	}
	settings := append([]bench.Setting{}, head...)
	if fair {
		for _, meth := range []string{"rows", "gaussian"} {
			for _, q := range fairQ {
				for _, p := range fairP {
					s := bench.Setting{Method: meth, P: p, Q: q}
					if !contains(settings, s) {
						settings = append(settings, s)
					}
				}
			}
		}
	}
	if exact && b.backend == "cpu" {
		head = append(head, bench.Setting{Method: "exact"})
		settings = append(settings, bench.Setting{Method: "exact"})
	}
	var lrecs []bench.Record
	for _, s := range settings {
		warm, reps := 1, b.repeats
		if s.Method == "exact" {
			warm, reps = 0, 1 // seconds to minutes: timed once
		}
		r := bench.RunLoract(be, a, host, k, s, warm, reps, b.seed)
		b.show(r, opt)
		lrecs = append(lrecs, r)
	}

	var peers []bench.Record
	if b.py.Exe != "" && b.py.Have["numpy"] {
		fileType := dtype
		if dtype == "bf16" {
			fileType = "fp32" // torch_peer.py rounds it to bf16 on the device
		}
		path, err := writeInput(dir, x, fileType)
		if err != nil {
			return err
		}
		common := []string{"--input", path, "--k", strconv.Itoa(k), "--repeats", strconv.Itoa(b.repeats), "--seed", strconv.FormatUint(b.seed, 10)}
		if !exact {
			common = append(common, "--skip-exact")
		}
		common = append(common, "--exact-once")
		qs, ps := ints(0, 1), ints(0)
		if fair {
			qs, ps = ints(fairQ...), ints(fairP...)
		}
		if b.backend == "cpu" {
			b.progress("NumPy/scikit-learn/SciPy peers (%s)", filepath.Base(b.cpuPy))
			recs, env, err := b.py.RunScript(ctx, b.cpuPy, append(common, "--methods", "rows,gaussian,randomized_svd,randomized_svd_grid,exact",
				"--power-iters", qs, "--oversample", ps), b.env, func(r bench.Record) { b.show(r, opt) })
			peers = append(peers, recs...)
			b.envs = append(b.envs, env)
			if err != nil {
				b.progress("cpu peers failed: %v", err)
			}
		}
		if b.useT && b.py.Have["torch"] {
			device := "cpu"
			if b.backend == "gpu" {
				device = "cuda"
			}
			b.progress("PyTorch peer (%s, %s)", filepath.Base(b.torchPy), device)
			// PyTorch's own method gets the grid; its versions of ours only
			// p = 0 (the same algorithms as the NumPy peer's).
			recs, env, err := b.py.RunScript(ctx, b.torchPy, append(common, "--device", device, "--dtype", dtype,
				"--methods", "rows,gaussian,svd_lowrank,exact", "--power-iters", qs, "--oversample", ps, "--niter", ints(0, 1, 2),
				"--torch-oversample", "0"),
				b.env, func(r bench.Record) { b.show(r, opt) })
			peers = append(peers, recs...)
			b.envs = append(b.envs, env)
			if err != nil {
				b.progress("torch peer failed: %v", err)
			}
		}
	}
	b.records = append(b.records, lrecs...)
	b.records = append(b.records, peers...)

	fmt.Fprintf(out, "\n== %s backend, %s, %s input, activation-like (σ_j = 1/(j+1) + 1e-3), optimal rank-%d error %.4f ==\n",
		be.Name(), bench.Shape(m, n, k), dtype, k, opt)
	fmt.Fprintf(out, "median of %d calls after a warm-up (the exact SVDs: one call); err/opt = mean relative Frobenius error over the calls ÷ optimal; loract÷peer < 1: loract is faster\n\n", b.repeats)
	shown := lrecs
	if !all {
		shown = nil
		for _, r := range lrecs {
			if contains(head, bench.Setting{Method: r.Method, P: r.P, Q: r.Q, Norm: normOf(r)}) {
				shown = append(shown, r)
			}
		}
	}
	bench.Table(out, shown, peers, opt, md)
	if fair {
		fmt.Fprintf(out, "\nFair comparison: each method's fastest setting with error ≤ %.2f× optimal (grid q ∈ {%s}, p ∈ {%s}; scikit-learn's default too)\n\n",
			bench.FairFactor, ints(fairQ...), ints(fairP...))
		bench.FairTable(out, bench.Fair(append(append([]bench.Record{}, lrecs...), peers...), opt), opt, md)
	}
	return nil
}

func normOf(r bench.Record) rsvd.Normalizer {
	switch r.Norm {
	case "lu":
		return rsvd.LU
	case "none":
		return rsvd.None
	}
	return rsvd.QR
}

func contains(ss []bench.Setting, s bench.Setting) bool {
	for _, t := range ss {
		if t.Method == s.Method && t.P == s.P && t.Q == s.Q && (t.Method == "rows" || t.Method == "exact" || t.Q == 0 || t.Norm == s.Norm) {
			return true
		}
	}
	return false
}

// describeEnvs prints the machine and the peers' libraries.
func (b *benchRun) describeEnvs(out io.Writer) {
	fmt.Fprintf(out, "\nmachine: %s/%s, %d CPUs (GOMAXPROCS %d), %s; load average at the end: %s\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), loadAvg())
	for _, e := range b.envs {
		if e == nil {
			continue
		}
		js, _ := json.Marshal(e)
		fmt.Fprintf(out, "peer env: %s\n", js)
	}
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "model name") {
			if i := strings.Index(line, ":"); i >= 0 {
				return strings.TrimSpace(line[i+1:])
			}
		}
	}
	return "unknown CPU"
}

// cpuSeconds returns the CPU time (user + system) of this process and of
// its finished children (the peer scripts), in seconds.
func cpuSeconds() (self, children float64) {
	return cputime.Self().Seconds(), cputime.Children().Seconds()
}

// loadAvg returns the 1, 5 and 15 minute load averages (Linux), which say
// whether other work competed for the cores while timing.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func writeJSON(name string, recs []bench.Record) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
