package rsvd

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// AdaptiveOptions configures AdaptiveQB. It is read-only. A nil
// *AdaptiveOptions means the zero value: block size 16, maximum rank
// min(m, n), no power iterations, automatic orientation, seed 0.
type AdaptiveOptions struct {
	// BlockSize is the number of Gaussian columns added per step; 0 means 16.
	BlockSize int
	// MaxRank caps the rank; 0 means min(m, n).
	MaxRank int
	// PowerIters is the number of power iterations per block.
	PowerIters int
	// Orientation chooses op(A).
	Orientation lowrank.Orientation
	// Seed determines the test matrices: block i's stream is seeded by the
	// i-th output of a PCG seeded with (Seed, Seed).
	Seed uint64
}

// AdaptiveQB returns a QB of a whose relative Frobenius error is at most
// tol, with a rank as small as the sketch allows: the blocked randomized QB
// of Martinsson and Voronin (2016) with the error indicator of Yu, Gu and
// Li (2018). Block i draws a Gaussian Ω_i, forms Y_i = (I − QQᵀ)·op(A)·Ω_i
// (projected twice against the basis so far, for orthogonality),
// Q_i = qr(Y_i), B_i = Q_iᵀ·op(A), and stops as soon as
// ‖A‖_F² − ‖B‖_F² ≤ tol²·‖A‖_F². The basis is then trimmed to the
// smallest k for which the discarded singular values of B plus the
// remaining error still meet tol.
//
// The stopping test subtracts nearly equal numbers, so tol below about
// 1e-7 (float64) is not resolved; AdaptiveQB returns an error wrapping
// lowrank.ErrOption for tol ≤ MinTolerance or tol ≥ 1. If MaxRank is
// reached before tol is met, the rank-MaxRank QB is returned with an error
// wrapping lowrank.ErrTolerance.
func AdaptiveQB(a mat.Matrix, tol float64, opts *AdaptiveOptions) (*lowrank.QB, error) {
	return skeleton.HostQB(a, 0, func(be lowrank.Backend) skeleton.Method { return NewDecomposer(be).adaptive(tol, opts) })
}

// MinTolerance is the smallest tolerance AdaptiveQB accepts: below it the
// a-posteriori identity ‖A‖² − ‖B‖² is dominated by rounding in float64.
const MinTolerance = 1e-7

// AdaptiveQBTo is AdaptiveQB on a backend matrix, writing into dst.
func (d *Decomposer) AdaptiveQBTo(dst *lowrank.Factors, a lowrank.Matrix, tol float64, opts *AdaptiveOptions) error {
	return d.adaptive(tol, opts).QBTo(dst, a, 0)
}

// adaptive returns the skeleton's view of the blocked QB: its basis is the
// whole grown basis, and FinishQB trims it to the tolerance (the rank
// argument is unused).
func (d *Decomposer) adaptive(tol float64, opts *AdaptiveOptions) skeleton.Method {
	if opts == nil {
		opts = &AdaptiveOptions{}
	}
	basis := func(a lowrank.Matrix, _ int, o lowrank.Orientation) (skeleton.Problem, lowrank.Matrix, error) {
		return d.grow(a, tol, opts, o)
	}
	return skeleton.Method{Backend: d.be, Scratch: &d.sc, Orientation: opts.Orientation, Basis: basis}
}

// grow adds Gaussian blocks to the basis until ‖A‖² − ‖B‖² ≤ tol²·‖A‖² or
// the maximum rank is reached, and returns the problem (K = ℓ = the grown
// rank r, Tol = tol) and the P×r basis.
func (d *Decomposer) grow(a lowrank.Matrix, tol float64, opts *AdaptiveOptions, o lowrank.Orientation) (skeleton.Problem, lowrank.Matrix, error) {
	pr, maxRank, bs, err := adaptivePrepare(&d.sc, d.be, a, tol, opts, o)
	if err != nil {
		return pr, nil, err
	}
	be := d.be
	qAll, err := d.qAll.Get(be, pr.P, maxRank)
	if err != nil {
		return pr, nil, err
	}
	btAll, err := d.btAll.Get(be, pr.S, maxRank)
	if err != nil {
		return pr, nil, err
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed))
	target := tol * tol * pr.SquaredNormA
	var normB2 float64
	r := 0
	for r == 0 || (r < maxRank && pr.SquaredNormA-normB2 > target) {
		b := min(bs, maxRank-r)
		kept, nb, err := d.addBlock(pr, qAll, btAll, r, b, rng.Uint64(), opts.PowerIters)
		if err != nil {
			return pr, nil, err
		}
		normB2 += nb
		r += kept
		if kept == 0 { // range(op(A)) exhausted at working precision
			break
		}
	}
	pr.K, pr.L, pr.Tol = r, r, tol
	return pr, be.Slice(qAll, 0, pr.P, 0, r), nil
}

