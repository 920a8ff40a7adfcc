package bench

import (
	"fmt"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/cputime"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/exact"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// Setting is one loract method with its parameters.
type Setting struct {
	// Method is activation.RowSampling (sampling.QB), activation.Gaussian
	// (rsvd.QB, or rsvd.SVD with SVDForm) or activation.ExactSVD
	// (exact.TruncatedSVD); activation.Uncompressed is not timed.
	Method activation.Method
	// SVDForm, with Gaussian, times rsvd.SVD: the Gaussian QB, then the
	// SVD of B ("svd" in the records).
	SVDForm bool
	// P is the oversampling and Q the number of power iterations.
	P, Q int
	// Norm normalises the power iterations of the Gaussian methods.
	Norm rsvd.Normalizer
	// HostAPI times the package-level functions sampling.QB and rsvd.QB
	// (which allocate their result) instead of a reused Decomposer's QBTo;
	// CPU only.
	HostAPI bool
}

// Name returns the method's name in the records: "rows", "gaussian",
// "svd" (Gaussian with SVDForm) or "exact".
func (s Setting) Name() string {
	if s.Method == activation.Gaussian && s.SVDForm {
		return "svd"
	}
	return s.Method.String()
}

func (s Setting) String() string {
	if s.Method == activation.ExactSVD {
		return "exact"
	}
	str := fmt.Sprintf("%s p=%d q=%d", s.Name(), s.P, s.Q)
	if s.Method == activation.Gaussian && s.Q > 0 {
		str += " " + s.Norm.String()
	}
	return str
}

// Same reports whether s and t time the same computation: the same method
// and form, p and q (not for the exact SVD), and the normaliser where it
// acts (the Gaussian methods with power iterations). HostAPI is not
// compared.
func (s Setting) Same(t Setting) bool {
	if s.Method != t.Method || s.SVDForm != t.SVDForm {
		return false
	}
	if s.Method == activation.ExactSVD {
		return true
	}
	if s.P != t.P || s.Q != t.Q {
		return false
	}
	return s.Method != activation.Gaussian || s.Q == 0 || s.Norm == t.Norm
}

// SettingOf returns the setting a loract record was measured with. It
// returns an error for a record of another peer or an unknown method or
// normaliser name.
func SettingOf(r Record) (Setting, error) {
	if r.Peer != "loract" {
		return Setting{}, fmt.Errorf("bench: %s record: not a loract setting", r.Peer)
	}
	s := Setting{P: r.P, Q: r.Q}
	switch r.Method {
	case "svd":
		s.Method, s.SVDForm = activation.Gaussian, true
	case "rows", "gaussian", "exact":
		m, err := activation.ParseMethod(r.Method)
		if err != nil {
			return Setting{}, err
		}
		s.Method = m
	default:
		return Setting{}, fmt.Errorf("bench: loract record of unknown method %q", r.Method)
	}
	if s.Method == activation.Gaussian {
		switch r.Norm {
		case "qr", "":
			s.Norm = rsvd.QR
		case "lu":
			s.Norm = rsvd.LU
		case "none":
			s.Norm = rsvd.None
		default:
			return Setting{}, fmt.Errorf("bench: loract record of unknown normaliser %q", r.Norm)
		}
	}
	if s.Method == activation.ExactSVD {
		s.P, s.Q = 0, 0
	}
	return s, nil
}

// Flops returns the nominal flop count of method on an m×n matrix at rank
// k with oversampling p and q power iterations: the products only,
// 2·m·n·ℓ·(2 + 2q) with ℓ = min(k+p, m, n) for the randomized methods (the
// QR and small-SVD terms are lower order when ℓ ≪ min(m, n)), and
// 6·M·N² + 20·N³ (M = max(m, n), N = min(m, n); the R-SVD count of Golub
// and Van Loan, Matrix Computations §8.6) for the exact thin SVD. GFLOP/s
// figures are these counts divided by time: a fixed yardstick, not a
// hardware counter.
func Flops(method activation.Method, m, n, k, p, q int) float64 {
	mm, nn := float64(max(m, n)), float64(min(m, n))
	if method == activation.ExactSVD {
		return 6*mm*nn*nn + 20*nn*nn*nn
	}
	l := float64(min(k+p, m, n))
	return 2 * float64(m) * float64(n) * l * float64(2+2*q)
}

// DtypeOf returns the element type of a: "fp64" for a *mat.Dense, "fp32"
// for a *lowrank.Dense32 and a float32 *gpu.Matrix, "bf16" for a bf16
// *gpu.Matrix.
func DtypeOf(a lowrank.Matrix) string {
	switch a := a.(type) {
	case *lowrank.Dense32:
		return "fp32"
	case *gpu.Matrix:
		if a.DType() == gpu.BFloat16 {
			return "bf16"
		}
		return "fp32"
	}
	return "fp64"
}

// run is one call of a method: it returns the relative error from the
// projection identity and, if full, a host factorisation for a direct
// error.
type run func(seed uint64, full bool) (approx lowrank.Approximation, idErr float64, err error)

// RunLoract times setting s at rank k on a, a matrix of backend be
// (*mat.Dense or *lowrank.Dense32 for cpu.Backend): warmup untimed calls
// with seed, then repeats timed calls with seeds seed+1, … . The record's
// Ms is the median, RelError the direct ‖A − Â‖_F/‖A‖_F of the first call
// (the first timed call if warmup is 0) against host (the same matrix on
// the host; nil skips it: RelError is then the identity error) and
// RelErrorMean the mean of ErrorFromNorms over the first warm-up call and
// the timed calls. The exact method is exact.TruncatedSVD on the CPU and
// gpu.Backend.ExactSVD on a GPU backend. It needs
// warmup + repeats ≥ 1.
func RunLoract(be lowrank.Backend, a lowrank.Matrix, host mat.Matrix, k int, s Setting, warmup, repeats int, seed uint64) Record {
	m, n := a.Dims()
	rec := Record{Peer: "loract", Method: s.Name(), Device: be.Name(), Dtype: DtypeOf(a), M: m, N: n, K: k, P: s.P, Q: s.Q}
	if s.Method == activation.Gaussian {
		rec.Norm = s.Norm.String()
	}
	if warmup < 0 || repeats < 0 || warmup+repeats < 1 {
		rec.Error = fmt.Sprintf("bench: %d warm-up and %d timed calls", warmup, repeats)
		return rec
	}
	fn, err := method(be, a, k, s)
	if err != nil {
		rec.Error = err.Error()
		return rec
	}
	var errs []float64
	first := func(e float64, approx lowrank.Approximation) {
		errs = append(errs, e)
		rec.RelError = e
		if approx != nil {
			rec.RelError = lowrank.RelError(host, approx)
		}
	}
	for w := range warmup {
		approx, e, err := fn(seed, w == 0 && host != nil)
		if err != nil {
			rec.Error = err.Error()
			return rec
		}
		if w == 0 {
			first(e, approx)
		}
	}
	times := make([]float64, repeats)
	cpu := make([]float64, repeats)
	for r := range repeats {
		// Without a warm-up the first timed call gives the direct error
		// (computed after its time is taken).
		full := warmup == 0 && r == 0 && host != nil
		c0 := cputime.Self()
		t0 := time.Now()
		approx, e, err := fn(seed+1+uint64(r), full)
		times[r] = float64(time.Since(t0).Nanoseconds()) / 1e6
		cpu[r] = float64((cputime.Self() - c0).Nanoseconds()) / 1e6
		if err != nil {
			rec.Error = err.Error()
			return rec
		}
		if warmup == 0 && r == 0 {
			first(e, approx)
		} else {
			errs = append(errs, e)
		}
	}
	slices.Sort(times)
	slices.Sort(cpu)
	rec.Repeats = repeats
	if repeats > 0 {
		rec.Ms = median(times)
		rec.MsMin = times[0]
		rec.CPUMs = median(cpu)
	}
	var sum float64
	for _, e := range errs {
		sum += e
	}
	rec.RelErrorMean = sum / float64(len(errs))
	return rec
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// method returns the call of s on a.
func method(be lowrank.Backend, a lowrank.Matrix, k int, s Setting) (run, error) {
	if s.HostAPI {
		return hostAPI(be, a, k, s)
	}
	switch {
	case s.Method == activation.RowSampling:
		d := sampling.NewDecomposer(be)
		var f lowrank.Factors
		return func(seed uint64, full bool) (lowrank.Approximation, float64, error) {
			opts := &sampling.Options{Oversample: s.P, PowerIters: s.Q, Seed: seed}
			if err := d.QBTo(&f, a, k, opts); err != nil {
				return nil, 0, err
			}
			return qbOf(be, f, full)
		}, nil
	case s.Method == activation.Gaussian && !s.SVDForm:
		d := rsvd.NewDecomposer(be)
		var f lowrank.Factors
		return func(seed uint64, full bool) (lowrank.Approximation, float64, error) {
			opts := &rsvd.Options{Oversample: s.P, PowerIters: s.Q, Normalizer: s.Norm, Seed: seed}
			if err := d.QBTo(&f, a, k, opts); err != nil {
				return nil, 0, err
			}
			return qbOf(be, f, full)
		}, nil
	case s.Method == activation.Gaussian:
		d := rsvd.NewDecomposer(be)
		norm2, _, err := be.SquaredNorm(a, 1)
		if err != nil {
			return nil, err
		}
		return func(seed uint64, full bool) (lowrank.Approximation, float64, error) {
			opts := &rsvd.Options{Oversample: s.P, PowerIters: s.Q, Normalizer: s.Norm, Seed: seed}
			u, v, sv, err := d.SVD(a, k, opts)
			if err != nil {
				return nil, 0, err
			}
			return svdOf(be, u, v, sv, norm2, full)
		}, nil
	case s.Method == activation.ExactSVD:
		if g, ok := be.(*gpu.Backend); ok {
			return gpuExact(g, a, k)
		}
		if _, ok := be.(cpu.Backend); !ok {
			return nil, fmt.Errorf("bench: no exact SVD on backend %s", be.Name())
		}
		host, ok := a.(mat.Matrix)
		if !ok {
			return nil, fmt.Errorf("bench: %T is not a host matrix", a)
		}
		norm2 := lowrank.SquaredFrobenius(host)
		return func(_ uint64, full bool) (lowrank.Approximation, float64, error) {
			f, err := exact.TruncatedSVD(host, k)
			if err != nil {
				return nil, 0, err
			}
			e := svError(norm2, f.Values(nil))
			if !full {
				return nil, e, nil
			}
			return f, e, nil
		}, nil
	}
	return nil, fmt.Errorf("bench: no timing of method %v", s.Method)
}

// gpuExact returns the call of the device's truncated exact SVD
// (gpu.Backend.ExactSVD) of the device matrix a.
func gpuExact(g *gpu.Backend, a lowrank.Matrix, k int) (run, error) {
	da, ok := a.(*gpu.Matrix)
	if !ok {
		return nil, fmt.Errorf("bench: %T is not a device matrix", a)
	}
	norm2, _, err := g.SquaredNorm(da, 1)
	if err != nil {
		return nil, err
	}
	return func(_ uint64, full bool) (lowrank.Approximation, float64, error) {
		u, v, sv, err := g.ExactSVD(da, k)
		if err != nil {
			return nil, 0, err
		}
		return svdOf(g, u, v, sv, norm2, full)
	}, nil
}

// svdOf returns the error of the SVD factors u, diag(sv), v of a matrix of
// squared norm norm2 (svError) and, if full, the factors on the host; it
// frees u and v, which the call that made them handed over.
func svdOf(be lowrank.Backend, u, v lowrank.Matrix, sv []float64, norm2 float64, full bool) (lowrank.Approximation, float64, error) {
	defer be.Free(u)
	defer be.Free(v)
	e := svError(norm2, sv)
	if !full {
		return nil, e, nil
	}
	var hu, hv mat.Dense
	if err := be.Download(&hu, u); err != nil {
		return nil, 0, err
	}
	if err := be.Download(&hv, v); err != nil {
		return nil, 0, err
	}
	return lowrank.NewSVD(&hu, sv, &hv), e, nil
}

// svError returns sqrt(1 − Σs²/‖A‖_F²), the error of the orthogonal
// projection onto the k singular vectors with values s.
func svError(norm2 float64, s []float64) float64 {
	var ss float64
	for _, v := range s {
		ss += v * v
	}
	return lowrank.ErrorFromSquaredNorms(norm2, ss)
}

func qbOf(be lowrank.Backend, f lowrank.Factors, full bool) (lowrank.Approximation, float64, error) {
	e := lowrank.ErrorFromSquaredNorms(f.SquaredNormA, f.SquaredNormB)
	if !full {
		return nil, e, nil
	}
	var q, b mat.Dense
	if err := be.Download(&q, f.Q); err != nil {
		return nil, 0, err
	}
	if err := be.Download(&b, f.B); err != nil {
		return nil, 0, err
	}
	return lowrank.NewQB(&q, &b, f.Trans), e, nil
}

// hostAPI returns the call of sampling.QB or rsvd.QB.
func hostAPI(be lowrank.Backend, a lowrank.Matrix, k int, s Setting) (run, error) {
	host, ok := a.(mat.Matrix)
	if _, cpu := be.(cpu.Backend); !cpu || !ok {
		return nil, fmt.Errorf("bench: the host API runs on CPU host matrices only")
	}
	norm2 := lowrank.SquaredFrobenius(host)
	var qb func(seed uint64) (*lowrank.QB, error)
	switch {
	case s.Method == activation.RowSampling:
		qb = func(seed uint64) (*lowrank.QB, error) {
			return sampling.QB(host, k, &sampling.Options{Oversample: s.P, PowerIters: s.Q, Seed: seed})
		}
	case s.Method == activation.Gaussian && !s.SVDForm:
		qb = func(seed uint64) (*lowrank.QB, error) {
			return rsvd.QB(host, k, &rsvd.Options{Oversample: s.P, PowerIters: s.Q, Normalizer: s.Norm, Seed: seed})
		}
	default:
		return nil, fmt.Errorf("bench: no host API timing for %s", s.Name())
	}
	return func(seed uint64, full bool) (lowrank.Approximation, float64, error) {
		f, err := qb(seed)
		if err != nil {
			return nil, 0, err
		}
		e := lowrank.ErrorFromSquaredNorms(norm2, f.SquaredNormB())
		if !full {
			return nil, e, nil
		}
		return f, e, nil
	}, nil
}
