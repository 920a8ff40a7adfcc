package rsvd

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// Decomposer runs RSVD on a backend, keeping its scratch matrices between
// calls (allocated at the largest shape asked and viewed at smaller ones).
// It is not safe for concurrent use.
type Decomposer struct {
	be lowrank.Backend
	sc skeleton.Scratch
	// The adaptive QB's slots.
	qAll, btAll, omegaB, cB skeleton.Slot
	colNorms                []float64

	last testDraw
}

// testDraw records the test matrix of the last call: its seed and shape,
// enough to regenerate it.
type testDraw struct {
	ok    bool
	seed  uint64
	s, l  int
	trans bool
}

// NewDecomposer returns a Decomposer on backend b.
func NewDecomposer(b lowrank.Backend) *Decomposer { return &Decomposer{be: b} }

// Close releases the scratch matrices. The Decomposer stays usable.
func (d *Decomposer) Close() {
	d.sc.Close(d.be)
	for _, s := range d.adaptiveSlots() {
		s.Free(d.be)
	}
}

// ScratchElements returns the number of backend matrix elements the
// Decomposer holds as scratch (for memory tests and accounting).
func (d *Decomposer) ScratchElements() int {
	n := d.sc.Elements()
	for _, s := range d.adaptiveSlots() {
		n += s.Elements()
	}
	return n
}

func (d *Decomposer) adaptiveSlots() []*skeleton.Slot {
	return []*skeleton.Slot{&d.qAll, &d.btAll, &d.omegaB, &d.cB}
}

// TestMatrix writes the Gaussian test matrix Ω (S×ℓ, S the columns of
// op(A)) of the last QBTo or SVD call into dst (resized if empty), and
// returns whether that call worked on op(A) = Aᵀ. Ω is regenerated from
// its seed, so it is available whatever the power iterations did to the
// scratch. It returns an error wrapping lowrank.ErrEmpty if no call has
// succeeded yet.
func (d *Decomposer) TestMatrix(dst *mat.Dense) (trans bool, err error) {
	if !d.last.ok {
		return false, lowrank.ErrEmpty
	}
	omega, err := d.be.New(d.last.s, d.last.l)
	if err != nil {
		return false, err
	}
	defer d.be.Free(omega)
	if err := d.be.Normal(omega, d.last.seed); err != nil {
		return false, err
	}
	return d.last.trans, d.be.Download(dst, omega)
}

// QBTo computes the rank-k Gaussian QB of the backend matrix a into dst,
// reusing dst's matrices when their shapes fit. Errors are as for
// sampling's Decomposer.QBTo.
func (d *Decomposer) QBTo(dst *lowrank.Factors, a lowrank.Matrix, k int, opts *Options) error {
	return d.skeleton(opts).QBTo(dst, a, k)
}

// SVD computes the rank-k randomized SVD of the backend matrix a and
// returns U (m×k), S and V (n×k) of A, as new matrices of the backend.
func (d *Decomposer) SVD(a lowrank.Matrix, k int, opts *Options) (u, v lowrank.Matrix, s []float64, err error) {
	return d.skeleton(opts).SVD(a, k)
}

func (d *Decomposer) skeleton(opts *Options) skeleton.Method {
	if opts == nil {
		opts = &Options{}
	}
	basis := func(a lowrank.Matrix, k int, o lowrank.Orientation) (skeleton.Problem, lowrank.Matrix, error) {
		return d.rangeFinder(a, k, opts, o)
	}
	return skeleton.Method{Backend: d.be, Scratch: &d.sc, Orientation: opts.Orientation, Basis: basis}
}

// rangeFinder returns the problem and Q (P×ℓ, orthonormal) spanning the
// Gaussian sketch of op(A) after power iterations (HMT Alg. 4.4). Every
// product with op(A) is multiplied by pr.Scale (skeleton.MulScaled), so
// that the sketch stays near 1 for inputs of any magnitude.
func (d *Decomposer) rangeFinder(a lowrank.Matrix, k int, opts *Options, o lowrank.Orientation) (pr skeleton.Problem, q lowrank.Matrix, err error) {
	p := skeleton.Params{Oversample: opts.Oversample, PowerIters: opts.PowerIters, Tolerance: opts.Tolerance,
		Spectrum: opts.Spectrum, Err: opts.check()}
	if pr, err = skeleton.Prepare(&d.sc, d.be, a, k, p, o); err != nil {
		return pr, nil, err
	}
	be := d.be
	omega, err := d.sc.Omega.Get(be, pr.S, pr.L)
	if err != nil {
		return pr, nil, err
	}
	seed := rand.New(rand.NewPCG(opts.Seed, opts.Seed)).Uint64()
	if err := be.Normal(omega, seed); err != nil {
		return pr, nil, err
	}
	y, err := d.sc.Y.Get(be, pr.P, pr.L)
	if err != nil {
		return pr, nil, err
	}
	mul := func(dst, src lowrank.Matrix, t bool) error { return skeleton.MulScaled(be, pr, dst, src, t) }
	if err := mul(y, omega, false); err != nil {
		return pr, nil, err
	}
	for range opts.PowerIters {
		if err := normalize(be, y, opts.Normalizer); err != nil {
			return pr, nil, err
		}
		if err := mul(omega, y, true); err != nil {
			return pr, nil, err
		}
		if err := normalize(be, omega, opts.Normalizer); err != nil {
			return pr, nil, err
		}
		if err := mul(y, omega, false); err != nil {
			return pr, nil, err
		}
	}
	if err := skeleton.SketchQR(be, pr, y); err != nil {
		return pr, nil, err
	}
	d.last = testDraw{ok: true, seed: seed, s: pr.S, l: pr.L, trans: pr.Trans}
	return pr, y, nil
}

func normalize(be lowrank.Backend, y lowrank.Matrix, how Normalizer) error {
	switch how {
	case QR:
		return be.QR(y, nil)
	case LU:
		return be.LU(y)
	}
	return nil
}

// QB returns the rank-k Gaussian QB decomposition of a on the CPU, A ≈ L·R
// (see lowrank.QB). Inputs, errors and the nil-options default are as for
// sampling.QB. To see the test matrix, use a Decomposer and its
// TestMatrix.
func QB(a mat.Matrix, k int, opts *Options) (*lowrank.QB, error) {
	return skeleton.HostQB(a, k, func(be lowrank.Backend) skeleton.Method { return NewDecomposer(be).skeleton(opts) })
}

// SVD returns the rank-k randomized SVD of a on the CPU: the Gaussian QB,
// then the exact SVD of the small B, truncated to k.
func SVD(a mat.Matrix, k int, opts *Options) (*lowrank.SVD, error) {
	return skeleton.HostSVD(a, k, func(be lowrank.Backend) skeleton.Method { return NewDecomposer(be).skeleton(opts) })
}
