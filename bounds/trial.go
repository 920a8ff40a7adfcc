package bounds

import (
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
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
	f, draw, err := rowsQB(a, l, &sampling.Options{Seed: seed, PowerIters: q})
	if err != nil {
		return Trial{}, err
	}
	t := Trial{}
	t.ErrF, t.ErrS = Residual(a, f)
	rc := ex.ForSampling(&draw, k, q)
	t.Cert, t.Row = rc.Certificate, &rc
	return t, nil
}

// GaussianTrial is RowsTrial for rsvd.QB (Gaussian test matrix, QR
// normalisation of the power iterations).
func GaussianTrial(a *mat.Dense, ex *Exact, k, l, q int, seed uint64) (Trial, error) {
	f, omega, trans, err := gaussianQB(a, l, &rsvd.Options{Seed: seed, PowerIters: q})
	if err != nil {
		return Trial{}, err
	}
	t := Trial{}
	t.ErrF, t.ErrS = Residual(a, f)
	t.Cert = ex.ForGaussian(omega, trans, k, q)
	return t, nil
}

// rowsQB is sampling.QB on the CPU that also returns the draw.
func rowsQB(a *mat.Dense, k int, opts *sampling.Options) (*lowrank.QB, sampling.Draw, error) {
	d := sampling.NewDecomposer(cpu.Backend{})
	var fd lowrank.Factors
	if err := d.QBTo(&fd, a, k, opts); err != nil {
		return nil, sampling.Draw{}, err
	}
	f, err := fd.ToQB(cpu.Backend{})
	return f, d.Draw(), err
}

// gaussianQB is rsvd.QB on the CPU that also returns the test matrix and
// whether op(A) = Aᵀ.
func gaussianQB(a *mat.Dense, k int, opts *rsvd.Options) (f *lowrank.QB, omega *mat.Dense, trans bool, err error) {
	d := rsvd.NewDecomposer(cpu.Backend{})
	var fd lowrank.Factors
	if err := d.QBTo(&fd, a, k, opts); err != nil {
		return nil, nil, false, err
	}
	if f, err = fd.ToQB(cpu.Backend{}); err != nil {
		return nil, nil, false, err
	}
	omega = new(mat.Dense)
	trans, err = d.TestMatrix(omega)
	return f, omega, trans, err
}
