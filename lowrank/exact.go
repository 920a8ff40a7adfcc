package lowrank

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// TruncatedSVD returns the k leading terms of the exact singular value
// decomposition of a, A ≈ U·diag(S)·Vᵀ; k = min(m, n) gives the full thin
// SVD. It is the reference every randomized method is judged by: singular
// values are accurate to a small multiple of ε·σ₁ and U, V are orthonormal
// to working accuracy. a is not modified; a *Dense32 is widened to float64.
//
// It returns an error wrapping ErrEmpty, ErrRank or ErrNotFinite for bad
// input, and ErrNoConvergence if the iteration failed.
func TruncatedSVD(a mat.Matrix, k int) (*SVD, error) {
	m, n := a.Dims()
	if err := CheckRank(m, n, k); err != nil {
		return nil, err
	}
	if err := CheckFinite(a); err != nil {
		return nil, err
	}
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDThin) {
		return nil, fmt.Errorf("%w: exact SVD of a %d×%d matrix", ErrNoConvergence, m, n)
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	s := svd.Values(nil)
	f := NewSVD(&u, s, &v)
	f.Truncate(k)
	return f, nil
}
