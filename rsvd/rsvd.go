package rsvd

import (
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// Factors are QB factors held on a backend; see sampling.Factors.
type Factors = skeleton.Factors

// Decomposer runs RSVD on a backend, keeping its scratch matrices between
// calls. It is not safe for concurrent use.
type Decomposer struct {
	ws *lowrank.Workspace
}

// NewDecomposer returns a Decomposer on backend b.
func NewDecomposer(b lowrank.Backend) *Decomposer {
	return &Decomposer{ws: lowrank.NewWorkspace(b)}
}

// Close releases the scratch matrices.
func (d *Decomposer) Close() { d.ws.Close() }

// QBTo computes the rank-k Gaussian QB of the backend matrix a into dst.
func (d *Decomposer) QBTo(dst *Factors, a lowrank.Matrix, k int, opts *Options) error {
	y, trans, norm2, err := d.rangeFinder(a, k, opts)
	if err != nil {
		return err
	}
	return skeleton.FinishQB(d.ws, dst, a, trans, y, k, norm2)
}

// SVD computes the rank-k randomized SVD of the backend matrix a and
// returns U (m×k), S and V (n×k) of A.
func (d *Decomposer) SVD(a lowrank.Matrix, k int, opts *Options) (u, v lowrank.Matrix, s []float64, err error) {
	y, trans, _, err := d.rangeFinder(a, k, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	return skeleton.FinishSVD(d.ws, a, trans, y, k)
}

// rangeFinder returns Q (p×ℓ, orthonormal) spanning the Gaussian sketch
// of op(A) after power iterations.
func (d *Decomposer) rangeFinder(a lowrank.Matrix, k int, opts *Options) (q lowrank.Matrix, trans bool, norm2 float64, err error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := opts.check(); err != nil {
		return nil, false, 0, err
	}
	m, n := a.Dims()
	if err := lowrank.CheckRank(m, n, k); err != nil {
		return nil, false, 0, err
	}
	if trans, err = opts.Orientation.Trans(m, n); err != nil {
		return nil, false, 0, err
	}
	be := d.ws.Backend()
	if norm2, err = lowrank.CheckInput(be, a); err != nil {
		return nil, false, 0, err
	}
	p, s := m, n
	if trans {
		p, s = n, m
	}
	l := min(k+opts.Oversample, p)
	omega, err := d.ws.Get("omega", s, l)
	if err != nil {
		return nil, false, 0, err
	}
	if err := be.Normal(omega, opts.rng().Uint64()); err != nil {
		return nil, false, 0, err
	}
	if opts.TestMatrix != nil {
		opts.TestMatrix.Reset()
		if err := be.Download(opts.TestMatrix, omega); err != nil {
			return nil, false, 0, err
		}
	}
	if opts.TransOut != nil {
		*opts.TransOut = trans
	}
	y, err := d.ws.Get("y", p, l)
	if err != nil {
		return nil, false, 0, err
	}
	if err := be.Mul(y, 1, a, trans, omega, false, 0); err != nil {
		return nil, false, 0, err
	}
	for range opts.PowerIters {
		if err := normalize(be, y, opts.Normalizer); err != nil {
			return nil, false, 0, err
		}
		if err := be.Mul(omega, 1, a, !trans, y, false, 0); err != nil {
			return nil, false, 0, err
		}
		if err := normalize(be, omega, opts.Normalizer); err != nil {
			return nil, false, 0, err
		}
		if err := be.Mul(y, 1, a, trans, omega, false, 0); err != nil {
			return nil, false, 0, err
		}
	}
	if err := be.QR(y, nil); err != nil {
		return nil, false, 0, err
	}
	return y, trans, norm2, nil
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

// QB returns the rank-k Gaussian QB decomposition of a on the CPU. Inputs,
// errors and the nil-options default are as for sampling.QB.
func QB(a mat.Matrix, k int, opts *Options) (*lowrank.QB, error) {
	h, t := cpu.HostMatrix(a)
	d := NewDecomposer(cpu.Backend{})
	var f Factors
	if err := d.QBTo(&f, h, k, flipped(opts, t)); err != nil {
		return nil, err
	}
	fixTrans(opts, t)
	return lowrank.NewQB(f.Q.(*mat.Dense), f.B.(*mat.Dense), f.Trans != t), nil
}

// SVD returns the rank-k randomized SVD of a on the CPU.
func SVD(a mat.Matrix, k int, opts *Options) (*lowrank.SVD, error) {
	h, t := cpu.HostMatrix(a)
	d := NewDecomposer(cpu.Backend{})
	u, v, s, err := d.SVD(h, k, flipped(opts, t))
	if err != nil {
		return nil, err
	}
	fixTrans(opts, t)
	if t {
		u, v = v, u
	}
	return lowrank.NewSVD(u.(*mat.Dense), s, v.(*mat.Dense)), nil
}

func flipped(opts *Options, t bool) *Options {
	if opts == nil || opts.Orientation.Flip(t) == opts.Orientation {
		return opts
	}
	o := *opts
	o.Orientation = o.Orientation.Flip(t)
	return &o
}

func fixTrans(opts *Options, t bool) {
	if opts != nil && opts.TransOut != nil && t {
		*opts.TransOut = !*opts.TransOut
	}
}
