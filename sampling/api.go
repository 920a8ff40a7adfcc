package sampling

import (
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// QB returns the rank-k LoRAct QB decomposition of a on the CPU, A ≈ L·R
// (see lowrank.QB). a may be a *mat.Dense, a *lowrank.Dense32 (float32
// data read in place, never copied to float64), a mat.Transpose of either,
// or any mat.Matrix (copied). a is not modified. A nil opts means the zero
// Options. To see the sampled rows, use a Decomposer and its Draw.
//
// Errors: k outside [1, min(m, n)] (ErrRank), an empty a (ErrEmpty), a
// NaN or ±Inf element (a *lowrank.NotFiniteError giving its position),
// invalid options (ErrOption). An all-zero a is valid and gives B = 0.
func QB(a mat.Matrix, k int, opts *Options) (*lowrank.QB, error) {
	return skeleton.HostQB(a, k, func(be lowrank.Backend) skeleton.Method {
		d := NewDecomposer(be)
		return d.method(opts, d.basis)
	})
}

// SVD returns the rank-k SVD form of the LoRAct decomposition of a: the
// QB with ℓ = k+Oversample rows, then the exact SVD of the small B,
// truncated to k. Inputs and errors are as for QB.
func SVD(a mat.Matrix, k int, opts *Options) (*lowrank.SVD, error) {
	return skeleton.HostSVD(a, k, func(be lowrank.Backend) skeleton.Method {
		d := NewDecomposer(be)
		return d.method(opts, d.basis)
	})
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
	return skeleton.HostQB(a, k, func(be lowrank.Backend) skeleton.Method {
		d := NewDecomposer(be)
		return d.method(opts, d.nystromBasis)
	})
}
