// Package skeleton is the part of the randomized algorithms that packages
// sampling (LoRAct's row-sampled QB) and rsvd (the Gaussian QB) share:
// validating a call (Prepare), scaling extreme inputs, finishing a QB or
// an SVD from an orthonormal basis of the sketch (FinishQB, FinishSVD),
// truncating by rank or by tolerance, and running a backend algorithm on
// a host matrix (HostQB, HostSVD). Each package supplies only its test
// matrix; everything here is written once against lowrank.Backend.
//
// Scratch matrices are typed slots (Slot) allocated at the largest shape
// asked so far and viewed at smaller ones, so a workspace used for many
// ranks holds the largest rank's scratch, not one matrix per rank.
package skeleton

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/vec"
	"github.com/loract/loract/lowrank"
)

// Slot is one scratch matrix of a workspace. Get returns an r×c view of a
// matrix allocated at the largest shape asked so far; growing frees the old
// matrix first. The zero value is an empty slot.
type Slot struct {
	m    lowrank.Matrix
	r, c int
}

// Get returns an r×c matrix on backend be whose contents are whatever the
// last user left.
func (s *Slot) Get(be lowrank.Backend, r, c int) (lowrank.Matrix, error) {
	if s.m == nil || r > s.r || c > s.c {
		nr, nc := max(r, s.r), max(c, s.c)
		s.Free(be)
		m, err := be.New(nr, nc)
		if err != nil {
			return nil, err
		}
		s.m, s.r, s.c = m, nr, nc
	}
	if r == s.r && c == s.c {
		return s.m, nil
	}
	return be.Slice(s.m, 0, r, 0, c), nil
}

// Free releases the slot's matrix.
func (s *Slot) Free(be lowrank.Backend) {
	if s.m != nil {
		be.Free(s.m)
	}
	*s = Slot{}
}

// Elements returns the number of elements the slot holds.
func (s *Slot) Elements() int { return s.r * s.c }

// Scratch holds the slots of the shared steps. The zero value is empty;
// Close releases every slot.
type Scratch struct {
	Omega, Y Slot // the test matrix and the sketch
	BT       Slot // Bᵀ of the full-width QB (s×ℓ)
	Gram     Slot // ℓ×ℓ Gram matrix of B, or R of a QR
	U, V     Slot // ℓ×ℓ singular vectors
	A        Slot // a scaled copy of an input of extreme magnitude
	lam      []float64
}

func (sc *Scratch) slots() []*Slot {
	return []*Slot{&sc.Omega, &sc.Y, &sc.BT, &sc.Gram, &sc.U, &sc.V, &sc.A}
}

// Close frees every slot on be.
func (sc *Scratch) Close(be lowrank.Backend) {
	for _, s := range sc.slots() {
		s.Free(be)
	}
}

// Elements returns the number of elements the slots hold.
func (sc *Scratch) Elements() int {
	n := 0
	for _, s := range sc.slots() {
		n += s.Elements()
	}
	return n
}

func (sc *Scratch) values(l int) []float64 {
	if cap(sc.lam) < l {
		sc.lam = make([]float64, l)
	}
	return sc.lam[:l]
}

// Problem is a validated call of a randomized method on op(A).
type Problem struct {
	A     lowrank.Matrix
	M, N  int  // the shape of A
	Trans bool // op(A) = Aᵀ
	P, S  int  // op(A) is P×S
	K, L  int  // target rank and sketch width, 1 ≤ K ≤ L ≤ P
	// Scale is the power of two s by which the rows sampled from A and
	// every operand multiplied by A are multiplied, so that the sketch
	// stays near 1 in magnitude: 1 unless max|a_ij| is outside
	// [2⁻¹⁶, 2¹⁶] (see MulScaled).
	Scale float64
	// Copied is 1, or for an input with max|a_ij| outside [2⁻¹⁰⁰, 2¹⁰⁰]
	// the power of two c by which A (then a scaled copy of the caller's
	// matrix, in the scratch) differs from the caller's: the results are
	// unscaled by FinishQB and FinishSVD.
	Copied float64
	// SquaredNormA is ‖s·A₀‖_F², A₀ the caller's matrix and s =
	// NormScale().
	SquaredNormA float64
	// Tol, if > 0, asks FinishQB for the smallest rank ≤ K whose error is
	// at most Tol·‖A‖_F.
	Tol float64
	// Spectrum asks FinishQB for the squared singular values of the
	// full-width B in lowrank.Factors.Spectrum, even when ℓ = K and no
	// tolerance would otherwise skip the small eigen-decomposition.
	Spectrum bool
	// Flipped records that A is a view of the transpose of the caller's
	// matrix (lowrank.Transposer; see FlipTo): op(A) is then the caller's
	// op for !Trans, and the factors say so (FactorTrans).
	Flipped bool
}

