package gpu

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/npy"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// The side-by-side benchmark is a test behind a flag, so that one test
// binary built anywhere (CGO_ENABLED=0 go test -c) carries it to the GPU
// host:
//
//	gpu.test -test.run TestSideBySide -gpu.sbs=/tmp/sbs
//
// It writes each test matrix to <dir>/<m>x<n>.npy for bench/torch_peer.py
// and prints one JSON line per measurement.
var sbsDir = flag.String("gpu.sbs", "", "run the side-by-side GPU benchmark, writing its matrices into this directory")
var sbsReps = flag.Int("gpu.reps", 20, "timed repetitions per measurement (median reported)")

// event timing on the backend's stream.
type timer struct {
	b          *Backend
	start, end uintptr
	// ahead, if set, is enqueued before the start event of every timed
	// call: work long enough for the host to enqueue the whole call
	// before the stream reaches it, so that the events measure the GPU's
	// time alone and not the host's launch latency.
	ahead func() error
}

func newTimer(t *testing.T, b *Backend) *timer {
	tm := &timer{b: b}
	require.NoError(t, b.enter())
	defer b.leave()
	require.NoError(t, b.api.check(b.api.cuEventCreate(&tm.start, 0), "cuEventCreate"))
	require.NoError(t, b.api.check(b.api.cuEventCreate(&tm.end, 0), "cuEventCreate"))
	return tm
}

// median times f (warm-up 3 calls, then reps calls) with CUDA events
// recorded on the stream around each call, as the PyTorch peer does, and
// returns the median and minimum in milliseconds.
func (tm *timer) median(t *testing.T, reps int, f func(i int) error) (med, lo float64) {
	b := tm.b
	for i := 0; i < 3; i++ {
		require.NoError(t, f(-1-i))
	}
	require.NoError(t, b.Synchronize())
	ms := make([]float64, reps)
	for i := range ms {
		if tm.ahead != nil {
			require.NoError(t, tm.ahead())
		}
		require.NoError(t, b.enter())
		require.NoError(t, b.api.check(b.api.cuEventRecord(tm.start, b.stream), "cuEventRecord"))
		b.leave()
		require.NoError(t, f(i))
		require.NoError(t, b.enter())
		require.NoError(t, b.api.check(b.api.cuEventRecord(tm.end, b.stream), "cuEventRecord"))
		require.NoError(t, b.api.check(b.api.cuEventSynchronize(tm.end), "cuEventSynchronize"))
		var x float32
		require.NoError(t, b.api.check(b.api.cuEventElapsedTime(&x, tm.start, tm.end), "cuEventElapsedTime"))
		b.leave()
		ms[i] = float64(x)
	}
	sort.Float64s(ms)
	return ms[len(ms)/2], ms[0]
}

func emit(rec map[string]any) {
	j, _ := json.Marshal(rec)
	fmt.Println(string(j))
}

func TestSideBySide(t *testing.T) {
	if *sbsDir == "" {
		t.Skip("side-by-side benchmark: pass -gpu.sbs=DIR")
	}
	b := open(t, nil)
	name, arch := b.Device()
	drv, _ := DriverVersion()
	emit(map[string]any{"env": map[string]any{"device": name, "arch": arch, "driver_api": drv}})
	tm := newTimer(t, b)
	reps := *sbsReps

	ceilings(t, b, tm, reps)

	for _, c := range []struct {
		m, n, k int
		dtypes  []DType
	}{{8192, 4096, 128, []DType{Float32, BFloat16}}, {32768, 4096, 256, []DType{BFloat16, Float32}}} {
		t0 := time.Now()
		sigma := testmat.ActivationLike(min(c.m, c.n))
		a := testmat.Incoherent(c.m, c.n, sigma, 2026)
		a32 := testmat.To32(a)
		a = nil
		path := filepath.Join(*sbsDir, fmt.Sprintf("%dx%d.npy", c.m, c.n))
		require.NoError(t, os.MkdirAll(*sbsDir, 0o755))
		require.NoError(t, npy.WriteFile(path, a32))
		emit(map[string]any{"matrix": path, "m": c.m, "n": c.n, "gen_s": time.Since(t0).Seconds(),
			"optimal_error_k": testmat.OptimalError(sigma, c.k)})
		for _, dt := range c.dtypes {
			da, err := b.UploadDense32(a32, dt)
			require.NoError(t, err)
			runQB(t, b, tm, da, c.k, dt, reps)
			if c.m == 8192 && dt == Float32 {
				steps(t, b, tm, da, c.k, reps)
				exact(t, b, tm, da, c.k)
			}
			b.Free(da)
		}
	}
}

