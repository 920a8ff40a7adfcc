package cpu

import (
	"fmt"
	"math"

	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/internal/householder"
	"github.com/loract/loract/internal/tri"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// cholQRMinWork is the size p·l² of a p×l matrix below which CPU.QR uses
// Householder QR: CholeskyQR's passes only beat gonum's Householder QR once
// the products are large enough for internal/gemm's kernels. Measured with
// BenchmarkQR (go test -run XXX -bench BenchmarkQR -count 3 -benchtime 5x
// ./lowrank/, best of 3, Gaussian input, 2-core AMD EPYC with AVX-512),
// CholeskyQR against Householder: p×l = 8192×128, 19.7 ms vs 71.3 ms;
// 4096×64, 2.9 ms vs 8.0 ms; 4096×32 (p·l² = 2²²), 0.83 ms vs 2.1 ms;
// 2000×32, 0.93 ms vs 0.82 ms. max|QᵀQ − I| was 54u vs 108u, 31u vs 54u,
// 30u vs 66u and 26u vs 38u (u = 2⁻⁵³).
const cholQRMinWork = 1 << 22

// cholQR replaces y (p×l, p ≥ l) by Q of a thin QR factorisation y = Q·R
// and writes R into r if r has data (r may hold anything on entry).
//
// It runs CholeskyQR passes, G = YᵀY (+ s·I) = RᵢᵀRᵢ (Cholesky),
// Y ← Y·Rᵢ⁻¹, R ← Rᵢ·R, all products on internal/gemm: 4·p·l² flops a
// pass, against 4·p·l² for Householder QR in gonum's much slower BLAS.
//
// A pass is unshifted when the estimated κ(Y) meets the condition of
// CholeskyQR2 (Yamamoto, Nakatsukasa, Yanagisawa and Fukaya, 2015, ETNA 44:
// 8·κ₂(Y)·√(p·l·u + l(l+1)·u) ≤ 1, under which two passes give
// ‖QᵀQ − I‖_F ≤ 6·(p·l + l(l+1))·u). Otherwise it is shifted, G + s·I with
// s = 11·(p·l + l(l+1))·u·‖Y‖_F² (Fukaya, Kannan, Nakatsukasa, Yamamoto
// and Yanagisawa, 2020, SISC 42, shifted CholeskyQR3): σᵢ(Y·Rᵢ⁻¹) =
// σᵢ/√(σᵢ² + s), so each shifted pass divides κ by about ‖Y‖₂/√s ≈ 10⁵
// until the unshifted condition holds. Passes stop after an unshifted pass
// whose Rᵢ has estimated κ₁ ≤ 2 (its input was orthonormal to within
// about 1/2, so the output is to O((p·l + l²)·u)): 2 passes for a
// well-conditioned Y, 3 for κ(Y) ≈ 10⁸, 4 for κ(Y) ≈ 10¹³. Numerically
// rank-deficient Y is handled the same way, its rounding-level directions
// being amplified into orthonormal columns as Householder QR would.
//
// If Y is zero, a Cholesky factorisation fails, or maxPasses passes do not
// converge (an exactly zero column), the current Y is finished with
// Householder QR, which gives orthonormal columns whatever the rank.
//
// With tol > 0 the passes also stop before a pass whose Gram matrix
// G = YᵀY is within tol of the identity, ‖G − I‖_F ≤ tol, leaving Y as it
// is: then ‖YᵀY − I‖_F ≤ tol + γ_p·l, the second term the rounding of the
// computed G (γ_p = p·u/(1 − p·u), |ΔG| ≤ γ_p·|Y|ᵀ|Y|, whose entries are
// at most about 1 for near-orthonormal columns). This saves the second
// pass's factorisation and product for an input whose own precision is
// coarser than float64 (Backend.QRTol). tol = 0 is plain CholeskyQR.
//
// It returns how it ended, for tests: "cholqr/passes=N",
// "scholqr/passes=N" (some pass shifted) or "householder".
func cholQR(y blas64.General, r blas64.General, tol float64) string {
	p, l := y.Rows, y.Cols
	const u = 0x1p-53 // unit roundoff of float64
	const maxPasses = 6
	kappaMax := 1 / (8 * math.Sqrt(float64(p*l+l*(l+1))*u))
	shifted, applied := false, false

	newSq := func() blas64.General {
		return blas64.General{Rows: l, Cols: l, Stride: l, Data: make([]float64, l*l)}
	}
	gram, g, inv, acc, tmp := newSq(), newSq(), newSq(), newSq(), newSq()
	work := make([]float64, 3*l)
	iwork := make([]int, l)
	rb := max(1, min(p, (1<<17)/l)) // rows per block of Y·R⁻¹: at most 1 MiB
	buf := make([]float64, rb*l)

	// factor sets g to the Cholesky factor R of gram + shift·I (upper, zero
	// below) and returns ok and the estimated 1-norm condition number of R.
	factor := func(shift float64) (bool, float64) {
		copy(g.Data, gram.Data)
		for i := 0; i < l; i++ {
			g.Data[i*l+i] += shift
		}
		t, ok := lapack64.Potrf(blas64.Symmetric{Uplo: blas.Upper, N: l, Stride: l, Data: g.Data})
		if !ok {
			return false, math.Inf(1)
		}
		for i := 0; i < l; i++ {
			clear(g.Data[i*l : i*l+i])
		}
		rcond := lapack64.Trcon(lapack.MaxColumnSum, blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: l, Stride: l, Data: t.Data}, work, iwork)
		if !(rcond > 0) {
			return false, math.Inf(1)
		}
		return true, 1 / rcond
	}
	// apply sets Y ← Y·R⁻¹ and acc ← R·acc for R in g.
	apply := func(first bool) bool {
		copy(inv.Data, g.Data)
		if !lapack64.Trtri(blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: l, Stride: l, Data: inv.Data}) {
			return false
		}
		for i0 := 0; i0 < p; i0 += rb {
			i1 := min(i0+rb, p)
			blk := blas64.General{Rows: i1 - i0, Cols: l, Stride: y.Stride, Data: y.Data[i0*y.Stride:]}
			src := blas64.General{Rows: i1 - i0, Cols: l, Stride: l, Data: buf[:(i1-i0)*l]}
			for i := 0; i < i1-i0; i++ {
				copy(src.Data[i*l:(i+1)*l], blk.Data[i*blk.Stride:i*blk.Stride+l])
			}
			gemm.General(false, false, 1, src, inv, 0, blk)
		}
		if first {
			copy(acc.Data, g.Data)
			return true
		}
		// A product of upper triangular matrices is upper triangular; its
		// lower part is computed as exact zeros.
		gemm.General(false, false, 1, g, acc, 0, tmp)
		copy(acc.Data, tmp.Data)
		return true
	}

	// done writes acc into r and reports the passes applied.
	done := func(passes int) string {
		if r.Data != nil {
			for i := 0; i < l; i++ {
				copy(r.Data[i*r.Stride:i*r.Stride+l], acc.Data[i*l:(i+1)*l])
			}
		}
		if shifted {
			return fmt.Sprintf("scholqr/passes=%d", passes)
		}
		return fmt.Sprintf("cholqr/passes=%d", passes)
	}
	for pass := 1; pass <= maxPasses; pass++ {
		gemm.Gram(gram, y)
		if tol > 0 && applied && tri.OffIdentity(gram) <= tol {
			return done(pass - 1)
		}
		ok, kappa := factor(0)
		if !ok || kappa > kappaMax {
			var f float64 // ‖Y‖_F² = trace(G)
			for i := 0; i < l; i++ {
				f += gram.Data[i*l+i]
			}
			shift := 11 * float64(p*l+l*(l+1)) * u * f
			if shift == 0 || math.IsInf(shift, 0) || math.IsNaN(shift) {
				break
			}
			if ok, _ = factor(shift); !ok {
				break
			}
			shifted, kappa = true, math.Inf(1)
		}
		if !apply(pass == 1) {
			break
		}
		applied = true
		if kappa <= 2 {
			return done(pass)
		}
		if pass == maxPasses {
			householderQR(y, r, &acc)
			return "householder"
		}
	}
	// y = (current y)·acc when a pass was applied.
	if applied {
		householderQR(y, r, &acc)
	} else {
		householderQR(y, r, nil)
	}
	return "householder"
}

// householderQR replaces y by Q of its thin Householder QR and, if r has
// data, sets r = R·pre (pre upper triangular, nil for the identity).
//
// It runs householder.QR, not gonum's lapack64.Geqrf/Orgqr: for l > 128
// those form their blocks with gonum v0.17.0's Dlarft, which is wrong for
// reflectors ending in exact zeros, as those of a rank-deficient y do
// (‖QᵀQ − I‖ = 2.3e-4 for the QB of a 180×400 rank-1 matrix at k = 150;
// docs/reliability.md, "gonum Dlarft defect").
func householderQR(y, r blas64.General, pre *blas64.General) {
	l := y.Cols
	if r.Data == nil {
		householder.QR(y, blas64.General{})
		return
	}
	rh := blas64.General{Rows: l, Cols: l, Stride: l, Data: make([]float64, l*l)}
	householder.QR(y, rh)
	if pre != nil {
		// A product of upper triangular matrices is upper triangular; its
		// lower part is computed as exact zeros.
		gemm.General(false, false, 1, rh, *pre, 0, r)
		return
	}
	for i := 0; i < l; i++ {
		copy(r.Data[i*r.Stride:i*r.Stride+l], rh.Data[i*l:(i+1)*l])
	}
}