// FactorTrans returns the lowrank.Factors.Trans of the problem's factors:
// whether they approximate the transpose of the caller's matrix.
func (pr Problem) FactorTrans() bool { return pr.Trans != pr.Flipped }

// FlipTo re-expresses pr through at, a view of the transpose of pr.A
// sharing its storage: the same op(A), the same sketch and draw, with
// Trans (and the shape of A) the other way. The factors are unchanged but
// for FactorTrans, which stays the caller's.
func (pr Problem) FlipTo(at lowrank.Matrix) Problem {
	pr.A, pr.M, pr.N = at, pr.N, pr.M
	pr.Trans, pr.Flipped = !pr.Trans, !pr.Flipped
	return pr
}

// NormScale returns the power of two for which the squared norms of the
// problem are held (lowrank.Factors.NormScale).
func (pr Problem) NormScale() float64 {
	if pr.Copied != 1 {
		return pr.Copied
	}
	return pr.Scale
}

// safeLo and safeHi bound max|a_ij| for which no scaling is applied: the
// sketch Y = A·A_Sᵀ then holds numbers of size ≤ 2³²·n, far inside
// float32's range (the GPU's working precision) and float64's. Up to
// copyLo and copyHi, a power-of-two scale s (exact in binary arithmetic)
// applied to the operands of the products brings the sketch near 1: the
// operands then lie within 2^±100, and every product with A within
// max|a_ij|·s·n, representable in float32 and float64. Beyond, operands
// near 1/max|a_ij| would leave float32's range (and products of
// subnormal numbers lose their precision), so the input is copied, scaled
// by a power of two, into the scratch and decomposed from there.
const (
	safeLo = 0x1p-16
	safeHi = 0x1p16
	copyLo = 0x1p-100
	copyHi = 0x1p100
)

// Params are the options every randomized method has, and the result of
// checking the method's own options (Err).
type Params struct {
	Oversample, PowerIters int
	Tolerance              float64
	Spectrum               bool
	Err                    error
}

// Prepare validates a call of rank k on a (a matrix of be) with the
// parameters p in orientation o, reads a once for its norm and largest
// element, and returns the problem; an input of extreme magnitude (see
// copyLo) is copied, scaled, into sc. The sketch width is ℓ = k +
// Oversample, capped at min(m, n) without overflow. Errors: p.Err,
// ErrEmpty, ErrRank, ErrOption (negative oversampling or power iterations,
// a tolerance outside [0, 1), an unknown orientation), ErrShape (a
// malformed *lowrank.Dense32), and a *lowrank.NotFiniteError for the first
// NaN or ±Inf element.
//
// Prepare is Shape followed by Accept on SquaredNorm's read; a method
// whose backend reads a for another purpose anyway (lowrank.GatherNormer)
// calls the two itself around that read.
func Prepare(sc *Scratch, be lowrank.Backend, a lowrank.Matrix, k int, p Params, o lowrank.Orientation) (Problem, error) {
	pr, err := Shape(a, k, p, o)
	if err != nil {
		return Problem{}, err
	}
	sq, amax, err := be.SquaredNorm(a, 1)
	if err != nil {
		return Problem{}, err
	}
	if err := Accept(sc, be, &pr, sq, amax); err != nil {
		return Problem{}, err
	}
	return pr, nil
}

// Shape is Prepare without the read of a: it validates the call (every
// error of Prepare except the input's values) and returns the problem with
// Scale and Copied 1 and SquaredNormA unset, for Accept to complete.
func Shape(a lowrank.Matrix, k int, p Params, o lowrank.Orientation) (Problem, error) {
	if p.Err != nil {
		return Problem{}, p.Err
	}
	over := p.Oversample
	if over < 0 || p.PowerIters < 0 {
		return Problem{}, fmt.Errorf("%w: Oversample = %d and PowerIters = %d must be ≥ 0", lowrank.ErrOption, over, p.PowerIters)
	}
	if err := CheckTolerance(p.Tolerance); err != nil {
		return Problem{}, err
	}
	if d, ok := a.(*lowrank.Dense32); ok {
		if err := d.Check(); err != nil {
			return Problem{}, err
		}
	}
	m, n := a.Dims()
	if err := CheckRank(m, n, k); err != nil {
		return Problem{}, err
	}
	trans, err := o.Trans(m, n)
	if err != nil {
		return Problem{}, err
	}
	pr := Problem{A: a, M: m, N: n, Trans: trans, P: m, S: n, K: k, Tol: p.Tolerance, Scale: 1, Copied: 1, Spectrum: p.Spectrum}
	if trans {
		pr.P, pr.S = n, m
	}
	// ℓ ≤ min(P, S): a wider sketch cannot add directions (rank A ≤
	// min(P, S)), and its normalisation (QR or LU of the S×ℓ Ω) needs
	// S ≥ ℓ.
	pr.L = k + min(over, min(pr.P, pr.S)-k)
	return pr, nil
}