// ceilings measures the GEMM ceilings and the copy bandwidth.
func ceilings(t *testing.T, b *Backend, tm *timer, reps int) {
	const n = 8192
	x, err := b.NewMatrix(n, n, Float32)
	require.NoError(t, err)
	y, err := b.NewMatrix(n, n, Float32)
	require.NoError(t, err)
	z, err := b.NewMatrix(n, n, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Normal(x, 1))
	require.NoError(t, b.Normal(y, 2))
	x16, err := b.ToBF16(x)
	require.NoError(t, err)
	y16, err := b.ToBF16(y)
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		a, b *Matrix
		m    Math
	}{{"sgemm_fp32", x, y, FP32}, {"gemm_tf32", x, y, TF32}, {"gemm_bf16", x16, y16, BF16}} {
		med, lo := tm.median(t, reps, func(int) error {
			require.NoError(t, b.enter())
			defer b.leave()
			return b.gemm(z, 1, c.a, false, c.b, false, 0, c.m)
		})
		emit(map[string]any{"ceiling": c.name, "n": n, "ms": med, "ms_min": lo, "tflops": 2 * math.Pow(n, 3) / med / 1e9})
	}
	med, lo := tm.median(t, reps, func(int) error { return b.Copy(z, x) })
	emit(map[string]any{"ceiling": "d2d_copy", "bytes": 2 * 4 * n * n, "ms": med, "ms_min": lo, "gbs": 2 * 4 * n * n / med / 1e6})
	for _, m := range []*Matrix{x, y, z, x16, y16} {
		b.Free(m)
	}
}

// runQB times the LoRAct QB (sampling) and the Gaussian QB (rsvd), Auto
// orientation as the PyTorch peer, oversampling 0, no power iterations.
func runQB(t *testing.T, b *Backend, tm *timer, da *Matrix, k int, dt DType, reps int) {
	m, n := da.Dims()
	maths := []Math{FP32}
	if dt == Float32 {
		maths = append(maths, TF32, BF16)
	}
	for _, mth := range maths {
		for _, qrm := range []QRMethod{CholQR, Householder} {
			if qrm == Householder && (mth != FP32 || m > 8192) {
				continue
			}
			b.SetMath(mth)
			b.SetQR(qrm)
			for _, method := range []string{"rows", "gaussian"} {
				var f lowrank.Factors
				var run func(i int) error
				if method == "rows" {
					d := sampling.NewDecomposer(b)
					defer d.Close()
					run = func(i int) error { return d.QBTo(&f, da, k, &sampling.Options{Seed: uint64(i + 100)}) }
				} else {
					d := rsvd.NewDecomposer(b)
					defer d.Close()
					run = func(i int) error { return d.QBTo(&f, da, k, &rsvd.Options{Seed: uint64(i + 100)}) }
				}
				med, lo := tm.median(t, reps, run)
				var q mat.Dense
				require.NoError(t, b.Download(&q, f.Q))
				emit(map[string]any{"peer": "loract-gpu", "method": method, "dtype": dtName(dt), "math": mth.String(),
					"qr": qrm.String(), "m": m, "n": n, "k": k, "ms": med, "ms_min": lo, "repeats": reps,
					"rel_error": lowrank.ErrorFromSquaredNorms(f.SquaredNormA, f.SquaredNormB), "orth": testmat.OrthError(&q), "qr_fallbacks": b.fallbacks, "pass1_defect": b.lastDev})
				b.Free(f.Q)
				b.Free(f.B)
			}
		}
	}
	b.SetMath(FP32)
	b.SetQR(CholQR)
}

func dtName(dt DType) string {
	if dt == BFloat16 {
		return "bf16"
	}
	return "fp32"
}

