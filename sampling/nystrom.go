package sampling

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// NystromTo computes the Nyström variant (see Nystrom) of the backend
// matrix a into dst, as QBTo does for the QB. Power iterations do not
// apply and are ignored.
func (d *Decomposer) NystromTo(dst *lowrank.Factors, a lowrank.Matrix, k int, opts *Options) error {
	return d.method(opts, d.nystromBasis).QBTo(dst, a, k)
}

// nystromBasis returns Q = Q_E·U_R[:, :k], the k leading left singular
// vectors of E (see Nystrom), as the basis of a rank-k QB.
func (d *Decomposer) nystromBasis(a lowrank.Matrix, k int, opts *Options, o lowrank.Orientation) (pr skeleton.Problem, q lowrank.Matrix, err error) {
	noPower := *opts
	noPower.PowerIters = 0
	pr, c, err := d.sketch(a, k, &noPower, o)
	if err != nil {
		return pr, nil, err
	}
	be := d.be
	p, l := c.Dims()
	// W = C_S: the sampled rows of C, as columns of an ℓ×ℓ matrix
	// (W is symmetric, so Gather's transpose does not matter).
	w, err := d.w.Get(be, l, l)
	if err != nil {
		return pr, nil, err
	}
	if err := be.Gather(w, c, false, d.idx); err != nil {
		return pr, nil, err
	}
	uw, err := d.uw.Get(be, l, l)
	if err != nil {
		return pr, nil, err
	}
	vw, err := d.vw.Get(be, l, l)
	if err != nil {
		return pr, nil, err
	}
	lam := make([]float64, l)
	if err := be.SVD(uw, lam, vw, w); err != nil {
		return pr, nil, err
	}
	// W is PSD, so its SVD is its eigendecomposition. Scale the columns of
	// U_W by λ^{-1/2}, dropping λ ≤ ℓ·ε·λ_max.
	cut := float64(l) * 0x1p-52 * lam[0]
	scale := make([]float64, l)
	for j, v := range lam {
		if v > cut && v > 0 {
			scale[j] = 1 / math.Sqrt(v)
		}
	}
	if err := scaleColsHost(be, uw, scale); err != nil {
		return pr, nil, err
	}
	e, err := d.e.Get(be, p, l)
	if err != nil {
		return pr, nil, err
	}
	if err := be.Mul(e, 1, c, false, uw, false, 0); err != nil {
		return pr, nil, err
	}
	// Left singular vectors of E: E = Q_E·R, R = U_R·Σ·V_Rᵀ.
	r, err := d.r.Get(be, l, l)
	if err != nil {
		return pr, nil, err
	}
	if err := be.QR(e, r); err != nil {
		return pr, nil, err
	}
	ur, err := d.ur.Get(be, l, l)
	if err != nil {
		return pr, nil, err
	}
	vr, err := d.vr.Get(be, l, l)
	if err != nil {
		return pr, nil, err
	}
	if err := be.SVD(ur, lam, vr, r); err != nil {
		return pr, nil, err
	}
	// Q = Q_E·U_R[:, :k] is orthonormal, so (Q, B = Qᵀ·op(A)) is a QB.
	if q, err = d.sc.Y.Get(be, p, k); err != nil { // the sketch C is no longer needed
		return pr, nil, err
	}
	pr.L = k
	return pr, q, be.Mul(q, 1, e, false, be.Slice(ur, 0, l, 0, k), false, 0)
}

// scaleColsHost multiplies column j of the small backend matrix m by s[j],
// through the host: m is ℓ×ℓ, so the round trip is negligible beside the
// products with A.
func scaleColsHost(be lowrank.Backend, m lowrank.Matrix, s []float64) error {
	var h mat.Dense
	if err := be.Download(&h, m); err != nil {
		return err
	}
	r, c := h.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			h.Set(i, j, h.At(i, j)*s[j])
		}
	}
	return be.Upload(m, &h)
}
