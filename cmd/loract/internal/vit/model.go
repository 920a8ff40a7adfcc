// Package vit is a small vision transformer with hand-written forward and
// backward passes, for the loract demo: an image is cut into Patch×Patch
// patches, each a token embedded linearly with a learned position; Depth
// pre-norm encoder blocks of multi-head self-attention and a GELU MLP with
// residual connections; mean pooling, a final LayerNorm and a linear
// classification head. LoRA adapters on the attention and MLP projections
// make it fine-tunable with the base frozen. Everything is float64 on the
// CPU; the matrix products go through cpu.Backend{}.Mul.
//
// Backward saves its tensors through a Saver, so that the same model runs
// with plain backpropagation, with loract compressing what each op saves,
// or with compressed checkpointing of whole blocks (Run).
package vit

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Config sizes a model.
type Config struct {
	Side, Patch int // image side and patch side, in pixels; Patch divides Side
	Dim, Heads  int // hidden size d and number of heads; Heads divides Dim
	MLP         int // hidden size of the MLP
	Depth       int // number of blocks
	Classes     int
	Seed        uint64
}

// Tokens returns the number of tokens per image.
func (c Config) Tokens() int { return (c.Side / c.Patch) * (c.Side / c.Patch) }

// Model is the transformer.
type Model struct {
	Cfg    Config
	Embed  *Linear
	Pos    *Param
	Blocks []*Block
	Norm   *LayerNorm
	Head   *Linear
}

// Block is one pre-norm encoder block.
type Block struct {
	Name               string
	LN1, LN2           *LayerNorm
	Q, K, V, O, F1, F2 *Linear
	Heads              int
}

func (b *Block) linears() []*Linear { return []*Linear{b.Q, b.K, b.V, b.O, b.F1, b.F2} }

// New returns a model with weights drawn from a PCG seeded by cfg.Seed:
// N(0, 1/fan-in) weights, zero biases, unit LayerNorm gains. All base
// parameters are trainable.
func New(cfg Config) *Model {
	if cfg.Side%cfg.Patch != 0 || cfg.Dim%cfg.Heads != 0 {
		panic(fmt.Sprintf("vit: bad config %+v", cfg))
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 1))
	lin := func(name string, in, out int) *Linear {
		l := &Linear{Name: name, W: newParam(name+".w", in, out), B: newParam(name+".b", 1, out)}
		raw := l.W.W.RawMatrix().Data
		for i := range raw {
			raw[i] = rng.NormFloat64() / math.Sqrt(float64(in))
		}
		l.W.Trainable, l.B.Trainable = true, true
		return l
	}
	ln := func(name string, d int) *LayerNorm {
		n := &LayerNorm{Name: name, Gamma: newParam(name+".g", 1, d), Beta: newParam(name+".b", 1, d)}
		for j := 0; j < d; j++ {
			n.Gamma.W.Set(0, j, 1)
		}
		n.Gamma.Trainable, n.Beta.Trainable = true, true
		return n
	}
	d := cfg.Dim
	m := &Model{Cfg: cfg, Embed: lin("embed", cfg.Patch*cfg.Patch, d), Pos: newParam("pos", cfg.Tokens(), d)}
	m.Pos.Trainable = true
	pos := m.Pos.W.RawMatrix().Data
	for i := range pos {
		pos[i] = 0.02 * rng.NormFloat64()
	}
	for i := 0; i < cfg.Depth; i++ {
		n := fmt.Sprintf("blk%d", i)
		m.Blocks = append(m.Blocks, &Block{
			Name: n, Heads: cfg.Heads,
			LN1: ln(n+".ln1", d), LN2: ln(n+".ln2", d),
			Q: lin(n+".q", d, d), K: lin(n+".k", d, d), V: lin(n+".v", d, d), O: lin(n+".o", d, d),
			F1: lin(n+".fc1", d, cfg.MLP), F2: lin(n+".fc2", cfg.MLP, d),
		})
	}
	m.Norm = ln("norm", d)
	m.Head = lin("head", d, cfg.Classes)
	return m
}

