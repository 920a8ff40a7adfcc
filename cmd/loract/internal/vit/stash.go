package vit

import (
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/lowrank"
)

// Stash is a tensor saved for backward: *activation.Saved implements it,
// and so does the plain stash that keeps the tensor itself.
type Stash interface {
	// Reconstruct writes the saved tensor (or its approximation) into dst,
	// a *mat.Dense.
	Reconstruct(dst lowrank.Matrix) error
	// WeightGradOutIn writes dst = gᵀ·X for the saved X.
	WeightGradOutIn(dst lowrank.Matrix, g lowrank.Matrix) error
	// Retain adds a consumer; each consumer releases once.
	Retain() error
	// Release drops the stash.
	Release() error
}

// Saver saves the tensor x of a layer for backward. The model never
// modifies x afterwards.
type Saver func(layer string, x *mat.Dense) (Stash, error)

// Plain keeps x itself: ordinary backpropagation.
func Plain(_ string, x *mat.Dense) (Stash, error) { return plainStash{x}, nil }

type plainStash struct{ x *mat.Dense }

func (p plainStash) Reconstruct(dst lowrank.Matrix) error {
	d := dst.(*mat.Dense)
	if d.IsEmpty() {
		r, c := p.x.Dims()
		d.ReuseAs(r, c)
	}
	d.Copy(p.x)
	return nil
}

func (p plainStash) WeightGradOutIn(dst lowrank.Matrix, g lowrank.Matrix) error {
	dst.(*mat.Dense).Mul(g.(mat.Matrix).T(), p.x)
	return nil
}

func (plainStash) Retain() error  { return nil }
func (plainStash) Release() error { return nil }

// shared returns a Saver that saves the first tensor it is given and hands
// that same stash, retained, to every later call: the consumers of one
// tensor (the q, k and v projections of a LayerNorm output) say that they
// share it, and each releases it once.
func shared(s Saver) Saver {
	if s == nil {
		return nil
	}
	var first Stash
	return func(layer string, x *mat.Dense) (Stash, error) {
		if first != nil {
			return first, first.Retain()
		}
		st, err := s(layer, x)
		first = st
		return st, err
	}
}

// Compressed saves through c.
func Compressed(c *activation.Compressor) Saver {
	return func(layer string, x *mat.Dense) (Stash, error) {
		s, err := c.Compress(layer, x)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}
