package vit

import (
	"math"

	"github.com/loract/loract/cpu"
	"gonum.org/v1/gonum/mat"
)

// mul sets dst = op(a)·op(b), allocating dst if it is zero-sized. It goes
// through cpu.Backend{}.Mul so that the CPU backend's GEMM serves the model.
func mul(dst *mat.Dense, a *mat.Dense, ta bool, b *mat.Dense, tb bool) {
	ar, ac := a.Dims()
	if ta {
		ar, ac = ac, ar
	}
	br, bc := b.Dims()
	if tb {
		br, bc = bc, br
	}
	_ = ac
	_ = br
	if dst.IsEmpty() {
		dst.ReuseAs(ar, bc)
	}
	if err := (cpu.Backend{}).Mul(dst, 1, a, ta, b, tb, 0); err != nil {
		panic(err) // the CPU backend returns no errors
	}
}

// addMul sets dst += alpha·op(a)·op(b).
func addMul(dst *mat.Dense, alpha float64, a *mat.Dense, ta bool, b *mat.Dense, tb bool) {
	if err := (cpu.Backend{}).Mul(dst, alpha, a, ta, b, tb, 1); err != nil {
		panic(err)
	}
}

// addRow adds the row vector v (1×c) to every row of x.
func addRow(x, v *mat.Dense) {
	raw := x.RawMatrix()
	vr := v.RawRowView(0)
	for i := 0; i < raw.Rows; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
		for j := range row {
			row[j] += vr[j]
		}
	}
}

// addColSums adds the column sums of g to dst (1×c).
func addColSums(dst, g *mat.Dense) {
	raw := g.RawMatrix()
	d := dst.RawRowView(0)
	for i := 0; i < raw.Rows; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
		for j, v := range row {
			d[j] += v
		}
	}
}

// Param is a trainable tensor with its gradient and Adam moments.
type Param struct {
	Name      string
	W, G      *mat.Dense
	m, v      []float64
	Trainable bool
}

func newParam(name string, r, c int) *Param {
	return &Param{Name: name, W: mat.NewDense(r, c, nil), G: mat.NewDense(r, c, nil)}
}

// Linear is y = x·W + b + s·(x·A)·B, the LoRA branch (A in×r, B r×out,
// s = Scale) present when A is not nil.
type Linear struct {
	Name  string
	W, B  *Param
	LA    *Param // LoRA A, in×r
	LB    *Param // LoRA B, r×out
	Scale float64
}

type linearTape struct {
	x  Stash // input, when a gradient needs it
	xa Stash // x·A, for LoRA's B gradient
}

// needsInput reports whether backward needs the input x: for the weight
// gradient of a trainable W or of LoRA's A.
func (l *Linear) needsInput() bool {
	return l.W.Trainable || (l.LA != nil && l.LA.Trainable)
}

func (l *Linear) forward(x *mat.Dense, save, rest Saver, tape *linearTape) (*mat.Dense, error) {
	var y mat.Dense
	mul(&y, x, false, l.W.W, false)
	addRow(&y, l.B.W)
	if l.LA != nil {
		var xa mat.Dense
		mul(&xa, x, false, l.LA.W, false)
		addMul(&y, l.Scale, &xa, false, l.LB.W, false)
		if tape != nil && l.LB.Trainable {
			s, err := rest(l.Name+".xa", &xa)
			if err != nil {
				return nil, err
			}
			tape.xa = s
		}
	}
	if tape != nil && l.needsInput() {
		s, err := save(l.Name, x)
		if err != nil {
			return nil, err
		}
		tape.x = s
	}
	return &y, nil
}