// AddLoRA freezes every base parameter, adds trainable rank-r LoRA
// adapters with scale s to the q, k, v, o, fc1 and fc2 projections of
// every block (A ~ N(0, 1/in), B = 0, so the model is unchanged), and
// leaves the classification head trainable.
func (m *Model) AddLoRA(r int, s float64, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, p := range m.params(true) {
		p.Trainable = false
	}
	for _, b := range m.Blocks {
		for _, l := range b.linears() {
			in, out := l.W.W.Dims()
			l.LA, l.LB = newParam(l.Name+".lora_a", in, r), newParam(l.Name+".lora_b", r, out)
			raw := l.LA.W.RawMatrix().Data
			for i := range raw {
				raw[i] = rng.NormFloat64() / math.Sqrt(float64(in))
			}
			l.LA.Trainable, l.LB.Trainable, l.Scale = true, true, s
		}
	}
	m.Head.W.Trainable, m.Head.B.Trainable = true, true
}

// params returns every parameter (all) or the trainable ones.
func (m *Model) params(all bool) []*Param {
	var ps []*Param
	add := func(p ...*Param) {
		for _, q := range p {
			if q != nil && (all || q.Trainable) {
				ps = append(ps, q)
			}
		}
	}
	addLin := func(l *Linear) { add(l.W, l.B, l.LA, l.LB) }
	addLin(m.Embed)
	add(m.Pos)
	for _, b := range m.Blocks {
		add(b.LN1.Gamma, b.LN1.Beta, b.LN2.Gamma, b.LN2.Beta)
		for _, l := range b.linears() {
			addLin(l)
		}
	}
	add(m.Norm.Gamma, m.Norm.Beta)
	addLin(m.Head)
	return ps
}

// Params returns the trainable parameters.
func (m *Model) Params() []*Param { return m.params(false) }

// ZeroGrad zeroes every gradient.
func (m *Model) ZeroGrad() {
	for _, p := range m.params(true) {
		p.G.Zero()
	}
}

// Run chooses how activations are saved for backward. Main saves the
// compressible set — the inputs of the linear layers and of GELU — and
// Rest everything else (LayerNorm's normalised input, q, k, v, the
// attention probabilities, LoRA's x·A). With Checkpoint, each block saves
// only its input through Main, and backward recomputes the block from it,
// saving the block's tensors through Rest for the time of its backward.
type Run struct {
	Main, Rest Saver
	Checkpoint bool
	// Rebuild names the compressible tensors that a run without
	// Checkpoint does not save through Main but rebuilds in backward from
	// what it saves anyway (rebuild.go).
	Rebuild Rebuild
	// Ends makes Checkpoint leave its two ends out, as the device model's
	// SetCheckpointEnds does: the first block's input is not saved but
	// recomputed in backward from the images (the patch embedding), and
	// the last block saves its tensors through Rest in the forward, as
	// its recomputation would, instead of being recomputed. At depth ≤ 2
	// nothing is then saved through Main.
	Ends bool
}

// CompressedInput reports whether compressed checkpointing saves the
// input of block i (of depth blocks) through Main: every block's, or with
// its ends left out (Run.Ends) every block's but the first's and the
// last's.
func CompressedInput(i, depth int, ends bool) bool {
	return i >= 0 && i < depth && (!ends || i > 0 && i < depth-1)
}

// PlainRun is ordinary backpropagation.
var PlainRun = Run{Main: Plain, Rest: Plain}

// Tape holds what one forward pass saved for its backward.
type Tape struct {
	run    Run
	batch  int
	pixels []float64 // the images, for Run.Ends's recomputed embedding
	embed  linearTape
	blocks []blockTape
	ckpt   []Stash
	norm   lnTape
	head   linearTape
}

type blockTape struct {
	ln1, ln2             lnTape
	q, k, v, o, fc1, fc2 linearTape
	qs, ks, vs, p, u     Stash
}

// Patches returns the (batch·tokens)×(Patch²) matrix of the patches of
// batch images given as consecutive Side² pixel rows of pixels.
func (m *Model) Patches(pixels []float64, batch int) *mat.Dense {
	c := m.Cfg
	g := c.Side / c.Patch
	pp := c.Patch * c.Patch
	out := mat.NewDense(batch*c.Tokens(), pp, nil)
	for b := 0; b < batch; b++ {
		img := pixels[b*c.Side*c.Side : (b+1)*c.Side*c.Side]
		for t := 0; t < c.Tokens(); t++ {
			pr, pc := t/g, t%g
			row := out.RawRowView(b*c.Tokens() + t)
			for i := 0; i < c.Patch; i++ {
				copy(row[i*c.Patch:(i+1)*c.Patch], img[(pr*c.Patch+i)*c.Side+pc*c.Patch:])
			}
		}
	}
	return out
}

