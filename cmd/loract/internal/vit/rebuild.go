package vit

import (
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// Rebuild names the tensors of the compressible set that compressed
// per-op training does not save but rebuilds in backward from tensors it
// saves anyway, as the device model does (vitgpu.Model.SetRecomputeLN,
// SetRecomputeAttention, SetRecomputeGELU; docs/gpu-demo.md):
//
//   - LN: q/k/v's and fc1's inputs, the LayerNorm outputs, as x̂·γ + β
//     from the normalised input x̂ each LayerNorm saves for its own
//     backward;
//   - Attention: o's input, the attention output, as P·V from the
//     probabilities and values attention saves for its backward;
//   - GELU: fc2's input as GELU of GELU's saved input.
//
// A rebuilt tensor is not approximated beyond what it is rebuilt from:
// with x̂, P and V saved as they are the first two are the forward's own
// tensors up to the rounding of one product (P·V: exactly, the same sums
// in the same order), and GELU's output is as exact as the compression
// of GELU's input. A checkpointed run recomputes the blocks instead and
// ignores Rebuild.
type Rebuild struct {
	LN, Attention, GELU bool
}

// A rebuilt stash saves nothing of its own: the stashes it rebuilds from
// are released by their owners (the LayerNorm, attention and GELU
// backward), each after the consumer of the rebuilt tensor has run.
type rebuilt struct{}

func (rebuilt) Retain() error  { return nil }
func (rebuilt) Release() error { return nil }

// A rebuilt stash's output is the tensor it stands for; Reconstruct and
// WeightGradOutIn are plainStash's on it.
type rebuiltTensor interface {
	output() (*mat.Dense, error)
}

func reconstruct(r rebuiltTensor, dst lowrank.Matrix) error {
	x, err := r.output()
	if err != nil {
		return err
	}
	return plainStash{x}.Reconstruct(dst)
}

func weightGradOf(r rebuiltTensor, dst, g lowrank.Matrix) error {
	x, err := r.output()
	if err != nil {
		return err
	}
	return plainStash{x}.WeightGradOutIn(dst, g)
}

// lnOutput rebuilds a LayerNorm's output x̂·γ + β. The q, k and v
// projections share one (shared retains it for each): it is rebuilt at
// its first use and kept until its last consumer releases it.
type lnOutput struct {
	t    *lnTape
	ln   *LayerNorm
	refs int
	y    *mat.Dense // the rebuilt output, between first use and last release
}

func (s *lnOutput) Retain() error { s.refs++; return nil }

func (s *lnOutput) Release() error {
	if s.refs--; s.refs <= 0 {
		s.y = nil
	}
	return nil
}

// output rebuilds the output once.
func (s *lnOutput) output() (*mat.Dense, error) {
	if s.y != nil {
		return s.y, nil
	}
	var y mat.Dense
	if err := s.t.xhat.Reconstruct(&y); err != nil {
		return nil, err
	}
	r, _ := y.Dims()
	for i := 0; i < r; i++ {
		row := y.RawRowView(i)
		s.ln.affine(row, row)
	}
	s.y = &y
	return s.y, nil
}

func (s *lnOutput) Reconstruct(dst lowrank.Matrix) error { return reconstruct(s, dst) }
func (s *lnOutput) WeightGradOutIn(dst, g lowrank.Matrix) error {
	return weightGradOf(s, dst, g)
}

// attnOutput rebuilds the attention output P·V.
type attnOutput struct {
	rebuilt
	p, v         Stash
	batch, heads int
}

// output rebuilds P·V (each call: one consumer, o's backward, reads it).
func (s attnOutput) output() (*mat.Dense, error) {
	var p, v mat.Dense
	if err := s.p.Reconstruct(&p); err != nil {
		return nil, err
	}
	if err := s.v.Reconstruct(&v); err != nil {
		return nil, err
	}
	r, c := v.Dims()
	out := mat.NewDense(r, c, nil)
	attentionOutput(out, &p, &v, s.batch, s.heads)
	return out, nil
}

func (s attnOutput) Reconstruct(dst lowrank.Matrix) error { return reconstruct(s, dst) }
func (s attnOutput) WeightGradOutIn(dst, g lowrank.Matrix) error {
	return weightGradOf(s, dst, g)
}

// geluOutput rebuilds GELU's output from GELU's saved input. Block
// backward, which needs GELU's derivative at the same rebuilt input right
// after fc2's backward, rebuilds both in one pass first (prepare); fc2's
// backward then reads the output, and GELU's the derivative, without
// rebuilding the input again.
type geluOutput struct {
	rebuilt
	u     Stash
	a, da *mat.Dense // prepare's output and derivative
}

// prepare rebuilds GELU's input once and sets a = GELU(u), da = GELU'(u).
func (s *geluOutput) prepare() error {
	var u mat.Dense
	if err := s.u.Reconstruct(&u); err != nil {
		return err
	}
	r, c := u.Dims()
	s.a, s.da = mat.NewDense(r, c, nil), mat.NewDense(r, c, nil)
	ad, dd := s.a.RawMatrix().Data, s.da.RawMatrix().Data
	for i, v := range u.RawMatrix().Data {
		ad[i], dd[i] = gelu(v)
	}
	return nil
}

// output returns GELU's output, prepared once.
func (s *geluOutput) output() (*mat.Dense, error) {
	if s.a == nil {
		if err := s.prepare(); err != nil {
			return nil, err
		}
	}
	return s.a, nil
}

func (s *geluOutput) Reconstruct(dst lowrank.Matrix) error { return reconstruct(s, dst) }
func (s *geluOutput) WeightGradOutIn(dst, g lowrank.Matrix) error {
	return weightGradOf(s, dst, g)
}

// Release drops the rebuilt output; the derivative stays for GELU's
// backward, which clears it.
func (s *geluOutput) Release() error {
	s.a = nil
	return nil
}
