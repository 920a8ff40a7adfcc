package vit

import (
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
)

// Stash is a tensor saved for backward: *activation.Saved implements it,
// and so does the plain stash that keeps the tensor itself.
type Stash interface {
	// Reconstruct writes the saved tensor (or its approximation) into dst.
	Reconstruct(dst *mat.Dense) error
	// WeightGrad writes dst = gᵀ·X for the saved X.
	WeightGrad(dst *mat.Dense, g mat.Matrix) error
	// Release drops the stash.
	Release() error
}

// Saver saves the tensor x of a layer for backward. The model never
// modifies x afterwards.
type Saver func(layer string, x *mat.Dense) (Stash, error)

// Plain keeps x itself: ordinary backpropagation.
func Plain(_ string, x *mat.Dense) (Stash, error) { return plainStash{x}, nil }

type plainStash struct{ x *mat.Dense }

func (p plainStash) Reconstruct(dst *mat.Dense) error {
	if dst.IsEmpty() {
		r, c := p.x.Dims()
		dst.ReuseAs(r, c)
	}
	dst.Copy(p.x)
	return nil
}

func (p plainStash) WeightGrad(dst *mat.Dense, g mat.Matrix) error {
	dst.Mul(g.T(), p.x)
	return nil
}

func (plainStash) Release() error { return nil }

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