// Accept completes the input check of pr from one read of pr.A: sq =
// ‖A‖_F² and amax = max |a_ij| as SquaredNorm(A, 1) returns them. It
// returns a *lowrank.NotFiniteError for the first NaN or ±Inf element
// (found by FindNonFinite, read only then), sets pr.Scale and
// pr.SquaredNormA (a second read when A is scaled), and for an input of
// extreme magnitude replaces pr.A by a scaled copy in sc (pr.Copied).
func Accept(sc *Scratch, be lowrank.Backend, pr *Problem, sq, amax float64) error {
	var err error
	if pr.SquaredNormA, pr.Scale, err = checkRead(be, pr.A, sq, amax); err != nil {
		return err
	}
	pr.Copied = 1
	if amax := 1 / pr.Scale; pr.Scale != 1 && (amax < 2*copyLo || amax > copyHi) {
		return scaledCopy(sc, be, pr)
	}
	return nil
}

// scaledCopy replaces pr.A, an input outside [copyLo, copyHi] in
// magnitude, by pr.Scale·A in the scratch slot sc.A, and records the copy
// (pr.Copied = pr.Scale, pr.Scale = 1).
func scaledCopy(sc *Scratch, be lowrank.Backend, pr *Problem) error {
	c, err := sc.A.Get(be, pr.M, pr.N)
	if err != nil {
		return err
	}
	if err := be.Copy(c, pr.A); err != nil {
		return err
	}
	if err := ScaleBy(be, c, pr.Scale, 1); err != nil {
		return err
	}
	pr.A, pr.Copied, pr.Scale = c, pr.Scale, 1
	return nil
}

// float32Unit is the unit roundoff of float32, 2⁻²⁴.
const float32Unit = 0x1p-24

// SketchQR orthonormalises the sketch y (P×ℓ) of pr in place, as
// be.QR(y, nil) does, except that for a float32 input (*lowrank.Dense32)
// on a backend with lowrank.TolerantQRer, Q need only be orthonormal to
// ‖QᵀQ − I‖_F ≤ 2⁻²⁴. That is enough: the float32 products that use Q
// (B = Qᵀ·op(A), and the power iterations' op(A)ᵀ·Q) round it to float32,
// Q₃₂ = Q + E with |E| ≤ u₃₂·|Q|, which by itself moves QᵀQ by up to
// 2·‖E‖_F·‖Q‖₂ + ‖E‖_F² ≈ 2·√ℓ·u₃₂ (u₃₂ = 2⁻²⁴): sixteen times the
// tolerance at ℓ = 64. A scaled copy of an extreme input (pr.Copied ≠ 1)
// is in the working precision and gets QR, and so does the sketch on a
// CPU backend with WideFloat32, whose products are float64 (its QRTol).
func SketchQR(be lowrank.Backend, pr Problem, y lowrank.Matrix) error {
	if _, ok := pr.A.(*lowrank.Dense32); ok {
		if tq, ok := be.(lowrank.TolerantQRer); ok {
			return tq.QRTol(y, nil, float32Unit)
		}
	}
	return be.QR(y, nil)
}

// SketchQRBatch is SketchQR(be, pr[i], y[i]) for every i: the backend's
// own QRBatch where it has one (lowrank.Batcher; its QR is its own), else
// one SketchQR at a time, which is what Batch's loop would do with QR in
// place of SketchQR.
func SketchQRBatch(be lowrank.Backend, pr []Problem, y []lowrank.Matrix) error {
	if bt, ok := be.(lowrank.Batcher); ok {
		return bt.QRBatch(y)
	}
	for i := range y {
		if err := SketchQR(be, pr[i], y[i]); err != nil {
			return err
		}
	}
	return nil
}

// CheckRank returns an error wrapping lowrank.ErrRank unless
// 1 ≤ k ≤ min(m, n), and one wrapping lowrank.ErrEmpty if m or n is zero.
func CheckRank(m, n, k int) error {
	if m <= 0 || n <= 0 {
		return fmt.Errorf("%w: %d×%d", lowrank.ErrEmpty, m, n)
	}
	if k < 1 || k > min(m, n) {
		return fmt.Errorf("%w: k = %d, want 1 ≤ k ≤ min(m, n) = %d", lowrank.ErrRank, k, min(m, n))
	}
	return nil
}

// CheckInput validates a before an algorithm uses it: an error wrapping
// lowrank.ErrEmpty for an empty matrix and a *lowrank.NotFiniteError for
// the first NaN or ±Inf element. It returns the scale of the products
// (see Problem.Scale) and ‖scale·a‖_F². It costs one read of a, two when
// a is scaled.
func CheckInput(be lowrank.Backend, a lowrank.Matrix) (squaredNorm, scale float64, err error) {
	m, n := a.Dims()
	if m == 0 || n == 0 {
		return 0, 0, fmt.Errorf("%w: %d×%d", lowrank.ErrEmpty, m, n)
	}
	sq, amax, err := be.SquaredNorm(a, 1)
	if err != nil {
		return 0, 0, err
	}
	return checkRead(be, a, sq, amax)
}