// steps times the pieces of one QB: the two large products (with their
// TFLOP/s against the ceiling) and the QR of the tall sketch.
func steps(t *testing.T, b *Backend, tm *timer, da *Matrix, k int, reps int) {
	m, n := da.Dims()
	p, s := n, m // Auto orientation: op(A) = Aᵀ, p×s
	omega, err := b.NewMatrix(s, k, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Normal(omega, 1))
	y, err := b.NewMatrix(p, k, Float32)
	require.NoError(t, err)
	bb, err := b.NewMatrix(k, s, Float32)
	require.NoError(t, err)
	fl := 2 * float64(m) * float64(n) * float64(k)
	for _, mth := range []Math{FP32, TF32, BF16} {
		b.SetMath(mth)
		med, lo := tm.median(t, reps, func(int) error { return b.Mul(y, 1, da, true, omega, false, 0) })
		emit(map[string]any{"step": "Y=op(A)·Ω", "math": mth.String(), "ms": med, "ms_min": lo, "tflops": fl / med / 1e9})
		require.NoError(t, b.QR(y, nil))
		med, lo = tm.median(t, reps, func(int) error { return b.Mul(bb, 1, y, true, da, true, 0) })
		emit(map[string]any{"step": "B=Qᵀ·op(A)", "math": mth.String(), "ms": med, "ms_min": lo, "tflops": fl / med / 1e9})
	}
	b.SetMath(FP32)
	y0, err := b.NewMatrix(p, k, Float32)
	require.NoError(t, err)
	require.NoError(t, b.Mul(y0, 1, da, true, omega, false, 0))
	for _, rows := range []int{p, s} {
		yy, err := b.NewMatrix(rows, k, Float32)
		require.NoError(t, err)
		src, err := b.NewMatrix(rows, k, Float32)
		require.NoError(t, err)
		require.NoError(t, b.Normal(src, 3))
		if rows == p {
			require.NoError(t, b.Copy(src, y0))
		}
		cp, _ := tm.median(t, reps, func(int) error { return b.Copy(yy, src) })
		for _, qrm := range []QRMethod{CholQR, Householder} {
			b.SetQR(qrm)
			med, lo := tm.median(t, reps, func(int) error {
				if err := b.Copy(yy, src); err != nil {
					return err
				}
				return b.QR(yy, nil)
			})
			var q mat.Dense
			require.NoError(t, b.Download(&q, yy))
			emit(map[string]any{"step": "QR", "qr": qrm.String(), "rows": rows, "k": k, "ms": med - cp, "ms_min": lo - cp,
				"orth": testmat.OrthError(&q), "qr_fallbacks": b.fallbacks, "input": map[bool]string{true: "sketch op(A)·Ω", false: "Gaussian"}[rows == p]})
		}
		b.Free(yy)
		b.Free(src)
	}
	b.SetQR(CholQR)
	for _, x := range []*Matrix{omega, y, bb, y0} {
		b.Free(x)
	}
}

// exact times ExactSVD on the whole matrix and records its error for k,
// then the truncated one (k leading terms) by each route, its values
// against the full SVD's.
func exact(t *testing.T, b *Backend, tm *timer, da *Matrix, k int) {
	m, n := da.Dims()
	u, v, s, med, lo := timeExact(t, b, tm, da, min(m, n))
	var hu mat.Dense
	require.NoError(t, b.Download(&hu, b.Slice(u, 0, m, 0, 256)))
	emit(map[string]any{"peer": "loract-gpu", "method": "exact", "dtype": "fp32", "m": m, "n": n, "ms": med, "ms_min": lo,
		"repeats": 3, "sigma1": s[0], "sigma_min": s[len(s)-1], "orth_u256": testmat.OrthError(&hu)})
	b.Free(u)
	b.Free(v)
	full := s
	for _, noSub := range []bool{false, true} {
		b.noSubspace = noSub
		uk, vk, sk, med, lo := timeExact(t, b, tm, da, k)
		dev := 0.0
		for j := range sk {
			dev = max(dev, math.Abs(sk[j]-full[j])/full[0])
		}
		var hu, hv mat.Dense
		require.NoError(t, b.Download(&hu, uk))
		require.NoError(t, b.Download(&hv, vk))
		run := b.lastSubspace
		emit(map[string]any{"peer": "loract-gpu", "method": "exact_k", "route": map[bool]string{false: "subspace", true: "dsyevdx"}[noSub],
			"dtype": "fp32", "m": m, "n": n, "k": k, "ms": med, "ms_min": lo, "repeats": 3, "max_dsigma_over_sigma1": dev,
			"orth_u": testmat.OrthError(&hu), "orth_v": testmat.OrthError(&hv), "steps": run.Steps, "checks": run.Checks, "used": run.Used})
		b.Free(uk)
		b.Free(vk)
	}
	b.noSubspace = false
}

// timeExact times three calls of ExactSVD(da, k) and returns the last
// call's factors with the median and fastest time.
func timeExact(t *testing.T, b *Backend, tm *timer, da *Matrix, k int) (u, v *Matrix, s []float64, med, lo float64) {
	med, lo = tm.median(t, 3, func(i int) error {
		if u != nil {
			b.Free(u)
			b.Free(v)
		}
		var err error
		u, v, s, err = b.ExactSVD(da, k)
		return err
	})
	return u, v, s, med, lo
}
