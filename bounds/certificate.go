package bounds

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/exact"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// Exact holds the exact thin SVD A = U·diag(σ)·Vᵀ of a matrix: the
// reference against which certificates are evaluated. It is immutable;
// T returns the SVD of Aᵀ sharing the same storage.
type Exact struct {
	u, v *mat.Dense // m×r and n×r, r = min(m, n)
	s    []float64
}

// NewExact computes the exact SVD of a with exact.TruncatedSVD (cost
// O(m·n·min(m, n)); gonum's one-sided Jacobi/QR-iteration is accurate to a
// small multiple of ε·σ₁). a is not modified. It returns the errors of
// exact.TruncatedSVD.
func NewExact(a mat.Matrix) (*Exact, error) {
	m, n := a.Dims()
	f, err := exact.TruncatedSVD(a, min(m, n))
	if err != nil {
		return nil, err
	}
	e := &Exact{u: new(mat.Dense), v: new(mat.Dense), s: f.Values(nil)}
	f.UTo(e.u)
	f.VTo(e.v)
	return e, nil
}

// Dims returns the shape m×n of A.
func (e *Exact) Dims() (m, n int) {
	m, _ = e.u.Dims()
	n, _ = e.v.Dims()
	return m, n
}

// Values returns a copy of the singular values, non-increasing.
func (e *Exact) Values() []float64 { return append([]float64(nil), e.s...) }

// T returns the exact SVD of Aᵀ (U and V exchanged), sharing storage.
func (e *Exact) T() *Exact { return &Exact{u: e.v, v: e.u, s: e.s} }

// op returns e or e.T() for op(A) = Aᵀ if trans.
func (e *Exact) op(trans bool) *Exact {
	if trans {
		return e.T()
	}
	return e
}

// Certificate is the deterministic error bound for one drawn sketch
// Y = op(A)·Ω of width ℓ, split at target rank k (docs/theory.md §2–§4).
// All bounds are absolute (not divided by ‖A‖). If Ω₁ = V₁ᵀΩ is
// numerically rank deficient the theorem does not apply and every bound
// is +Inf.
type Certificate struct {
	K, L, Q int
	// FullRank reports whether Ω₁ has full row rank k: its smallest
	// singular value exceeds ℓ·ε times its largest.
	FullRank bool
	// Frobenius and Spectral bound ‖(I − P_Y)op(A)‖_F and ‖·‖₂: Thm 9.1
	// applied to op(A) with the test matrix (AᵀA)^q·Ω, whose range is
	// that of the power-scheme sketch (theory.md, Proposition 3):
	// ‖Σ₂‖² + ‖Σ₂^{2q+1}·Ω₂·Ω₁†·Σ₁^{−2q}‖².
	Frobenius, Spectral float64
	// SpectralRoot is HMT's power-scheme route (Thm 9.2 and Thm 9.1 on
	// (AAᵀ)^q·A): (σ_{k+1}^{2(2q+1)} + ‖Σ₂^{2q+1}·Ω₂·Ω₁†‖₂²)^{1/(2(2q+1))}.
	// Equal to Spectral for q = 0.
	SpectralRoot float64
	// TruncFrobenius and TruncSpectral bound the error of the rank-k
	// truncation ‖op(A) − [P_Y·op(A)]_k‖ that QB returns when ℓ > k:
	// (cert² + ‖Σ₂‖²)^{1/2} (theory.md, Proposition 4).
	TruncFrobenius, TruncSpectral float64
}

// RowCertificate is the certificate of a row-sampled sketch
// (Ω = op(A)ᵀ·Sᵀ) with the quantities of its coherence form.
type RowCertificate struct {
	Certificate
	// PinvNorm is ‖(S·U₁)†‖₂ = 1/σ_min(S·U₁) (+Inf if rank deficient).
	PinvNorm float64
	// CoherenceFrobenius and CoherenceSpectral are the looser bounds that
	// replace U₂ᵀSᵀ by its norm bound 1 (theory.md, Corollary 2):
	// (Σ_{j>k} σ_j² + Σ_{j>k} σ_j^{2(2q+2)}·‖(SU₁)†‖²/σ_k^{2(2q+1)})^{1/2}.
	CoherenceFrobenius, CoherenceSpectral float64
}

