package bounds

import (
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
	"gonum.org/v1/gonum/mat"
)

// Trial is one draw of one method on one matrix: the measured projection
// error of the width-ℓ sketch, ‖(I − P_Y)A‖ (Frobenius and spectral), and
// its certificate split at rank k.
type Trial struct {
	ErrF, ErrS float64
	Cert       Certificate
	// Row holds the row-sampling certificate; nil for a Gaussian trial.
	Row *RowCertificate
}

// RowsTrial runs sampling.QB with sketch width l (no truncation, so the
// factors span the whole sketch) and q power iterations on a, and returns
// the measured error and the certificate of the exact draw at rank k.
func RowsTrial(a *mat.Dense, ex *Exact, k, l, q int, seed uint64) (Trial, error) {
	var d sampling.Draw
	f, err := sampling.QB(a, l, &sampling.Options{Seed: seed, PowerIters: q, Draw: &d})
	if err != nil {
		return Trial{}, err
	}
	t := Trial{}
	t.ErrF, t.ErrS = Residual(a, f)
	rc := ex.ForSampling(&d, k, q)
	t.Cert, t.Row = rc.Certificate, &rc
	return t, nil
}

// GaussianTrial is RowsTrial for rsvd.QB (Gaussian test matrix, QR
// normalisation of the power iterations).
func GaussianTrial(a *mat.Dense, ex *Exact, k, l, q int, seed uint64) (Trial, error) {
	var omega mat.Dense
	var trans bool
	f, err := rsvd.QB(a, l, &rsvd.Options{Seed: seed, PowerIters: q, TestMatrix: &omega, TransOut: &trans})
	if err != nil {
		return Trial{}, err
	}
	t := Trial{}
	t.ErrF, t.ErrS = Residual(a, f)
	t.Cert = ex.ForGaussian(&omega, trans, k, q)
	return t, nil
}
