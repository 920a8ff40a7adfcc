package bench

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/cputime"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/exact"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// Benchmarks over methods, backends, shapes and input types, named by
// their parameters and reporting GFLOP/s (the nominal count of Flops ÷
// time) and err/opt (mean relative Frobenius error over the timed calls ÷
// the Eckart–Young optimum, exact for these matrices) and cpu-ms/op (the
// process CPU time per call, all threads: on a shared machine it moves
// less than ns/op). Run and compare:
//
//	go test -run '^$' -bench 'BenchmarkQB/' -count 10 ./cmd/loract/internal/bench > new.txt
//	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da old.txt new.txt
//
// Nothing here runs under plain 'go test': the matrices are built on first
// use by a benchmark (32768×4096 takes about 10 s and 1.5 GiB).

var (
	flagShapes = flag.String("bench.shapes", "", "only these shapes, e.g. 4096x1024x64,8192x4096x128 (m×n×k)")
	flagExact  = flag.Bool("bench.exactall", false, "run the exact SVD at every shape (gonum's SVD takes minutes beyond 4096×1024)")
)

// shape is an activation-like benchmark case.
type shape struct{ m, n, k int }

// shapes are the cases: activation-like 4096×1024 k=64,
// 8192×4096 k=128, 32768×4096 k=256, and square 4096² k=128.
var shapes = []shape{{4096, 1024, 64}, {8192, 4096, 128}, {32768, 4096, 256}, {4096, 4096, 128}}

func selected(s shape) bool {
	if *flagShapes == "" {
		return true
	}
	for _, f := range strings.Split(*flagShapes, ",") {
		if strings.TrimSpace(f) == fmt.Sprintf("%dx%dx%d", s.m, s.n, s.k) {
			return true
		}
	}
	return false
}

// benchSeed seeds the test matrices (and, offset by the iteration, the draws).
const benchSeed = 1

// backendCase is a backend and how to put the test matrix on it.
type backendCase struct {
	name string
	// open returns the backend and the input of type dtype on it, or
	// skips b with the reason it is unavailable.
	open   func(b *testing.B, x *Matrix, dtype string) (lowrank.Backend, lowrank.Matrix, func())
	dtypes []string
}

func cpuCase() backendCase {
	return backendCase{
		name:   "cpu",
		dtypes: []string{"f64", "f32"},
		open: func(b *testing.B, x *Matrix, dtype string) (lowrank.Backend, lowrank.Matrix, func()) {
			if dtype == "f64" {
				return cpu.Backend{}, x.A64, func() {}
			}
			return cpu.Backend{}, x.A32, func() {}
		},
	}
}

// backendCases lists the CPU and, if present, the GPU backend (gpuCase,
// in gpu_bench_test.go).
func backendCases() []backendCase { return append([]backendCase{cpuCase()}, gpuCases()...) }

// BenchmarkQB times the QB decompositions (LoRAct row sampling and
// Gaussian, p = 0, q = 0: the reference's defaults) through a reused
// Decomposer's QBTo, so that allocation is not what is measured.
func BenchmarkQB(b *testing.B) {
	for _, bc := range backendCases() {
		for _, meth := range []activation.Method{activation.RowSampling, activation.Gaussian} {
			for _, sh := range shapes {
				if !selected(sh) {
					continue
				}
				for _, dt := range bc.dtypes {
					name := fmt.Sprintf("backend=%s/method=%s/m=%d/n=%d/k=%d/dtype=%s", bc.name, meth, sh.m, sh.n, sh.k, dt)
					b.Run(name, func(b *testing.B) { benchQB(b, bc, meth, sh, dt, 0, 0) })
				}
			}
		}
	}
}

// BenchmarkQBSettings times every (method, p, q) of the accuracy/time
// trade-off on the 4096×1024 k=64 float32 case: the Pareto front of
// 'loract plot'.
func BenchmarkQBSettings(b *testing.B) {
	sh := shape{4096, 1024, 64}
	for _, bc := range backendCases() {
		dt := bc.dtypes[len(bc.dtypes)-1]
		for _, meth := range []activation.Method{activation.RowSampling, activation.Gaussian} {
			for _, q := range []int{0, 1, 2} {
				for _, p := range []int{0, 10} {
					name := fmt.Sprintf("backend=%s/method=%s/m=%d/n=%d/k=%d/p=%d/q=%d/dtype=%s", bc.name, meth, sh.m, sh.n, sh.k, p, q, dt)
					b.Run(name, func(b *testing.B) { benchQB(b, bc, meth, sh, dt, p, q) })
				}
			}
		}
	}
}

func benchQB(b *testing.B, bc backendCase, meth activation.Method, sh shape, dtype string, p, q int) {
	x := Activation(sh.m, sh.n, benchSeed)
	opt := x.Optimal(sh.k)
	be, a, done := bc.open(b, x, dtype)
	defer done()
	var call func(i int) error
	var f lowrank.Factors
	switch meth {
	case activation.RowSampling:
		d := sampling.NewDecomposer(be)
		defer d.Close()
		call = func(i int) error {
			return d.QBTo(&f, a, sh.k, &sampling.Options{Oversample: p, PowerIters: q, Seed: uint64(i)})
		}
	case activation.Gaussian:
		d := rsvd.NewDecomposer(be)
		defer d.Close()
		call = func(i int) error {
			return d.QBTo(&f, a, sh.k, &rsvd.Options{Oversample: p, PowerIters: q, Seed: uint64(i)})
		}
	}
	// One untimed call sizes the workspace and the destination.
	if err := call(0); err != nil {
		b.Fatal(err)
	}
	var sumErr float64
	i := 0
	c0 := cputime.Self()
	for b.Loop() {
		i++
		if err := call(i); err != nil {
			b.Fatal(err)
		}
		sumErr += lowrank.ErrorFromSquaredNorms(f.SquaredNormA, f.SquaredNormB)
	}
	// CPU time per call (all threads; the error sums are negligible):
	// robust to other programs on a shared machine, unlike ns/op.
	b.ReportMetric(float64((cputime.Self()-c0).Nanoseconds())/1e6/float64(i), "cpu-ms/op")
	report(b, Flops(meth, sh.m, sh.n, sh.k, p, q), sumErr/float64(i)/opt)
}

// BenchmarkSVD times the exact SVD (exact.TruncatedSVD) at 4096×1024
// (every shape with -bench.exactall) on float64 input.
func BenchmarkSVD(b *testing.B) {
	for _, sh := range shapes {
		if !selected(sh) || (!*flagExact && sh != shapes[0]) {
			continue
		}
		name := fmt.Sprintf("backend=cpu/method=exact/m=%d/n=%d/k=%d/dtype=f64", sh.m, sh.n, sh.k)
		b.Run(name, func(b *testing.B) {
			x := Activation(sh.m, sh.n, benchSeed)
			var f *lowrank.SVD
			for b.Loop() {
				var err error
				if f, err = exact.TruncatedSVD(x.A64, sh.k); err != nil {
					b.Fatal(err)
				}
			}
			e := lowrank.RelError(x.A64, f)
			report(b, Flops(activation.ExactSVD, sh.m, sh.n, sh.k, 0, 0), e/x.Optimal(sh.k))
		})
	}
}

func report(b *testing.B, flops, errOpt float64) {
	if b.N > 0 && b.Elapsed() > 0 {
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	b.ReportMetric(errOpt, "err/opt")
}

var _ mat.Matrix = (*lowrank.Dense32)(nil)
