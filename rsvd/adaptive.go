package rsvd

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// AdaptiveOptions configures AdaptiveQB. A nil *AdaptiveOptions means the
// zero value: block size 16, maximum rank min(m, n), no power iterations,
// automatic orientation, seed 0.
type AdaptiveOptions struct {
	// BlockSize is the number of Gaussian columns added per step; 0 means 16.
	BlockSize int
	// MaxRank caps the rank; 0 means min(m, n).
	MaxRank int
	// PowerIters is the number of power iterations per block.
	PowerIters int
	// Orientation chooses op(A).
	Orientation Orientation
	// Rand is the source of the test matrices' seeds; if nil, a PCG seeded
	// with (Seed, Seed).
	Rand *rand.Rand
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
// lowrank.ErrOption for tol ≤ 1e-7 or tol ≥ 1. If MaxRank is reached
// before tol is met, the rank-MaxRank QB is returned with an error
// wrapping ErrNoTolerance.
func AdaptiveQB(a mat.Matrix, tol float64, opts *AdaptiveOptions) (*lowrank.QB, error) {
	h, t := cpu.HostMatrix(a)
	if opts != nil && opts.Orientation.Flip(t) != opts.Orientation {
		o := *opts
		o.Orientation = o.Orientation.Flip(t)
		opts = &o
	}
	d := NewDecomposer(cpu.Backend{})
	var f Factors
	err := d.AdaptiveQBTo(&f, h, tol, opts)
	if f.Q == nil {
		return nil, err
	}
	return lowrank.NewQB(f.Q.(*mat.Dense), f.B.(*mat.Dense), f.Trans != t), err
}

// ErrNoTolerance is wrapped by the error AdaptiveQB returns when the
// maximum rank is reached before the tolerance is met.
var ErrNoTolerance = fmt.Errorf("rsvd: tolerance not reached at the maximum rank")

// MinTolerance is the smallest tolerance AdaptiveQB accepts: below it the
// a-posteriori identity ‖A‖² − ‖B‖² is dominated by rounding in float64.
const MinTolerance = 1e-7

// AdaptiveQBTo is AdaptiveQB on a backend matrix, writing into dst.
func (d *Decomposer) AdaptiveQBTo(dst *Factors, a lowrank.Matrix, tol float64, opts *AdaptiveOptions) error {
	if opts == nil {
		opts = &AdaptiveOptions{}
	}
	if !(tol > MinTolerance && tol < 1) {
		return fmt.Errorf("%w: tolerance %v outside (%g, 1)", lowrank.ErrOption, tol, MinTolerance)
	}
	if opts.BlockSize < 0 || opts.MaxRank < 0 || opts.PowerIters < 0 {
		return fmt.Errorf("%w: negative BlockSize, MaxRank or PowerIters", lowrank.ErrOption)
	}
	m, n := a.Dims()
	if m == 0 || n == 0 {
		return fmt.Errorf("%w: %d×%d", lowrank.ErrEmpty, m, n)
	}
	trans, err := opts.Orientation.Trans(m, n)
	if err != nil {
		return err
	}
	be := d.ws.Backend()
	norm2, err := lowrank.CheckInput(be, a)
	if err != nil {
		return err
	}
	p, s := m, n
	if trans {
		p, s = n, m
	}
	maxRank := min(p, s)
	if opts.MaxRank > 0 {
		maxRank = min(maxRank, opts.MaxRank)
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = 16
	}
	rng := opts.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(opts.Seed, opts.Seed))
	}
	qAll, err := d.ws.Get("ad.q", p, maxRank)
	if err != nil {
		return err
	}
	btAll, err := d.ws.Get("ad.bt", s, maxRank)
	if err != nil {
		return err
	}
	target := tol * tol * norm2
	var normB2 float64
	r := 0
	for r == 0 || (r < maxRank && norm2-normB2 > target) {
		b := min(bs, maxRank-r)
		omega, err := d.ws.Get(fmt.Sprint("ad.omega", b), s, b)
		if err != nil {
			return err
		}
		if err := be.Normal(omega, rng.Uint64()); err != nil {
			return err
		}
		y := be.Cols(qAll, r, r+b)
		if err := be.Mul(y, 1, a, trans, omega, false, 0); err != nil {
			return err
		}
		for range opts.PowerIters {
			if err := be.QR(y, nil); err != nil {
				return err
			}
			if err := be.Mul(omega, 1, a, !trans, y, false, 0); err != nil {
				return err
			}
			if err := be.Mul(y, 1, a, trans, omega, false, 0); err != nil {
				return err
			}
		}
		// Y ← (I − QQᵀ)Y twice, QR, and once more after the QR: a nearly
		// dependent Y loses orthogonality in the QR, and the second
		// projection and QR restore it ("twice is enough").
		for pass := 0; pass < 2; pass++ {
			if r > 0 {
				c, err := d.ws.Get(fmt.Sprint("ad.c", r, b), r, b)
				if err != nil {
					return err
				}
				q := be.Cols(qAll, 0, r)
				for range 2 {
					if err := be.Mul(c, 1, q, true, y, false, 0); err != nil {
						return err
					}
					if err := be.Mul(y, -1, q, false, c, false, 1); err != nil {
						return err
					}
				}
			}
			if err := be.QR(y, nil); err != nil {
				return err
			}
			if r == 0 {
				break
			}
		}
		bt := be.Cols(btAll, r, r+b)
		if err := be.Mul(bt, 1, a, !trans, y, false, 0); err != nil {
			return err
		}
		nb, err := be.Norm2(bt)
		if err != nil {
			return err
		}
		normB2 += nb
		r += b
	}
	// Trim: G = BBᵀ = W·Λ·Wᵀ; keep the smallest k with
	// Σ_{j≥k} λ_j + (‖A‖² − ‖B‖²) ≤ tol²·‖A‖².
	g, err := d.ws.Get(fmt.Sprint("ad.g", r), r, r)
	if err != nil {
		return err
	}
	bt := be.Cols(btAll, 0, r)
	if err := be.Mul(g, 1, bt, true, bt, false, 0); err != nil {
		return err
	}
	w, err := d.ws.Get(fmt.Sprint("ad.w", r), r, r)
	if err != nil {
		return err
	}
	v, err := d.ws.Get(fmt.Sprint("ad.v", r), r, r)
	if err != nil {
		return err
	}
	lam := make([]float64, r)
	if err := be.SVD(w, lam, v, g); err != nil {
		return err
	}
	rest := math.Max(norm2-normB2, 0)
	k := r
	tail := rest
	for k > 1 && tail+lam[k-1] <= target {
		tail += lam[k-1]
		k--
	}
	if dst.Q, err = skeleton.Ensure(be, dst.Q, p, k); err != nil {
		return err
	}
	if dst.B, err = skeleton.Ensure(be, dst.B, k, s); err != nil {
		return err
	}
	wk := be.Cols(w, 0, k)
	if err := be.Mul(dst.Q, 1, be.Cols(qAll, 0, r), false, wk, false, 0); err != nil {
		return err
	}
	if err := be.Mul(dst.B, 1, wk, true, bt, true, 0); err != nil {
		return err
	}
	dst.Trans = trans
	dst.Norm2A = norm2
	if dst.Norm2B, err = be.Norm2(dst.B); err != nil {
		return err
	}
	if norm2-normB2 > target {
		return fmt.Errorf("%w: relative error %.3g > %.3g at rank %d", ErrNoTolerance,
			lowrank.ErrorFromNorms(norm2, normB2), tol, maxRank)
	}
	return nil
}