// adaptivePrepare validates the call and returns the problem, the maximum
// rank and the block size.
func adaptivePrepare(sc *skeleton.Scratch, be lowrank.Backend, a lowrank.Matrix, tol float64, opts *AdaptiveOptions, o lowrank.Orientation) (pr skeleton.Problem, maxRank, bs int, err error) {
	if !(tol > MinTolerance && tol < 1) {
		return pr, 0, 0, fmt.Errorf("%w: tolerance %v outside (%g, 1)", lowrank.ErrOption, tol, MinTolerance)
	}
	if opts.BlockSize < 0 || opts.MaxRank < 0 || opts.PowerIters < 0 {
		return pr, 0, 0, fmt.Errorf("%w: negative BlockSize, MaxRank or PowerIters", lowrank.ErrOption)
	}
	if pr, err = skeleton.Prepare(sc, be, a, 1, skeleton.Params{PowerIters: opts.PowerIters}, o); err != nil {
		return pr, 0, 0, err
	}
	maxRank = min(pr.P, pr.S)
	if opts.MaxRank > 0 {
		maxRank = min(maxRank, opts.MaxRank)
	}
	bs = opts.BlockSize
	if bs == 0 {
		bs = 16
	}
	return pr, maxRank, bs, nil
}

// addBlock appends up to b orthonormal columns to the basis qAll[:, :r]
// and the matching columns of Bᵀ to btAll, from a Gaussian Ω of the given
// seed, and returns how many it kept (see orthogonalize) and
// ‖s·B_block‖_F² (s = pr.Scale).
func (d *Decomposer) addBlock(pr skeleton.Problem, qAll, btAll lowrank.Matrix, r, b int, seed uint64, powerIters int) (int, float64, error) {
	be := d.be
	omega, err := d.omegaB.Get(be, pr.S, b)
	if err != nil {
		return 0, 0, err
	}
	if err := be.Normal(omega, seed); err != nil {
		return 0, 0, err
	}
	mul := func(dst, src lowrank.Matrix, t bool) error { return skeleton.MulScaled(be, pr, dst, src, t) }
	y := be.Slice(qAll, 0, pr.P, r, r+b)
	if err := mul(y, omega, false); err != nil {
		return 0, 0, err
	}
	for range powerIters {
		if err := be.QR(y, nil); err != nil {
			return 0, 0, err
		}
		if err := mul(omega, y, true); err != nil {
			return 0, 0, err
		}
		if err := mul(y, omega, false); err != nil {
			return 0, 0, err
		}
	}
	kept, err := d.orthogonalize(qAll, y, r, b)
	if err != nil || kept == 0 {
		return 0, 0, err
	}
	y = be.Slice(qAll, 0, pr.P, r, r+kept)
	bt := be.Slice(btAll, 0, pr.S, r, r+kept)
	if err := be.Mul(bt, 1, pr.A, !pr.Trans, y, false, 0); err != nil {
		return 0, 0, err
	}
	nb, _, err := be.SquaredNorm(bt, pr.Scale)
	return kept, nb, err
}

// orthogonalize makes y (P×b) orthonormal and orthogonal to qAll[:, :r]:
// Y ← (I − QQᵀ)Y twice, QR, and once more after the QR — a nearly
// dependent Y loses orthogonality in the QR, and the second projection and
// QR restore it ("twice is enough"). It returns the number of columns
// kept, which are then y's first columns.
//
// Twice is enough only for a column that keeps a part above rounding
// after the projections. A column of a block whose range is exhausted
// (op(A) of rank r, or its other directions below u·‖A‖) is rounding noise
// when the last QR normalises it, and the noise need not be orthogonal to
// Q. A third projection tells them apart: it leaves a genuine column of
// norm 1 − O(u) and removes much of a noise column; columns that keep less
// than half their squared norm are dropped, and the others normalised
// again (the normalisation amplifies their rounding by at most √2).
func (d *Decomposer) orthogonalize(qAll, y lowrank.Matrix, r, b int) (int, error) {
	be := d.be
	p, _ := y.Dims()
	var q, c lowrank.Matrix
	if r > 0 {
		var err error
		if c, err = d.cB.Get(be, r, b); err != nil {
			return 0, err
		}
		q = be.Slice(qAll, 0, p, 0, r)
	}
	project := func(y, c lowrank.Matrix) error { // y ← y − Q·(Qᵀy)
		if err := be.Mul(c, 1, q, true, y, false, 0); err != nil {
			return err
		}
		return be.Mul(y, -1, q, false, c, false, 1)
	}
	for pass := 0; pass < 2; pass++ {
		if r > 0 {
			for range 2 {
				if err := project(y, c); err != nil {
					return 0, err
				}
			}
		}
		if err := be.QR(y, nil); err != nil {
			return 0, err
		}
		if r == 0 {
			return b, nil
		}
	}
	if err := project(y, c); err != nil {
		return 0, err
	}
	if cap(d.colNorms) < b {
		d.colNorms = make([]float64, b)
	}
	norms := d.colNorms[:b]
	if err := be.SquaredRowNorms(norms, y, true, 1); err != nil {
		return 0, err
	}
	kept := 0
	for j, nj := range norms {
		if nj < 0.5 {
			continue
		}
		if kept != j {
			if err := be.Copy(be.Slice(y, 0, p, kept, kept+1), be.Slice(y, 0, p, j, j+1)); err != nil {
				return 0, err
			}
		}
		kept++
	}
	if kept == 0 {
		return 0, nil
	}
	return kept, be.QR(be.Slice(y, 0, p, 0, kept), nil)
}