// Forward returns the batch×Classes logits of batch images. If tape is
// not nil it is filled for Backward according to run.
func (m *Model) Forward(pixels []float64, batch int, run Run, tape *Tape) (*mat.Dense, error) {
	T := m.Cfg.Tokens()
	var et *linearTape
	if tape != nil {
		*tape = Tape{run: run, batch: batch, pixels: pixels, blocks: make([]blockTape, len(m.Blocks)), ckpt: make([]Stash, len(m.Blocks))}
		et = &tape.embed
	}
	x, err := m.embed(pixels, batch, run.Rest, et)
	if err != nil {
		return nil, err
	}
	last := len(m.Blocks) - 1
	for i, blk := range m.Blocks {
		var bt *blockTape
		main, rest := run.Main, run.Rest
		if tape != nil {
			switch {
			case run.Checkpoint && CompressedInput(i, len(m.Blocks), run.Ends):
				if tape.ckpt[i], err = run.Main(blk.Name+".in", x); err != nil {
					return nil, err
				}
			case run.Checkpoint && i == last:
				bt, main = &tape.blocks[i], run.Rest // as its recomputation would save
			case run.Checkpoint:
				// the first block with the ends out: recomputed from the images in backward
			default:
				bt = &tape.blocks[i]
			}
		}
		if x, err = blk.forward(x, batch, main, rest, run.Rebuild, bt); err != nil {
			return nil, err
		}
	}
	// mean pooling over tokens
	d := m.Cfg.Dim
	pooled := mat.NewDense(batch, d, nil)
	for b := 0; b < batch; b++ {
		pr := pooled.RawRowView(b)
		for t := 0; t < T; t++ {
			for j, v := range x.RawRowView(b*T + t) {
				pr[j] += v / float64(T)
			}
		}
	}
	var nt *lnTape
	var ht *linearTape
	if tape != nil {
		nt, ht = &tape.norm, &tape.head
	}
	y, err := m.Norm.forward(pooled, run.Rest, nt)
	if err != nil {
		return nil, err
	}
	return m.Head.forward(y, run.Rest, run.Rest, ht)
}

// embed returns the blocks' input: the patch embedding of batch images
// plus the positions, saving the embedding's tape into et (nil: none).
func (m *Model) embed(pixels []float64, batch int, rest Saver, et *linearTape) (*mat.Dense, error) {
	T := m.Cfg.Tokens()
	x, err := m.Embed.forward(m.Patches(pixels, batch), rest, rest, et)
	if err != nil {
		return nil, err
	}
	pos := m.Pos.W.RawMatrix()
	for b := 0; b < batch; b++ {
		for t := 0; t < T; t++ {
			row := x.RawRowView(b*T + t)
			for j, v := range pos.Data[t*pos.Stride : t*pos.Stride+pos.Cols] {
				row[j] += v
			}
		}
	}
	return x, nil
}

// Backward accumulates the gradients of the trainable parameters for the
// output gradient dlogits (batch×Classes) and releases the tape.
func (m *Model) Backward(tape *Tape, dlogits *mat.Dense) error {
	run := tape.run
	T, d, batch := m.Cfg.Tokens(), m.Cfg.Dim, tape.batch
	dy, err := m.Head.backward(&tape.head, dlogits, true)
	if err != nil {
		return err
	}
	dpool, err := m.Norm.backward(&tape.norm, dy)
	if err != nil {
		return err
	}
	dx := mat.NewDense(batch*T, d, nil)
	for b := 0; b < batch; b++ {
		pr := dpool.RawRowView(b)
		for t := 0; t < T; t++ {
			row := dx.RawRowView(b*T + t)
			for j, v := range pr {
				row[j] = v / float64(T)
			}
		}
	}
	for i := len(m.Blocks) - 1; i >= 0; i-- {
		blk := m.Blocks[i]
		bt := &tape.blocks[i]
		if run.Checkpoint && !(run.Ends && i == len(m.Blocks)-1) { // the last block's forward saved its tape
			x, err := m.blockInput(tape, i)
			if err != nil {
				return err
			}
			if _, err := blk.forward(x, batch, run.Rest, run.Rest, Rebuild{}, bt); err != nil {
				return err
			}
		}
		if dx, err = blk.backward(bt, batch, dx); err != nil {
			return err
		}
	}
	if m.Pos.Trainable {
		g := m.Pos.G.RawMatrix()
		for b := 0; b < batch; b++ {
			for t := 0; t < T; t++ {
				row := g.Data[t*g.Stride : t*g.Stride+g.Cols]
				for j, v := range dx.RawRowView(b*T + t) {
					row[j] += v
				}
			}
		}
	}
	if m.Embed.W.Trainable || m.Embed.B.Trainable {
		_, err = m.Embed.backward(&tape.embed, dx, false)
	}
	return err
}