// Structural evaluates the certificate of HMT Theorem 9.1 for the test
// matrix omega (n×ℓ, n the columns of A) with target rank k and q power
// iterations (Y = (AAᵀ)^q·A·Ω, normalised between products or not). It
// panics with ErrParam unless 1 ≤ k ≤ min(m, n) and q ≥ 0, and with
// lowrank.ErrShape if omega has the wrong number of rows. Cost
// O(n·r·ℓ + r·ℓ·k) for r = min(m, n).
func (e *Exact) Structural(omega mat.Matrix, k, q int) Certificate {
	n, l := omega.Dims()
	if _, en := e.Dims(); n != en {
		panic(lowrank.ErrShape)
	}
	e.checkKQ(k, q)
	// W = Vᵀ·Ω (r×ℓ): rows 0..k−1 are Ω₁, the rest Ω₂.
	var w mat.Dense
	w.Mul(e.v.T(), omega)
	c, _ := e.core(&w, k, l, q, 2*q+1, 2*q, 2*q+1, 0, mat.Norm(omega, 2))
	return c
}

// RowSampling evaluates the certificate of the row-sampled sketch
// Y = (AAᵀ)^q·A·Aᵀ·Sᵀ, where S selects the rows idx of A (distinct, in
// any order), with target rank k: the exact form
//
//	‖(I − P_Y)A‖² ≤ ‖Σ₂‖² + ‖Σ₂^{2q+2}·U₂ᵀSᵀ·(U₁ᵀSᵀ)†·Σ₁^{−(2q+1)}‖²
//
// and the coherence form with ‖(SU₁)†‖₂ (theory.md, Theorem 1). It panics
// as Structural, and if an index is out of range.
func (e *Exact) RowSampling(idx []int, k, q int) RowCertificate {
	e.checkKQ(k, q)
	m, _ := e.Dims()
	r := len(e.s)
	l := len(idx)
	// X = Uᵀ·Sᵀ (r×ℓ): column j is row idx[j] of U.
	for _, i := range idx {
		if i < 0 || i >= m {
			paramPanic("row index %d out of range [0, %d)", i, m)
		}
	}
	inf := math.Inf(1)
	rc := RowCertificate{PinvNorm: inf, CoherenceFrobenius: inf, CoherenceSpectral: inf}
	if l < k {
		// S·U₁ (ℓ×k) cannot have full column rank.
		rc.Certificate = Certificate{K: k, L: l, Q: q, Frobenius: inf, Spectral: inf,
			SpectralRoot: inf, TruncFrobenius: inf, TruncSpectral: inf}
		return rc
	}
	x := mat.NewDense(r, l, nil)
	for j, i := range idx {
		for t := 0; t < r; t++ {
			x.Set(t, j, e.u.At(i, t))
		}
	}
	// ‖Uᵀ·Sᵀ‖₂ ≤ 1: rounding in X is at the scale 1.
	c, dmin := e.core(x, k, l, q, 2*q+2, 2*q+1, 2*q+2, 1, 1)
	rc.Certificate = c
	if !c.FullRank {
		return rc
	}
	rc.PinvNorm = 1 / dmin
	s1 := e.s[0]
	a2, a1 := float64(2*q+2), float64(2*q+1)
	// In units of σ₁: tails of σ^{2·a2} and σ_k^{a1}.
	var tail float64
	for j := r - 1; j >= k; j-- {
		tail += math.Pow(e.s[j]/s1, 2*a2)
	}
	sk := math.Pow(e.s[k-1]/s1, a1)
	var sk1 float64
	if k < r {
		sk1 = e.s[k] / s1
	}
	tf := math.Sqrt(tail) * rc.PinvNorm / sk
	ts := math.Pow(sk1, a2) * rc.PinvNorm / sk
	rc.CoherenceFrobenius = s1 * math.Hypot(OptimalFrobenius(e.s, k)/s1, tf)
	rc.CoherenceSpectral = s1 * math.Hypot(sk1, ts)
	return rc
}

// ForSampling returns the certificate of the exact draw of a sampling
// Decomposer call on A (d from its Draw method): rows of A, or of Aᵀ if
// d.Trans. k is the target rank at which the bound is
// split (the sketch width is len(d.Indices)) and q the PowerIters of the
// call.
func (e *Exact) ForSampling(d *sampling.Draw, k, q int) RowCertificate {
	return e.op(d.Trans).RowSampling(d.Indices, k, q)
}

// ForGaussian returns the certificate of the exact test matrix of an rsvd
// Decomposer call on A: omega and trans as returned by its TestMatrix
// method; omega has as many rows as op(A) has columns. k and q are as for ForSampling.
func (e *Exact) ForGaussian(omega mat.Matrix, trans bool, k, q int) Certificate {
	return e.op(trans).Structural(omega, k, q)
}