// checkRead is CheckInput after the read: sq and amax are SquaredNorm(a,
// 1)'s results.
func checkRead(be lowrank.Backend, a lowrank.Matrix, sq, amax float64) (squaredNorm, scale float64, err error) {
	if math.IsNaN(amax) || math.IsInf(amax, 0) || math.IsNaN(sq) {
		i, j, v, found, err := be.FindNonFinite(a)
		if err != nil {
			return 0, 0, err
		}
		if found {
			return 0, 0, &lowrank.NotFiniteError{Row: i, Col: j, Value: v}
		}
		return 0, 0, fmt.Errorf("%w: the largest element is %v but no element is NaN or ±Inf", lowrank.ErrNotFinite, amax)
	}
	if amax == 0 || (amax >= safeLo && amax <= safeHi) {
		return sq, 1, nil
	}
	scale = vec.ScaleOf(amax)
	if sq, _, err = be.SquaredNorm(a, scale); err != nil {
		return 0, 0, err
	}
	return sq, scale, nil
}

// ScaleBy multiplies m by s^times, s a power of two, applying the factor
// in steps that stay within float64's range (s² may not be representable).
func ScaleBy(be lowrank.Backend, m lowrank.Matrix, s float64, times int) error {
	if s == 1 {
		return nil
	}
	_, e := math.Frexp(s)
	e = (e - 1) * times // s = 2^(e−1)
	for e != 0 {
		step := min(max(e, -1000), 1000)
		if err := be.Scale(m, math.Ldexp(1, step)); err != nil {
			return err
		}
		e -= step
	}
	return nil
}

// MulScaled sets dst = op(A)·(s·src), or op(A)ᵀ·(s·src) if t, with s =
// pr.Scale, scaling src (scratch) in place first: for src near 1 the
// operand is within 2^±100 and the product near 1 (a power of two scales
// exactly).
func MulScaled(be lowrank.Backend, pr Problem, dst, src lowrank.Matrix, t bool) error {
	if err := ScaleBy(be, src, pr.Scale, 1); err != nil {
		return err
	}
	return be.Mul(dst, 1, pr.A, pr.Trans != t, src, false, 0)
}

// Ensure returns m if it is non-nil and r×c, and otherwise frees it and
// returns a new r×c matrix of be.
func Ensure(be lowrank.Backend, m lowrank.Matrix, r, c int) (lowrank.Matrix, error) {
	if m != nil {
		if mr, mc := m.Dims(); mr == r && mc == c {
			return m, nil
		}
		be.Free(m)
	}
	return be.New(r, c)
}

// CheckTolerance returns an error wrapping lowrank.ErrOption unless
// tol is 0 (no tolerance) or in (0, 1).
func CheckTolerance(tol float64) error {
	if tol == 0 || (tol > 0 && tol < 1) {
		return nil
	}
	return fmt.Errorf("%w: tolerance %v outside [0, 1)", lowrank.ErrOption, tol)
}

// FinishQB writes the QB of op(A) from q, an orthonormal P×ℓ basis of the
// sketch, into dst: B = qᵀ·op(A), truncated when ℓ > k to the k leading
// left singular vectors of B: with B·Bᵀ = W·Λ·Wᵀ, Q' = q·W_k and
// B' = W_kᵀ·B, again a QB since W is orthonormal. With pr.Tol > 0 the rank is the smallest
// k ≤ pr.K meeting the tolerance (RankForTolerance); if none does, dst
// holds the rank-pr.K QB and the error wraps lowrank.ErrTolerance. dst's
// matrices are reused when their shapes fit. Whenever the ℓ×ℓ
// eigen-decomposition is computed (ℓ > k, a tolerance, or pr.Spectrum),
// its eigenvalues σ_i(s·B)² are copied into dst.Spectrum (reusing its
// capacity); otherwise dst.Spectrum is emptied.
func FinishQB(sc *Scratch, be lowrank.Backend, dst *lowrank.Factors, pr Problem, q lowrank.Matrix) error {
	_, l := q.Dims()
	if l == pr.K && pr.Tol == 0 && !pr.Spectrum {
		if err := plainQB(be, dst, pr, q); err != nil {
			return err
		}
		return setNorms(be, dst, pr)
	}
	bt, err := fullBT(sc, be, pr, q)
	if err != nil {
		return err
	}
	w, lam, err := eigenB(sc, be, pr, bt)
	if err != nil {
		return err
	}
	k, met := pr.K, true
	if pr.Tol > 0 {
		k, met = RankForTolerance(pr.SquaredNormA, lam[:pr.K], pr.Tol)
	}
	if err := truncateWith(be, dst, pr, q, bt, w, k); err != nil {
		return err
	}
	dst.Spectrum = append(dst.Spectrum[:0], lam...)
	if !met {
		return fmt.Errorf("%w: relative error %.3g > %.3g at rank %d", lowrank.ErrTolerance, dst.RelError(), pr.Tol, k)
	}
	return nil
}