// blockInput returns block i's input for its recomputation: rebuilt from
// its stash, which it releases, or where compressed checkpointing left it
// out (the first block, Run.Ends) the embedding of the images again.
func (m *Model) blockInput(tape *Tape, i int) (*mat.Dense, error) {
	if !CompressedInput(i, len(m.Blocks), tape.run.Ends) {
		return m.embed(tape.pixels, tape.batch, nil, nil)
	}
	var x mat.Dense
	if err := tape.ckpt[i].Reconstruct(&x); err != nil {
		return nil, err
	}
	return &x, tape.ckpt[i].Release()
}

func (b *Block) forward(x *mat.Dense, batch int, main, rest Saver, rb Rebuild, tape *blockTape) (*mat.Dense, error) {
	var t blockTape
	if tape == nil {
		tape = &t
		main, rest, rb = nil, nil, Rebuild{}
	}
	// Main's savers for the linear and GELU inputs: a rebuilt one saves
	// nothing and hands backward a stash that rebuilds the tensor.
	mainOr := func(on bool, rebuilt func() Stash) Saver {
		if !on || main == nil {
			return main
		}
		return func(string, *mat.Dense) (Stash, error) { return rebuilt(), nil }
	}
	save := func(s Saver, name string, m *mat.Dense, dst *Stash) error {
		if s == nil {
			return nil
		}
		var err error
		*dst, err = s(b.Name+"."+name, m)
		return err
	}
	tp := func(l *linearTape) *linearTape {
		if main == nil {
			return nil
		}
		return l
	}
	lp := func(l *lnTape) *lnTape {
		if main == nil {
			return nil
		}
		return l
	}
	y1, err := b.LN1.forward(x, rest, lp(&tape.ln1))
	if err != nil {
		return nil, err
	}
	// q, k and v read the same y1: it is saved once and shared.
	qkv := shared(mainOr(rb.LN, func() Stash { return &lnOutput{t: &tape.ln1, ln: b.LN1, refs: 1} }))
	q, err := b.Q.forward(y1, qkv, rest, tp(&tape.q))
	if err != nil {
		return nil, err
	}
	k, err := b.K.forward(y1, qkv, rest, tp(&tape.k))
	if err != nil {
		return nil, err
	}
	v, err := b.V.forward(y1, qkv, rest, tp(&tape.v))
	if err != nil {
		return nil, err
	}
	att, p := attention(q, k, v, batch, b.Heads)
	for _, s := range []struct {
		n string
		m *mat.Dense
		d *Stash
	}{{"qh", q, &tape.qs}, {"kh", k, &tape.ks}, {"vh", v, &tape.vs}, {"attn_p", p, &tape.p}} {
		if err := save(rest, s.n, s.m, s.d); err != nil {
			return nil, err
		}
	}
	z, err := b.O.forward(att, mainOr(rb.Attention, func() Stash { return attnOutput{p: tape.p, v: tape.vs, batch: batch, heads: b.Heads} }), rest, tp(&tape.o))
	if err != nil {
		return nil, err
	}
	z.Add(z, x)
	x2 := z
	y2, err := b.LN2.forward(x2, rest, lp(&tape.ln2))
	if err != nil {
		return nil, err
	}
	u, err := b.F1.forward(y2, mainOr(rb.LN, func() Stash { return &lnOutput{t: &tape.ln2, ln: b.LN2, refs: 1} }), rest, tp(&tape.fc1))
	if err != nil {
		return nil, err
	}
	if err := save(main, "gelu", u, &tape.u); err != nil {
		return nil, err
	}
	r, c := u.Dims()
	a := mat.NewDense(r, c, nil)
	ar, ur := a.RawMatrix().Data, u.RawMatrix().Data
	for i, v := range ur {
		ar[i], _ = gelu(v)
	}
	out, err := b.F2.forward(a, mainOr(rb.GELU, func() Stash { return &geluOutput{u: tape.u} }), rest, tp(&tape.fc2))
	if err != nil {
		return nil, err
	}
	out.Add(out, x2)
	return out, nil
}