func (e *Exact) checkKQ(k, q int) {
	if k < 1 || k > len(e.s) {
		paramPanic("k = %d, want 1 ≤ k ≤ min(m, n) = %d", k, len(e.s))
	}
	if q < 0 {
		paramPanic("q = %d < 0", q)
	}
}

// core evaluates the certificate from W (r×ℓ, ℓ = l): with W₁ = W[:k] and
// W₂ = W[k:], the bound's second term is ‖diag(σ₂^a2)·W₂·W₁†·diag(σ₁^−a1)‖
// and, for the HMT Thm 9.2 root form, ‖diag(σ₂^r2)·W₂·W₁†·diag(σ₁^−r1)‖
// raised to 1/(2q+1). scale bounds ‖W‖₂ (the scale of the rounding errors
// in W). It returns the smallest singular value of W₁.
func (e *Exact) core(w *mat.Dense, k, l, q int, a2, a1, r2, r1 int, scale float64) (Certificate, float64) {
	r := len(e.s)
	inf := math.Inf(1)
	c := Certificate{K: k, L: l, Q: q, Frobenius: inf, Spectral: inf, SpectralRoot: inf,
		TruncFrobenius: inf, TruncSpectral: inf}
	if l < k || e.s[k-1] == 0 {
		return c, 0
	}
	// W₁ = P·diag(d)·Qᵀ (thin SVD, k×ℓ); W₁† = Q·diag(1/d)·Pᵀ.
	var sv mat.SVD
	if !sv.Factorize(w.Slice(0, k, 0, l), mat.SVDThin) {
		return c, 0
	}
	d := sv.Values(nil)
	// Numerical rank: LAPACK's default pseudo-inverse cut-off,
	// max(k, ℓ)·ε·‖W‖, below which W₁† is dominated by rounding; the
	// scale is the larger of ‖W₁‖ and the caller's bound on ‖W‖, so that
	// a W₁ made only of rounding errors counts as rank deficient.
	if d[k-1] <= float64(max(k, l))*eps*max(d[0], scale) {
		return c, d[k-1]
	}
	c.FullRank = true
	var pm, qm mat.Dense
	sv.UTo(&pm)
	sv.VTo(&qm)
	s1 := e.s[0]
	tailF := OptimalFrobenius(e.s, k) / s1
	var sk1 float64
	if k < r {
		sk1 = e.s[k] / s1
	}
	if k == r {
		// Σ₂ is empty: Y captures range(A) exactly.
		c.Frobenius, c.Spectral, c.SpectralRoot, c.TruncFrobenius, c.TruncSpectral = 0, 0, 0, 0, 0
		return c, d[k-1]
	}
	// M = W₂·Q·diag(1/d)·Pᵀ ((r−k)×k).
	var wq, m mat.Dense
	wq.Mul(w.Slice(k, r, 0, l), &qm)
	for j := 0; j < k; j++ {
		for i := 0; i < r-k; i++ {
			wq.Set(i, j, wq.At(i, j)/d[j])
		}
	}
	m.Mul(&wq, pm.T())
	scaled := func(p2, p1 int) *mat.Dense {
		var t mat.Dense
		t.CloneFrom(&m)
		for i := 0; i < r-k; i++ {
			li := math.Pow(e.s[k+i]/s1, float64(p2))
			for j := 0; j < k; j++ {
				t.Set(i, j, t.At(i, j)*li/math.Pow(e.s[j]/s1, float64(p1)))
			}
		}
		return &t
	}
	t := scaled(a2, a1)
	tf := mat.Norm(t, 2) // for a matrix, gonum's norm 2 is Frobenius
	ts := spectralNorm(t)
	c.Frobenius = s1 * math.Hypot(tailF, tf)
	c.Spectral = s1 * math.Hypot(sk1, ts)
	ex := float64(2*q + 1)
	tr := spectralNorm(scaled(r2, r1))
	c.SpectralRoot = s1 * math.Pow(math.Pow(sk1, 2*ex)+tr*tr, 1/(2*ex))
	c.TruncFrobenius = s1 * math.Hypot(c.Frobenius/s1, tailF)
	c.TruncSpectral = s1 * math.Hypot(c.Spectral/s1, sk1)
	return c, d[k-1]
}

// eps is the unit roundoff of float64, 2⁻⁵³.
const eps = 0x1p-53

// spectralNorm returns the largest singular value of a.
func spectralNorm(a mat.Matrix) float64 {
	var sv mat.SVD
	if !sv.Factorize(a, mat.SVDNone) {
		return math.NaN()
	}
	return sv.Values(nil)[0]
}