// backward accumulates the gradients of the trainable parameters from the
// output gradient g and returns the input gradient if wantDx.
func (l *Linear) backward(tape *linearTape, g *mat.Dense, wantDx bool) (*mat.Dense, error) {
	if l.B.Trainable {
		addColSums(l.B.G, g)
	}
	if l.W.Trainable {
		var gw mat.Dense // gᵀ·x, out×in
		if err := tape.x.WeightGradOutIn(&gw, g); err != nil {
			return nil, err
		}
		l.W.G.Add(l.W.G, gw.T())
	}
	var gb mat.Dense
	if l.LA != nil {
		mul(&gb, g, false, l.LB.W, true) // L×r
		if l.LB.Trainable {
			var xa mat.Dense
			if err := tape.xa.Reconstruct(&xa); err != nil {
				return nil, err
			}
			if err := tape.xa.Release(); err != nil {
				return nil, err
			}
			addMul(l.LB.G, l.Scale, &xa, true, g, false)
		}
		if l.LA.Trainable {
			var ga mat.Dense // gbᵀ·x, r×in
			if err := tape.x.WeightGradOutIn(&ga, &gb); err != nil {
				return nil, err
			}
			ga.Scale(l.Scale, &ga)
			l.LA.G.Add(l.LA.G, ga.T())
		}
	}
	if tape.x != nil {
		if err := tape.x.Release(); err != nil {
			return nil, err
		}
	}
	if !wantDx {
		return nil, nil
	}
	var dx mat.Dense
	mul(&dx, g, false, l.W.W, true)
	if l.LA != nil {
		addMul(&dx, l.Scale, &gb, false, l.LA.W, true)
	}
	return &dx, nil
}

// LayerNorm normalises each row: y = (x − μ)·rstd·γ + β, rstd = 1/√(σ²+ε).
type LayerNorm struct {
	Name        string
	Gamma, Beta *Param
}

const lnEps = 1e-5

type lnTape struct {
	xhat Stash
	rstd []float64
}

// affine sets y = x̂·γ + β for one row x̂: the forward's output, and the
// per-op rebuild's (lnOutput), which must be the forward's bit for bit.
// y may be x̂.
func (ln *LayerNorm) affine(y, xh []float64) {
	g, b := ln.Gamma.W.RawRowView(0), ln.Beta.W.RawRowView(0)
	for j, v := range xh {
		y[j] = v*g[j] + b[j]
	}
}

func (ln *LayerNorm) forward(x *mat.Dense, save Saver, tape *lnTape) (*mat.Dense, error) {
	r, c := x.Dims()
	xhat := mat.NewDense(r, c, nil)
	y := mat.NewDense(r, c, nil)
	rstd := make([]float64, r)
	for i := 0; i < r; i++ {
		row := x.RawRowView(i)
		var mu, v float64
		for _, a := range row {
			mu += a
		}
		mu /= float64(c)
		for _, a := range row {
			v += (a - mu) * (a - mu)
		}
		rs := 1 / math.Sqrt(v/float64(c)+lnEps)
		rstd[i] = rs
		xh := xhat.RawRowView(i)
		for j, a := range row {
			xh[j] = (a - mu) * rs
		}
		ln.affine(y.RawRowView(i), xh)
	}
	if tape != nil {
		s, err := save(ln.Name, xhat)
		if err != nil {
			return nil, err
		}
		tape.xhat, tape.rstd = s, rstd
	}
	return y, nil
}

func (ln *LayerNorm) backward(tape *lnTape, gy *mat.Dense) (*mat.Dense, error) {
	var xhat mat.Dense
	if err := tape.xhat.Reconstruct(&xhat); err != nil {
		return nil, err
	}
	if err := tape.xhat.Release(); err != nil {
		return nil, err
	}
	r, c := gy.Dims()
	dx := mat.NewDense(r, c, nil)
	g := ln.Gamma.W.RawRowView(0)
	dg, db := ln.Gamma.G.RawRowView(0), ln.Beta.G.RawRowView(0)
	dxh := make([]float64, c)
	for i := 0; i < r; i++ {
		gr, xh := gy.RawRowView(i), xhat.RawRowView(i)
		var m1, m2 float64
		for j, v := range gr {
			if ln.Gamma.Trainable {
				dg[j] += v * xh[j]
				db[j] += v
			}
			dxh[j] = v * g[j]
			m1 += dxh[j]
			m2 += dxh[j] * xh[j]
		}
		m1 /= float64(c)
		m2 /= float64(c)
		out := dx.RawRowView(i)
		for j := range out {
			out[j] = tape.rstd[i] * (dxh[j] - m1 - xh[j]*m2)
		}
	}
	return dx, nil
}

// gelu is the tanh approximation of GELU and its derivative.
func gelu(u float64) (y, dy float64) {
	const c = 0.7978845608028654 // √(2/π)
	const a = 0.044715
	t := math.Tanh(c * (u + a*u*u*u))
	y = 0.5 * u * (1 + t)
	dy = 0.5*(1+t) + 0.5*u*(1-t*t)*c*(1+3*a*u*u)
	return y, dy
}