func (b *Block) backward(tape *blockTape, batch int, gout *mat.Dense) (*mat.Dense, error) {
	// With fc2's input rebuilt (Rebuild.GELU), GELU's output and
	// derivative come from one rebuild of its input.
	rg, _ := tape.fc2.x.(*geluOutput)
	if rg != nil {
		if err := rg.prepare(); err != nil {
			return nil, err
		}
	}
	da, err := b.F2.backward(&tape.fc2, gout, true)
	if err != nil {
		return nil, err
	}
	if rg != nil {
		dar, dg := da.RawMatrix().Data, rg.da.RawMatrix().Data
		for i, v := range dg {
			dar[i] *= v
		}
		rg.da = nil
	} else {
		var u mat.Dense
		if err := tape.u.Reconstruct(&u); err != nil {
			return nil, err
		}
		dar, ur := da.RawMatrix().Data, u.RawMatrix().Data
		for i, v := range ur {
			_, dg := gelu(v)
			dar[i] *= dg
		}
	}
	if err := tape.u.Release(); err != nil {
		return nil, err
	}
	dy2, err := b.F1.backward(&tape.fc1, da, true)
	if err != nil {
		return nil, err
	}
	dx2, err := b.LN2.backward(&tape.ln2, dy2)
	if err != nil {
		return nil, err
	}
	dx2.Add(dx2, gout)
	datt, err := b.O.backward(&tape.o, dx2, true)
	if err != nil {
		return nil, err
	}
	var q, k, v, p mat.Dense
	for _, s := range []struct {
		st Stash
		m  *mat.Dense
	}{{tape.qs, &q}, {tape.ks, &k}, {tape.vs, &v}, {tape.p, &p}} {
		if err := s.st.Reconstruct(s.m); err != nil {
			return nil, err
		}
		if err := s.st.Release(); err != nil {
			return nil, err
		}
	}
	dq, dk, dv := attentionBackward(&q, &k, &v, &p, datt, batch, b.Heads)
	dy1, err := b.Q.backward(&tape.q, dq, true)
	if err != nil {
		return nil, err
	}
	for _, s := range []struct {
		l *Linear
		t *linearTape
		g *mat.Dense
	}{{b.K, &tape.k, dk}, {b.V, &tape.v, dv}} {
		d, err := s.l.backward(s.t, s.g, true)
		if err != nil {
			return nil, err
		}
		dy1.Add(dy1, d)
	}
	dx, err := b.LN1.backward(&tape.ln1, dy1)
	if err != nil {
		return nil, err
	}
	dx.Add(dx, dx2)
	return dx, nil
}

// attention returns softmax(q_h·k_hᵀ/√dh)·v_h for every image and head,
// concatenated over heads (L×d), and the probabilities as a
// (batch·heads·T)×T matrix, row (b·heads+h)·T+i.
func attention(q, k, v *mat.Dense, batch, heads int) (out, p *mat.Dense) {
	L, d := q.Dims()
	T, dh := L/batch, d/heads
	scale := 1 / math.Sqrt(float64(dh))
	out = mat.NewDense(L, d, nil)
	p = mat.NewDense(batch*heads*T, T, nil)
	qd, kd := q.RawMatrix().Data, k.RawMatrix().Data
	for b := 0; b < batch; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < T; i++ {
				pr := p.RawRowView((b*heads+h)*T + i)
				qi := qd[(b*T+i)*d+h*dh : (b*T+i)*d+h*dh+dh]
				mx := math.Inf(-1)
				for j := 0; j < T; j++ {
					kj := kd[(b*T+j)*d+h*dh : (b*T+j)*d+h*dh+dh]
					var s float64
					for t, a := range qi {
						s += a * kj[t]
					}
					pr[j] = s * scale
					mx = max(mx, pr[j])
				}
				var sum float64
				for j := range pr {
					pr[j] = math.Exp(pr[j] - mx)
					sum += pr[j]
				}
				for j := range pr {
					pr[j] /= sum
				}
			}
		}
	}
	attentionOutput(out, p, v, batch, heads)
	return out, p
}

// attentionOutput adds P_h·v_h of every image and head to out (L×d), for
// the probabilities p (batch·heads·T × T) and values v (L×d).
func attentionOutput(out, p, v *mat.Dense, batch, heads int) {
	L, d := v.Dims()
	T, dh := L/batch, d/heads
	vd, od := v.RawMatrix().Data, out.RawMatrix().Data
	for b := 0; b < batch; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < T; i++ {
				pr := p.RawRowView((b*heads+h)*T + i)
				oi := od[(b*T+i)*d+h*dh : (b*T+i)*d+h*dh+dh]
				for j, pj := range pr {
					vj := vd[(b*T+j)*d+h*dh : (b*T+j)*d+h*dh+dh]
					for t, a := range vj {
						oi[t] += pj * a
					}
				}
			}
		}
	}
}