// fullBT returns Bᵀ = op(A)ᵀ·q (S×ℓ) in the slot sc.BT.
func fullBT(sc *Scratch, be lowrank.Backend, pr Problem, q lowrank.Matrix) (lowrank.Matrix, error) {
	_, l := q.Dims()
	bt, err := sc.BT.Get(be, pr.S, l)
	if err != nil {
		return nil, err
	}
	return bt, be.Mul(bt, 1, pr.A, !pr.Trans, q, false, 0)
}

// setNorms sets dst's orientation and squared norms, and for a scaled
// copy undoes the scale of B (computed from the copy).
func setNorms(be lowrank.Backend, dst *lowrank.Factors, pr Problem) error {
	dst.Trans = pr.FactorTrans()
	dst.NormScale = pr.NormScale()
	dst.SquaredNormA = pr.SquaredNormA
	sq, _, err := be.SquaredNorm(dst.B, pr.Scale)
	if err != nil {
		return err
	}
	dst.SquaredNormB = sq
	if pr.Copied == 1 {
		return nil
	}
	if err := ScaleBy(be, dst.B, 1/pr.Copied, 1); err != nil {
		return err
	}
	return checkRepresentable(be, dst.B, "B")
}

// checkRepresentable returns an error wrapping lowrank.ErrNotFinite if m
// holds ±Inf: the factor of an input near the top of the floating-point
// range (B = QᵀA has entries up to √p·max|a_ij|) that the working
// precision cannot hold.
func checkRepresentable(be lowrank.Backend, m lowrank.Matrix, name string) error {
	_, mx, err := be.SquaredNorm(m, 1)
	if err != nil {
		return err
	}
	if math.IsInf(mx, 0) || math.IsNaN(mx) {
		return fmt.Errorf("%w: the factor %s of this input overflows the working precision (its entries exceed max|a_ij| by up to √(rows))", lowrank.ErrNotFinite, name)
	}
	return nil
}

// eigenB computes the eigen-decomposition B·Bᵀ = W·Λ·Wᵀ of the ℓ×S B held
// as bt = Bᵀ (scaled in place by pr.Scale, which leaves W unchanged and
// multiplies Λ by Scale²), returning W (ℓ×ℓ, in sc.U) and Λ = σ(s·B)²,
// non-increasing.
func eigenB(sc *Scratch, be lowrank.Backend, pr Problem, bt lowrank.Matrix) (w lowrank.Matrix, lam []float64, err error) {
	_, l := bt.Dims()
	if err := ScaleBy(be, bt, pr.Scale, 1); err != nil {
		return nil, nil, err
	}
	g, err := sc.Gram.Get(be, l, l)
	if err != nil {
		return nil, nil, err
	}
	if err := be.Mul(g, 1, bt, true, bt, false, 0); err != nil {
		return nil, nil, err
	}
	if w, err = sc.U.Get(be, l, l); err != nil {
		return nil, nil, err
	}
	lam = sc.values(l)
	if se, ok := be.(lowrank.SymEigener); ok {
		return w, lam, se.SymEig(w, lam, g)
	}
	v, err := sc.V.Get(be, l, l)
	if err != nil {
		return nil, nil, err
	}
	// G is symmetric positive semidefinite, so its SVD is its
	// eigendecomposition.
	return w, lam, be.SVD(w, lam, v, g)
}

// truncateWith writes Q' = q·W_k and B' = W_kᵀ·B into dst: since W is
// orthonormal, Q' is orthonormal and B' = Q'ᵀ·op(A), a valid QB whatever
// the accuracy of W. bt holds s·Bᵀ (see eigenB).
func truncateWith(be lowrank.Backend, dst *lowrank.Factors, pr Problem, q, bt, w lowrank.Matrix, k int) error {
	var err error
	if dst.Q, err = Ensure(be, dst.Q, pr.P, k); err != nil {
		return err
	}
	if dst.B, err = Ensure(be, dst.B, k, pr.S); err != nil {
		return err
	}
	_, l := q.Dims()
	wk := be.Slice(w, 0, l, 0, k)
	if err := be.Mul(dst.Q, 1, q, false, wk, false, 0); err != nil {
		return err
	}
	// B' = W_kᵀ·(s·B)/s: the product of scaled numbers, then the scale
	// undone (alpha is applied after the accumulation).
	if err := be.Mul(dst.B, 1/pr.Scale, wk, true, bt, true, 0); err != nil {
		return err
	}
	return setNorms(be, dst, pr)
}

