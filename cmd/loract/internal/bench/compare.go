package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
)

// The grid of the fair comparison.
var (
	FairQ = []int{0, 1, 2}
	FairP = []int{0, 10}
)

// Comparison is one side-by-side comparison of 'loract bench': loract's
// methods and the peers' on one m×n activation-like matrix at rank K.
type Comparison struct {
	M, N, K int
	// Dtype is the input type: "fp32" or "fp64" on the CPU, "fp32" or
	// "bf16" on the GPU.
	Dtype string
	// Exact includes the exact SVD; Fair runs the fair-comparison grid
	// (FairQ × FairP for every method); All lists every loract setting
	// in the side-by-side table, not only the headline ones; Markdown
	// prints Markdown tables.
	Exact, Fair, All, Markdown bool
}

// Check returns an error naming the first invalid field for a comparison
// on the named backend ("cpu" or "gpu").
func (c Comparison) Check(backend string) error {
	switch {
	case c.M < 1 || c.N < 1:
		return fmt.Errorf("the matrix must be at least 1×1, not %d×%d", c.M, c.N)
	case c.K < 1 || c.K > min(c.M, c.N):
		return fmt.Errorf("rank k = %d outside [1, min(m, n) = %d]", c.K, min(c.M, c.N))
	}
	switch backend {
	case "cpu":
		if c.Dtype != "fp32" && c.Dtype != "fp64" {
			return fmt.Errorf("input type %q is not one of the cpu backend's (fp32, fp64)", c.Dtype)
		}
	case "gpu":
		if c.Dtype != "fp32" && c.Dtype != "bf16" {
			return fmt.Errorf("input type %q is not one of the gpu backend's (fp32, bf16)", c.Dtype)
		}
	default:
		return fmt.Errorf("unknown backend %q (cpu, gpu)", backend)
	}
	return nil
}

// autoQ is scikit-learn's n_iter='auto': 7 power iterations if k < 0.1 ×
// min(m, n), else 4.
func autoQ(m, n, k int) int {
	if float64(k) < 0.1*float64(min(m, n)) {
		return 7
	}
	return 4
}

// Settings returns the headline settings (those the side-by-side table
// lists) and every setting to run: the headline ones, then (with Fair)
// the rest of the fair grid, then (with Exact) the exact SVD: on the CPU
// exact.TruncatedSVD, on the GPU gpu.Backend.ExactSVD.
func (c Comparison) Settings() (head, all []Setting) {
	rows, gauss := activation.RowSampling, activation.Gaussian
	head = []Setting{
		{Method: rows}, {Method: rows, Q: 1},
		{Method: gauss}, {Method: gauss, Q: 1},
		{Method: gauss, SVDForm: true, Norm: rsvd.None},
		{Method: gauss, SVDForm: true, P: 10, Q: autoQ(c.M, c.N, c.K), Norm: rsvd.LU},
		{Method: gauss, SVDForm: true, Q: 2, Norm: rsvd.QR},
	}
	all = append([]Setting{}, head...)
	if c.Fair {
		for _, meth := range []activation.Method{rows, gauss} {
			for _, q := range FairQ {
				for _, p := range FairP {
					if s := (Setting{Method: meth, P: p, Q: q}); !containsSetting(all, s) {
						all = append(all, s)
					}
				}
			}
		}
	}
	if c.Exact {
		head = append(head, Setting{Method: activation.ExactSVD})
		all = append(all, Setting{Method: activation.ExactSVD})
	}
	return head, all
}

func containsSetting(ss []Setting, s Setting) bool {
	for _, t := range ss {
		if t.Same(s) {
			return true
		}
	}
	return false
}

// Headline returns the records of recs measured with one of the settings
// of head, in order; records that are not loract's are left out.
func Headline(recs []Record, head []Setting) []Record {
	var out []Record
	for _, r := range recs {
		if s, err := SettingOf(r); err == nil && containsSetting(head, s) {
			out = append(out, r)
		}
	}
	return out
}

// PeerArgs returns the arguments of cpu_peers.py and torch_peer.py for
// the comparison on the file input: the same grid as loract's, PyTorch's
// svd_lowrank over niter ∈ {0, 1, 2}, its versions of loract's methods at
// p = 0 only (the same algorithms as the NumPy peer's), and the exact SVD
// (timed once) unless exact is false. device is the PyTorch device
// ("cpu" or "cuda") and dtype the type torch_peer.py computes in.
func (c Comparison) PeerArgs(input string, repeats int, seed uint64, exact bool, device, dtype string) (cpuArgs, torchArgs []string) {
	common := []string{"--input", input, "--k", strconv.Itoa(c.K), "--repeats", strconv.Itoa(repeats), "--seed", strconv.FormatUint(seed, 10)}
	if !exact {
		common = append(common, "--skip-exact")
	}
	common = append(common, "--exact-once")
	qs, ps := ints(0, 1), ints(0)
	if c.Fair {
		qs, ps = ints(FairQ...), ints(FairP...)
	}
	cpuArgs = append(append([]string{}, common...), "--methods", "rows,gaussian,randomized_svd,randomized_svd_grid,exact",
		"--power-iters", qs, "--oversample", ps)
	torchArgs = append(append([]string{}, common...), "--device", device, "--dtype", dtype,
		"--methods", "rows,gaussian,svd_lowrank,exact", "--power-iters", qs, "--oversample", ps, "--niter", ints(0, 1, 2),
		"--torch-oversample", "0")
	return cpuArgs, torchArgs
}

