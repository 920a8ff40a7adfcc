package sampling

import (
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
)

// QB returns the rank-k LoRAct QB decomposition of a on the CPU. a may be
// a *mat.Dense, a *lowrank.Dense32 (float32 data read in place, never
// copied to float64), a mat.Transpose of either, or any mat.Matrix (copied).
// a is not modified. A nil opts means the zero Options.
//
// Errors: k outside [1, min(m, n)] (ErrRank), an empty a (ErrEmpty), a
// NaN or ±Inf element (a *lowrank.NotFiniteError giving its position),
// invalid options (ErrOption). An all-zero a is valid and gives B = 0.
func QB(a mat.Matrix, k int, opts *Options) (*lowrank.QB, error) {
	h, t := cpu.HostMatrix(a)
	d := NewDecomposer(cpu.Backend{})
	var f Factors
	if err := d.QBTo(&f, h, k, flipped(opts, t)); err != nil {
		return nil, err
	}
	fixDraw(opts, t)
	return lowrank.NewQB(f.Q.(*mat.Dense), f.B.(*mat.Dense), f.Trans != t), nil
}

// SVD returns the rank-k SVD form of the LoRAct decomposition of a: the
// QB with ℓ = k+Oversample rows, then the exact SVD of the small B,
// truncated to k. Inputs and errors are as for QB.
func SVD(a mat.Matrix, k int, opts *Options) (*lowrank.SVD, error) {
	h, t := cpu.HostMatrix(a)
	d := NewDecomposer(cpu.Backend{})
	u, v, s, err := d.SVD(h, k, flipped(opts, t))
	if err != nil {
		return nil, err
	}
	fixDraw(opts, t)
	if t {
		u, v = v, u
	}
	return lowrank.NewSVD(u.(*mat.Dense), s, v.(*mat.Dense)), nil
}

// Nystrom returns the rank-k Nyström variant of the decomposition of a, as
// in the reference implementation's nystrom_svd. With C = op(A)·op(A)_Sᵀ
// and W = C_S = op(A)_S·op(A)_Sᵀ (ℓ×ℓ), op(A)·op(A)ᵀ ≈ C·W⁺·Cᵀ = E·Eᵀ
// with E = C·W^{-1/2} (pseudo-inverse: eigenvalues of W at or below
// ℓ·ε·λ_max are dropped). Q holds the k leading left singular vectors of E
// and B = Qᵀ·op(A), a valid QB. With ℓ = k, range(Q) equals the range of
// QB's sketch, so both give the same error; with oversampling the two
// choose their k directions differently. Inputs and errors are as for QB.
func Nystrom(a mat.Matrix, k int, opts *Options) (*lowrank.QB, error) {
	h, t := cpu.HostMatrix(a)
	d := NewDecomposer(cpu.Backend{})
	var f Factors
	if err := d.NystromTo(&f, h, k, flipped(opts, t)); err != nil {
		return nil, err
	}
	fixDraw(opts, t)
	return lowrank.NewQB(f.Q.(*mat.Dense), f.B.(*mat.Dense), f.Trans != t), nil
}

// flipped returns the options to use on the stored (possibly transposed)
// matrix: an explicit orientation is flipped when the input was a
// transpose view.
func flipped(opts *Options, t bool) *Options {
	if opts == nil || opts.Orientation.Flip(t) == opts.Orientation {
		return opts
	}
	o := *opts
	o.Orientation = o.Orientation.Flip(t)
	return &o
}

// fixDraw expresses the recorded orientation relative to the caller's a.
func fixDraw(opts *Options, t bool) {
	if opts != nil && opts.Draw != nil && t {
		opts.Draw.Trans = !opts.Draw.Trans
	}
}
