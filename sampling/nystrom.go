package sampling

import (
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// NystromTo computes the Nyström variant (see Nystrom) of the backend
// matrix a into dst, as QBTo does for the QB.
func (d *Decomposer) NystromTo(dst *Factors, a lowrank.Matrix, k int, opts *Options) error {
	noPower := Options{}
	if opts != nil {
		noPower = *opts
	}
	noPower.PowerIters = 0
	c, trans, norm2, err := d.sketch(a, k, &noPower)
	if err != nil {
		return err
	}
	be := d.ws.Backend()
	p, l := c.Dims()
	m, n := a.Dims()
	s := n
	if trans {
		s = m
	}
	// W = C_S: the sampled rows of C, as columns of an ℓ×ℓ matrix
	// (W is symmetric, so Gather's transpose does not matter).
	w, err := d.ws.Get("nys.w", l, l)
	if err != nil {
		return err
	}
	if err := be.Gather(w, c, false, d.idx); err != nil {
		return err
	}
	uw, err := d.ws.Get("nys.uw", l, l)
	if err != nil {
		return err
	}
	vw, err := d.ws.Get("nys.vw", l, l)
	if err != nil {
		return err
	}
	lam := make([]float64, l)
	if err := be.SVD(uw, lam, vw, w); err != nil {
		return err
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
		return err
	}
	e, err := d.ws.Get("nys.e", p, l)
	if err != nil {
		return err
	}
	if err := be.Mul(e, 1, c, false, uw, false, 0); err != nil {
		return err
	}
	// Left singular vectors of E: E = Q_E·R, R = U_R·Σ·V_Rᵀ.
	r, err := d.ws.Get("nys.r", l, l)
	if err != nil {
		return err
	}
	if err := be.QR(e, r); err != nil {
		return err
	}
	ur, err := d.ws.Get("nys.ur", l, l)
	if err != nil {
		return err
	}
	vr, err := d.ws.Get("nys.vr", l, l)
	if err != nil {
		return err
	}
	if err := be.SVD(ur, lam, vr, r); err != nil {
		return err
	}
	if dst.Q, err = skeleton.Ensure(be, dst.Q, p, k); err != nil {
		return err
	}
	if dst.B, err = skeleton.Ensure(be, dst.B, k, s); err != nil {
		return err
	}
	if err := be.Mul(dst.Q, 1, e, false, be.Cols(ur, 0, k), false, 0); err != nil {
		return err
	}
	if err := be.Mul(dst.B, 1, dst.Q, true, a, trans, 0); err != nil {
		return err
	}
	dst.Trans = trans
	dst.Norm2A = norm2
	dst.Norm2B, err = be.Norm2(dst.B)
	return err
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