// Upload returns x as backend be's input of type dtype, the same matrix
// on the host (to measure errors against) and the function that frees
// the device copy. On a *gpu.Backend the fp32 matrix is uploaded as
// float32 or rounded to bf16; any other backend gets the host matrix.
func Upload(be lowrank.Backend, x *Matrix, dtype string) (a lowrank.Matrix, host mat.Matrix, free func(), err error) {
	g, ok := be.(*gpu.Backend)
	if !ok {
		host = x.Input(dtype)
		return host.(lowrank.Matrix), host, func() {}, nil
	}
	dt := gpu.Float32
	if dtype == "bf16" {
		dt = gpu.BFloat16
	}
	da, err := g.UploadDense32(x.A32, dt)
	if err != nil {
		return nil, nil, nil, err
	}
	return da, x.A32, func() { g.Free(da) }, nil
}

// TimeLoract runs every setting at rank k on a (host: the same matrix on
// the host), shows each record against opt and returns them. The exact
// SVD on the CPU, seconds to minutes, is timed once without a warm-up; on
// the GPU (milliseconds) like the other settings.
func (s *Session) TimeLoract(be lowrank.Backend, a lowrank.Matrix, host mat.Matrix, k int, settings []Setting, opt float64) []Record {
	var recs []Record
	for _, st := range settings {
		warm, reps := 1, s.Repeats
		if st.Method == activation.ExactSVD && be.Name() == "cpu" {
			warm, reps = 0, 1
		}
		r := RunLoract(be, a, host, k, st, warm, reps, s.Seed)
		s.Show(r, opt)
		recs = append(recs, r)
	}
	return recs
}

// Compare runs comparison c on backend be (cpu.Backend{} or an open
// *gpu.Backend): loract's settings, then the peers that can run (the CPU
// peers on the CPU only; PyTorch on the CPU or on CUDA with a GPU
// backend), and writes the side-by-side table and the fair comparison to
// out. Every record joins s.Records. It returns an error only for a
// failure of its own (writing the peers' input, uploading); a peer that
// fails is logged and left out.
func (s *Session) Compare(ctx context.Context, out io.Writer, be lowrank.Backend, c Comparison) error {
	onCPU := be.Name() == "cpu"
	x := s.Matrix(c.M, c.N)
	opt := x.Optimal(c.K)
	a, host, free, err := Upload(be, x, c.Dtype)
	if err != nil {
		return err
	}
	defer free()
	head, settings := c.Settings()
	lrecs := s.TimeLoract(be, a, host, c.K, settings, opt)
	s.Records = append(s.Records, lrecs...)
	peers, err := s.comparePeers(ctx, x, c, onCPU, opt)
	s.Records = append(s.Records, peers...)
	if err != nil {
		return err
	}
	c.Report(out, be.Name(), s.Repeats, opt, lrecs, peers, head, s.Kernels())
	return nil
}

// comparePeers runs the peers of comparison c on x.
func (s *Session) comparePeers(ctx context.Context, x *Matrix, c Comparison, onCPU bool, opt float64) ([]Record, error) {
	cpuPeers, torch := onCPU && s.HasPeer(CPUPeers), s.HasPeer(TorchPeer)
	if !cpuPeers && !torch {
		if s.Peers != nil {
			s.Logf("no peer runs: the CPU peers need numpy (and the CPU backend), the PyTorch peer numpy and torch")
		}
		return nil, nil
	}
	fileType := c.Dtype
	if fileType == "bf16" {
		fileType = "fp32" // torch_peer.py rounds it to bf16 on the device
	}
	path, err := s.Input(x, fileType)
	if err != nil {
		return nil, err
	}
	device := "cpu"
	if !onCPU {
		device = "cuda"
	}
	cpuArgs, torchArgs := c.PeerArgs(path, s.Repeats, s.Seed, c.Exact, device, c.Dtype)
	var peers []Record
	if cpuPeers {
		s.Logf("NumPy/scikit-learn/SciPy peers (%s)", CPUPeers)
		peers = append(peers, s.RunPeer(ctx, CPUPeers, cpuArgs, opt)...)
	}
	if torch {
		s.Logf("PyTorch peer (%s, %s)", TorchPeer, device)
		peers = append(peers, s.RunPeer(ctx, TorchPeer, torchArgs, opt)...)
	}
	return peers, nil
}

// Report writes the comparison's tables: a header naming the backend,
// the matrix, the timing and the peers' BLAS kernels (one line each of
// kernels), the side-by-side table of the headline loract records (all
// with All) beside the peers', and with Fair the fair comparison.
func (c Comparison) Report(out io.Writer, backend string, repeats int, opt float64, lrecs, peers []Record, head []Setting, kernels []string) {
	fmt.Fprintf(out, "\n== %s backend, %s, %s input, activation-like (σ_j = 1/(j+1) + 1e-3), optimal rank-%d error %.4f ==\n",
		backend, Shape(c.M, c.N, c.K), c.Dtype, c.K, opt)
	exactNote := "the exact SVDs: one call"
	if backend != "cpu" {
		exactNote = "the peer's exact SVD: one call"
	}
	fmt.Fprintf(out, "median of %d calls after a warm-up (%s); err/opt = mean relative Frobenius error over the calls ÷ optimal; loract÷peer < 1: loract is faster\n", repeats, exactNote)
	for _, k := range kernels {
		fmt.Fprintf(out, "peer BLAS kernel, %s\n", k)
	}
	fmt.Fprintln(out)
	shown := lrecs
	if !c.All {
		shown = Headline(lrecs, head)
	}
	Table(out, shown, peers, opt, c.Markdown)
	if c.Fair {
		fmt.Fprintf(out, "\nFair comparison: each method's fastest setting with error ≤ %.2f× optimal (grid q ∈ {%s}, p ∈ {%s}; scikit-learn's default too)\n\n",
			FairFactor, ints(FairQ...), ints(FairP...))
		FairTable(out, Fair(append(append([]Record{}, lrecs...), peers...), opt), opt, c.Markdown)
	}
}