// RankForTolerance returns the smallest k ≤ len(lam) with
//
//	(normA2 − Σ_{i≤k} λ_i) ≤ tol²·normA2,
//
// the rank whose QB error ‖A − Q_kQ_kᵀA‖_F ≤ tol·‖A‖_F when λ holds the
// squared singular values of B = QᵀA (‖A − Q_kQ_kᵀA‖_F² = ‖A‖_F² −
// Σ_{i≤k} σ_i(B)²), and whether that tolerance is met; if not, k is
// len(lam) and met is false. normA2 and λ must be of the same multiple of A.
func RankForTolerance(normA2 float64, lam []float64, tol float64) (k int, met bool) {
	target := tol * tol * normA2
	var kept float64
	for i, v := range lam {
		kept += v
		if normA2-kept <= target {
			return i + 1, true
		}
	}
	return len(lam), normA2-kept <= target
}

// FinishSVD returns the rank-k SVD U (m×k), S, V (n×k) of A itself from
// q, an orthonormal P×ℓ basis of the sketch of op(A): Bᵀ = op(A)ᵀ·q, then
// Bᵀ = Q₂·R (thin QR), R = U_R·Σ·V_Rᵀ, so op(A) ≈ (q·V_R)·Σ·(Q₂·U_R)ᵀ;
// the orientation is undone. The singular values are exact to the
// accuracy of the small SVD, the factors orthonormal to that of the QRs.
// U and V are new matrices of be, owned by the caller.
func FinishSVD(sc *Scratch, be lowrank.Backend, pr Problem, q lowrank.Matrix) (u, v lowrank.Matrix, s []float64, err error) {
	_, l := q.Dims()
	if pr.S < l {
		return nil, nil, nil, fmt.Errorf("%w: the SVD form needs ℓ = %d ≤ %d columns of op(A)", lowrank.ErrRank, l, pr.S)
	}
	bt, err := fullBT(sc, be, pr, q)
	if err != nil {
		return nil, nil, nil, err
	}
	// The QR of s·Bᵀ: Q₂ is that of Bᵀ, R is s·R.
	if err := ScaleBy(be, bt, pr.Scale, 1); err != nil {
		return nil, nil, nil, err
	}
	r, err := sc.Gram.Get(be, l, l)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := be.QR(bt, r); err != nil {
		return nil, nil, nil, err
	}
	ur, err := sc.U.Get(be, l, l)
	if err != nil {
		return nil, nil, nil, err
	}
	vr, err := sc.V.Get(be, l, l)
	if err != nil {
		return nil, nil, nil, err
	}
	sv := make([]float64, l)
	if err := be.SVD(ur, sv, vr, r); err != nil {
		return nil, nil, nil, err
	}
	for i := range sv {
		sv[i] /= pr.Scale * pr.Copied
	}
	if math.IsInf(sv[0], 0) {
		return nil, nil, nil, fmt.Errorf("%w: the largest singular value of this input, %g·2^%d, overflows float64", lowrank.ErrNotFinite, sv[0]*pr.Scale*pr.Copied, -ilogb(pr.Scale*pr.Copied))
	}
	// Bᵀ = Q₂·R = Q₂·U_R·Σ·V_Rᵀ, so B = V_R·Σ·(Q₂·U_R)ᵀ.
	k := pr.K
	uo, vo := pr.P, pr.S
	if u, err = be.New(uo, k); err != nil {
		return nil, nil, nil, err
	}
	if v, err = be.New(vo, k); err != nil {
		be.Free(u)
		return nil, nil, nil, err
	}
	if err := be.Mul(u, 1, q, false, be.Slice(vr, 0, l, 0, k), false, 0); err != nil {
		return nil, nil, nil, err
	}
	if err := be.Mul(v, 1, bt, false, be.Slice(ur, 0, l, 0, k), false, 0); err != nil {
		return nil, nil, nil, err
	}
	if pr.Trans {
		u, v = v, u
	}
	return u, v, sv[:k], nil
}

func ilogb(x float64) int {
	_, e := math.Frexp(x)
	return e - 1
}

// Flip returns the orientation to use on the stored matrix when the
// caller's matrix is its transpose (t): an explicit orientation is
// swapped, OrientAuto stays (it depends on the shape only).
func Flip(o lowrank.Orientation, t bool) lowrank.Orientation {
	if !t {
		return o
	}
	switch o {
	case lowrank.OrientRows:
		return lowrank.OrientCols
	case lowrank.OrientCols:
		return lowrank.OrientRows
	}
	return o
}

// Method is one randomized algorithm as the skeleton drives it: a backend
// and its scratch, the orientation asked for, and Basis, which validates a
// call and returns the problem and an orthonormal P×ℓ basis of the sketch
// of op(A) (a scratch matrix). Packages sampling and rsvd supply Basis; the
// rest is written here once.
type Method struct {
	Backend     lowrank.Backend
	Scratch     *Scratch
	Orientation lowrank.Orientation
	Basis       func(a lowrank.Matrix, k int, o lowrank.Orientation) (Problem, lowrank.Matrix, error)
}

