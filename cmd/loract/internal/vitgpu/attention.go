package vitgpu

import (
	"math"

	"github.com/loract/loract/gpu"
)

// Multi-head self-attention with batched products. q, k, v and the output
// are row-major (B·T)×d tensors; head h of image b is the T×dh block of
// rows b·T… and columns h·dh…, a row-major view with stride d whose image
// b+1 starts T·d elements later. The probabilities are a row-major
// (B·heads·T)×T tensor, row (b·heads + h)·T + i (vit's layout): for a fixed
// head the images' T×T blocks are heads·T² elements apart. So one
// MulBatched per head and product covers the batch.

// headView returns head h of image 0 of the (B·T)×d tensor x.
func (m *Model) headView(x *gpu.Matrix, h int) *gpu.Matrix {
	es := x.DType().Size()
	return gpu.RowMajor(x.Ptr()+uintptr(h*m.dh*es), m.tokens, m.dh, m.dim, x.DType())
}

// probView returns the T×T block of head h of image 0 of the
// probabilities-shaped tensor s.
func (m *Model) probView(s *gpu.Matrix, h int) *gpu.Matrix {
	es := s.DType().Size()
	T := m.tokens
	return gpu.RowMajor(s.Ptr()+uintptr(h*T*T*es), T, T, T, s.DType())
}

// batched is MulBatched over the batch's images, skipped after an error.
func (p *pass) batched(c *gpu.Matrix, sc int, alpha float64, a *gpu.Matrix, ta bool, sa int, b *gpu.Matrix, tb bool, sb int) {
	if p.err == nil {
		p.err = p.m.b.MulBatched(p.B, c, sc, alpha, a, ta, sa, b, tb, sb, 0)
	}
}

// attnFwd sets probs = softmax(q_h·k_hᵀ/√dh) and att_h = probs_h·v_h for
// every image and head (vit's attention).
func (p *pass) attnFwd(q, k, v, probs, att *gpu.Matrix) {
	if p.err != nil {
		return
	}
	m := p.m
	T, H := m.tokens, m.heads
	sx, sp := T*m.dim, H*T*T // strides between images
	scores := view(m.ws.scores, p.B*H*T)
	scale := 1 / math.Sqrt(float64(m.dh))
	for h := 0; h < H; h++ {
		p.batched(m.probView(scores, h), sp, scale, m.headView(q, h), false, sx, m.headView(k, h), true, sx)
	}
	if p.err == nil {
		p.run(m.k.softmaxFwd(probs, scores))
	}
	p.attnOut(probs, v, att)
}

// attnOut sets att_h = probs_h·v_h for every image and head.
func (p *pass) attnOut(probs, v, att *gpu.Matrix) {
	m := p.m
	T, H := m.tokens, m.heads
	sx, sp := T*m.dim, H*T*T
	for h := 0; h < H; h++ {
		p.batched(m.headView(att, h), sx, 1, m.probView(probs, h), false, sp, m.headView(v, h), false, sx)
	}
}

// attnBwd writes the gradients of q, k and v for the gradient datt of the
// attention's output (vit's attentionBackward): dV = Pᵀ·dO, dP = dO·Vᵀ,
// dS = P ⊙ (dP − rowsum(dP ⊙ P))/√dh, dQ = dS·K, dK = dSᵀ·Q per head.
func (p *pass) attnBwd(q, k, v, probs, datt, dq, dk, dv *gpu.Matrix) {
	if p.err != nil {
		return
	}
	m := p.m
	T, H := m.tokens, m.heads
	sx, sp := T*m.dim, H*T*T
	dp := view(m.ws.dp, p.B*H*T)
	ds := view(m.ws.ds, p.B*H*T)
	for h := 0; h < H; h++ {
		dO := m.headView(datt, h)
		p.batched(m.probView(dp, h), sp, 1, dO, false, sx, m.headView(v, h), true, sx)
		p.batched(m.headView(dv, h), sx, 1, m.probView(probs, h), true, sp, dO, false, sx)
	}
	if p.err == nil {
		p.run(m.k.softmaxBwd(ds, dp, probs, float32(1/math.Sqrt(float64(m.dh)))))
	}
	for h := 0; h < H; h++ {
		dsh := m.probView(ds, h)
		p.batched(m.headView(dq, h), sx, 1, dsh, false, sp, m.headView(k, h), false, sx)
		p.batched(m.headView(dk, h), sx, 1, dsh, true, sp, m.headView(q, h), false, sx)
	}
}
