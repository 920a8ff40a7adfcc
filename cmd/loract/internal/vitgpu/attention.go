package vitgpu

import (
	"math"

	"github.com/loract/loract/gpu"
)

// Multi-head self-attention with batched products. q, k, v and the output
// are row-major (B·T)×d tensors; head h of image b is the T×dh block of
// rows b·T… and columns h·dh…, a row-major view with stride d whose image
// b+1 starts T·d elements later and whose head h+1 dh elements later. The
// probabilities are a row-major (B·heads·T)×T tensor, row
// (b·heads + h)·T + i (vit's layout): the images' T×T blocks are heads·T²
// elements apart, the heads' T². So one MulBatchedGrid per product covers
// every image and head (where one MulBatched per head took six launches
// of about 7 µs each on the demo's shapes: docs/results.md,
// "Twenty-fifth session").

// headView returns head 0 of image 0 of the (B·T)×d tensor x (the
// others lie at strides' offsets).
func (m *Model) headView(x *gpu.Matrix) *gpu.Matrix {
	return gpu.RowMajor(x.Ptr(), m.tokens, m.dh, m.dim, x.DType())
}

// probView returns the T×T block of head 0 of image 0 of the
// probabilities-shaped tensor s.
func (m *Model) probView(s *gpu.Matrix) *gpu.Matrix {
	T := m.tokens
	return gpu.RowMajor(s.Ptr(), T, T, T, s.DType())
}

// strides returns the (image, head) strides of the token-major tensors
// (q, k, v, the output and their gradients) and of the probabilities.
func (m *Model) strides() (tok, prob [2]int) {
	T := m.tokens
	return [2]int{T * m.dim, m.dh}, [2]int{m.heads * T * T, T * T}
}

// batched is MulBatchedGrid over the batch's images and the heads, c, a
// and b being head 0 of image 0 and sc, sa and sb their (image, head)
// strides; skipped after an error.
func (p *pass) batched(c *gpu.Matrix, sc [2]int, alpha float64, a *gpu.Matrix, ta bool, sa [2]int, b *gpu.Matrix, tb bool, sb [2]int) {
	if p.err == nil {
		p.err = p.m.b.MulBatchedGrid(p.B, p.m.heads, c, sc[0], sc[1], alpha, a, ta, sa[0], sa[1], b, tb, sb[0], sb[1], 0)
	}
}

// attnFwd sets probs = softmax(q_h·k_hᵀ/√dh) and att_h = probs_h·v_h for
// every image and head (vit's attention).
func (p *pass) attnFwd(q, k, v, probs, att *gpu.Matrix) {
	if p.err != nil {
		return
	}
	m := p.m
	sx, sp := m.strides()
	scores := view(m.ws.scores, p.B*m.heads*m.tokens)
	scale := 1 / math.Sqrt(float64(m.dh))
	p.batched(m.probView(scores), sp, scale, m.headView(q), false, sx, m.headView(k), true, sx)
	if p.err == nil {
		p.run(m.k.softmaxFwd(probs, scores))
	}
	p.attnOut(probs, v, att)
}

// attnOut sets att_h = probs_h·v_h for every image and head.
func (p *pass) attnOut(probs, v, att *gpu.Matrix) {
	m := p.m
	sx, sp := m.strides()
	p.batched(m.headView(att), sx, 1, m.probView(probs), false, sp, m.headView(v), false, sx)
}

// attnBwd writes the gradients of q, k and v for the gradient datt of the
// attention's output (vit's attentionBackward): dV = Pᵀ·dO, dP = dO·Vᵀ,
// dS = P ⊙ (dP − rowsum(dP ⊙ P))/√dh, dQ = dS·K, dK = dSᵀ·Q per head.
func (p *pass) attnBwd(q, k, v, probs, datt, dq, dk, dv *gpu.Matrix) {
	if p.err != nil {
		return
	}
	m := p.m
	sx, sp := m.strides()
	dp := view(m.ws.dp, p.B*m.heads*m.tokens)
	ds := view(m.ws.ds, p.B*m.heads*m.tokens)
	dO := m.headView(datt)
	p.batched(m.probView(dp), sp, 1, dO, false, sx, m.headView(v), true, sx)
	p.batched(m.headView(dv), sx, 1, m.probView(probs), true, sp, dO, false, sx)
	if p.err == nil {
		p.run(m.k.softmaxBwd(ds, dp, probs, float32(1/math.Sqrt(float64(m.dh)))))
	}
	dsh := m.probView(ds)
	p.batched(m.headView(dq), sx, 1, dsh, false, sp, m.headView(k), false, sx)
	p.batched(m.headView(dk), sx, 1, dsh, true, sp, m.headView(q), false, sx)
}