// QBTo computes the rank-k QB of a into dst (FinishQB on the basis).
func (m Method) QBTo(dst *lowrank.Factors, a lowrank.Matrix, k int) error {
	pr, q, err := m.Basis(a, k, m.Orientation)
	if err != nil {
		return err
	}
	return FinishQB(m.Scratch, m.Backend, dst, pr, q)
}

// SVD computes the rank-k SVD U (m×k), S, V (n×k) of a (FinishSVD on the
// basis).
func (m Method) SVD(a lowrank.Matrix, k int) (u, v lowrank.Matrix, s []float64, err error) {
	pr, q, err := m.Basis(a, k, m.Orientation)
	if err != nil {
		return nil, nil, nil, err
	}
	return FinishSVD(m.Scratch, m.Backend, pr, q)
}

// HostQB runs a method on the CPU backend for a host matrix a: a
// *mat.Dense or *lowrank.Dense32 is used in place, and so is a
// mat.Transpose of either (the method then runs on the stored matrix with
// the orientation flipped); any other mat.Matrix is copied. The result is
// oriented to a. A result that comes with lowrank.ErrTolerance is returned
// beside that error.
func HostQB(a mat.Matrix, k int, method func(be lowrank.Backend) Method) (*lowrank.QB, error) {
	h, t := cpu.HostMatrix(a)
	m := method(cpu.Backend{})
	m.Orientation = Flip(m.Orientation, t)
	var f lowrank.Factors
	err := m.QBTo(&f, h, k)
	if err != nil && !errors.Is(err, lowrank.ErrTolerance) {
		return nil, err
	}
	return lowrank.NewQB(f.Q.(*mat.Dense), f.B.(*mat.Dense), f.Trans != t), err
}

// HostSVD is HostQB for the SVD form.
func HostSVD(a mat.Matrix, k int, method func(be lowrank.Backend) Method) (*lowrank.SVD, error) {
	h, t := cpu.HostMatrix(a)
	m := method(cpu.Backend{})
	m.Orientation = Flip(m.Orientation, t)
	u, v, s, err := m.SVD(h, k)
	if err != nil {
		return nil, err
	}
	if t {
		u, v = v, u
	}
	return lowrank.NewSVD(u.(*mat.Dense), s, v.(*mat.Dense)), nil
}

// Batch returns be's lowrank.Batcher, or one that calls be's single
// operations in turn (with the same results).
func Batch(be lowrank.Backend) lowrank.Batcher {
	if bt, ok := be.(lowrank.Batcher); ok {
		return bt
	}
	return loopBatch{be}
}

// loopBatch is lowrank.Batcher by single operations.
type loopBatch struct{ be lowrank.Backend }