func attentionBackward(q, k, v, p, dout *mat.Dense, batch, heads int) (dq, dk, dv *mat.Dense) {
	L, d := q.Dims()
	T, dh := L/batch, d/heads
	scale := 1 / math.Sqrt(float64(dh))
	dq, dk, dv = mat.NewDense(L, d, nil), mat.NewDense(L, d, nil), mat.NewDense(L, d, nil)
	qd, kd, vd, gd := q.RawMatrix().Data, k.RawMatrix().Data, v.RawMatrix().Data, dout.RawMatrix().Data
	dqd, dkd, dvd := dq.RawMatrix().Data, dk.RawMatrix().Data, dv.RawMatrix().Data
	dp := make([]float64, T)
	for b := 0; b < batch; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < T; i++ {
				pr := p.RawRowView((b*heads+h)*T + i)
				gi := gd[(b*T+i)*d+h*dh : (b*T+i)*d+h*dh+dh]
				var dot float64
				for j := 0; j < T; j++ {
					vj := vd[(b*T+j)*d+h*dh : (b*T+j)*d+h*dh+dh]
					dvj := dvd[(b*T+j)*d+h*dh : (b*T+j)*d+h*dh+dh]
					var s float64
					for t, g := range gi {
						s += g * vj[t]
						dvj[t] += pr[j] * g
					}
					dp[j] = s
					dot += s * pr[j]
				}
				qi := qd[(b*T+i)*d+h*dh : (b*T+i)*d+h*dh+dh]
				dqi := dqd[(b*T+i)*d+h*dh : (b*T+i)*d+h*dh+dh]
				for j := 0; j < T; j++ {
					ds := pr[j] * (dp[j] - dot) * scale
					kj := kd[(b*T+j)*d+h*dh : (b*T+j)*d+h*dh+dh]
					dkj := dkd[(b*T+j)*d+h*dh : (b*T+j)*d+h*dh+dh]
					for t := range qi {
						dqi[t] += ds * kj[t]
						dkj[t] += ds * qi[t]
					}
				}
			}
		}
	}
	return dq, dk, dv
}

// Loss returns the mean softmax cross-entropy of logits (batch×Classes)
// against labels, its gradient with respect to the logits, and the number
// of correct argmax predictions.
func Loss(logits *mat.Dense, labels []int) (loss float64, grad *mat.Dense, correct int) {
	n, c := logits.Dims()
	grad = mat.NewDense(n, c, nil)
	for i := 0; i < n; i++ {
		row, g := logits.RawRowView(i), grad.RawRowView(i)
		mx, arg := math.Inf(-1), 0
		for j, v := range row {
			if v > mx {
				mx, arg = v, j
			}
		}
		if arg == labels[i] {
			correct++
		}
		var sum float64
		for j, v := range row {
			g[j] = math.Exp(v - mx)
			sum += g[j]
		}
		loss += math.Log(sum) + mx - row[labels[i]]
		for j := range g {
			g[j] /= sum * float64(n)
		}
		g[labels[i]] -= 1 / float64(n)
	}
	return loss / float64(n), grad, correct
}

// Adam is the Adam optimiser.
type Adam struct {
	LR, Beta1, Beta2, Eps float64
	t                     int
}

// Step updates the parameters from their gradients and zeroes them.
func (o *Adam) Step(ps []*Param) {
	o.t++
	c1 := 1 - math.Pow(o.Beta1, float64(o.t))
	c2 := 1 - math.Pow(o.Beta2, float64(o.t))
	for _, p := range ps {
		w, g := p.W.RawMatrix().Data, p.G.RawMatrix().Data
		if p.m == nil {
			p.m, p.v = make([]float64, len(w)), make([]float64, len(w))
		}
		for i, gi := range g {
			p.m[i] = o.Beta1*p.m[i] + (1-o.Beta1)*gi
			p.v[i] = o.Beta2*p.v[i] + (1-o.Beta2)*gi*gi
			w[i] -= o.LR * (p.m[i] / c1) / (math.Sqrt(p.v[i]/c2) + o.Eps)
			g[i] = 0
		}
	}
}