func (lb loopBatch) GatherNormBatch(dst, a []lowrank.Matrix, trans bool, idx [][]int, sumSq, maxAbs []float64) error {
	gn, fused := lb.be.(lowrank.GatherNormer)
	for i := range dst {
		var err error
		if fused {
			sumSq[i], maxAbs[i], err = gn.GatherNorm(dst[i], a[i], trans, idx[i])
		} else if err = lb.be.Gather(dst[i], a[i], trans, idx[i]); err == nil {
			sumSq[i], maxAbs[i], err = lb.be.SquaredNorm(a[i], 1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (lb loopBatch) QRBatch(a []lowrank.Matrix) error {
	for _, m := range a {
		if err := lb.be.QR(m, nil); err != nil {
			return err
		}
	}
	return nil
}

func (lb loopBatch) SquaredNormBatch(m []lowrank.Matrix, scale float64, sumSq, maxAbs []float64) error {
	for i, x := range m {
		var err error
		if sumSq[i], maxAbs[i], err = lb.be.SquaredNorm(x, scale); err != nil {
			return err
		}
	}
	return nil
}

func (lb loopBatch) MulBatch(c []lowrank.Matrix, alpha float64, a []lowrank.Matrix, ta bool, b []lowrank.Matrix, tb bool, beta float64) error {
	for i := range c {
		if err := lb.be.Mul(c[i], alpha, a[i], ta, b[i], tb, beta); err != nil {
			return err
		}
	}
	return nil
}

func (lb loopBatch) CopyBatch(dst, src []lowrank.Matrix) error {
	for i := range dst {
		if err := lb.be.Copy(dst[i], src[i]); err != nil {
			return err
		}
	}
	return nil
}

// Plain reports whether FinishQB takes its plain path for pr with a sketch
// of width l (no truncation, tolerance or spectrum) and the norms need no
// unscaling: the case FinishQBBatch batches.
func Plain(pr Problem, l int) bool {
	return PlainShape(pr, l) && pr.Scale == 1 && pr.Copied == 1
}

// FinishQBBatch is FinishQB(sc, be, dst[i], pr[i], q[i]) for every i, its
// error into errs[i]. The problems (all of one shape and orientation) for
// which Plain holds are finished together: Q copied by one CopyBatch, B =
// Qᵀ·op(A) by one MulBatch and ‖B‖² read by one SquaredNormBatch; the
// others one by one. A backend error of a batched call is every plain
// item's error.
func FinishQBBatch(sc *Scratch, be lowrank.Backend, dst []*lowrank.Factors, pr []Problem, q []lowrank.Matrix, errs []error) {
	var at []int
	for i := range dst {
		_, l := q[i].Dims()
		if !Plain(pr[i], l) {
			errs[i] = FinishQB(sc, be, dst[i], pr[i], q[i])
			continue
		}
		at = append(at, i)
	}
	sq := make([]float64, 2*len(at))
	done, err := QueuePlainQBs(be, dst, pr, q, at, errs, sq, nil)
	for j, i := range done {
		if err != nil {
			errs[i] = err
			continue
		}
		SetPlainNorms(dst[i], pr[i], sq[j])
	}
}

// QueuePlainQBs makes FinishQBBatch's batched calls for the items at,
// which must have Plain's shape (ℓ = K, no tolerance, no spectrum; their
// scale is the caller's to check): Q = q[i] copied by one CopyBatch, B =
// Qᵀ·op(A) by one MulBatch, and ‖B‖² and max|B| into sq[j] and
// sq[len(done)+j] (sq of at least 2·len(at) elements) by one
// SquaredNormBatch — or by d's SquaredNormBatchDeferred where d is not nil,
// whose Collect then writes sq. It returns the items done, in sq's order:
// an item whose factors could not be allocated gets its error in errs and
// is left out. The error is that of a batched call, and then every done
// item's.
func QueuePlainQBs(be lowrank.Backend, dst []*lowrank.Factors, pr []Problem, q []lowrank.Matrix, at []int, errs []error, sq []float64, d lowrank.Deferrer) (done []int, err error) {
	var qs, bs, as, ys []lowrank.Matrix
	for _, i := range at {
		f := dst[i]
		if errs[i] = ensureQB(be, f, pr[i]); errs[i] == nil {
			qs, bs, as, ys = append(qs, f.Q), append(bs, f.B), append(as, pr[i].A), append(ys, q[i])
			done = append(done, i)
		}
	}
	if len(bs) == 0 {
		return done, nil
	}
	bt := Batch(be)
	if err := bt.CopyBatch(qs, ys); err != nil {
		return done, err
	}
	if err := bt.MulBatch(bs, 1, ys, true, as, pr[done[0]].Trans, 0); err != nil {
		return done, err
	}
	n := len(bs)
	if d != nil {
		return done, d.SquaredNormBatchDeferred(bs, 1, sq[:n], sq[n:2*n])
	}
	return done, bt.SquaredNormBatch(bs, 1, sq[:n], sq[n:2*n])
}

// SetPlainNorms records in f, whose Q and B QueuePlainQBs computed for pr
// (accepted: its scale and ‖A‖² known), the orientation, norm scale and
// squared norms, ‖B‖² being sqB.
func SetPlainNorms(f *lowrank.Factors, pr Problem, sqB float64) {
	f.Trans, f.NormScale, f.SquaredNormA, f.SquaredNormB = pr.FactorTrans(), pr.NormScale(), pr.SquaredNormA, sqB
}

// PlainShape reports whether pr with a sketch of width l has Plain's shape
// (no truncation, tolerance or spectrum), whatever its scale: the items
// that a batch may finish together before their input checks are read.
func PlainShape(pr Problem, l int) bool { return l == pr.K && pr.Tol == 0 && !pr.Spectrum }

// ensureQB gives dst a P×K Q and a K×S B (reused when they have those
// shapes) and no spectrum: FinishQB's plain path before its products.
func ensureQB(be lowrank.Backend, dst *lowrank.Factors, pr Problem) error {
	dst.Spectrum = dst.Spectrum[:0]
	var err error
	if dst.Q, err = Ensure(be, dst.Q, pr.P, pr.K); err != nil {
		return err
	}
	dst.B, err = Ensure(be, dst.B, pr.K, pr.S)
	return err
}

// plainQB is FinishQB's plain path before the norms: Q = q, B = Qᵀ·op(A).
func plainQB(be lowrank.Backend, dst *lowrank.Factors, pr Problem, q lowrank.Matrix) error {
	if err := ensureQB(be, dst, pr); err != nil {
		return err
	}
	if err := be.Copy(dst.Q, q); err != nil {
		return err
	}
	return be.Mul(dst.B, 1, q, true, pr.A, pr.Trans, 0)
}
