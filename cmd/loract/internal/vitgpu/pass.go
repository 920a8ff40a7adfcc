package vitgpu

import (
	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
)

// Mode is how a training pass saves activations for backward.
type Mode int

const (
	// Plain keeps every saved tensor as it is (in the activation type):
	// ordinary backpropagation, the baseline.
	Plain Mode = iota
	// PerOp compresses what each op saves from the compressible set —
	// the inputs of the linear layers (q, k and v share theirs) and of
	// GELU — and keeps the rest (LayerNorm's normalised input and 1/σ, the
	// attention heads and probabilities, LoRA's x·A).
	PerOp
	// Checkpoint compresses each block's input and nothing else of the
	// block; backward rebuilds the input, recomputes the block keeping its
	// tensors, and runs its backward (compressed checkpointing).
	Checkpoint
)

func (m Mode) String() string {
	switch m {
	case Plain:
		return "plain"
	case PerOp:
		return "ops"
	case Checkpoint:
		return "checkpoint"
	}
	return "Mode(?)"
}

// mainHow is how a block forward saves the compressible set.
type mainHow int

const (
	mainNone     mainHow = iota // not saved (a pass without backward, or checkpointing's first forward)
	mainKeep                    // kept as they are
	mainCompress                // compressed
)

// stash is one saved tensor of the compressible set: kept (x), or
// compressed (s).
type stash struct {
	x        *gpu.Matrix
	s        *activation.Saved
	bytes    int64
	released bool
}

type lnTape struct{ xhat, rstd *gpu.Matrix }

// blockTape is what one block saves for its backward.
type blockTape struct {
	ln1, ln2               lnTape
	y1, att, y2, u, a      *stash      // inputs of q/k/v, o, fc1, GELU, fc2
	hq, hk, hv, ho, h1, h2 *gpu.Matrix // LoRA's x·A of each linear
	q, k, v, p             *gpu.Matrix
}

// tape is what a training pass saves.
type tape struct {
	patches *gpu.Matrix // the embedding's input (pre-training only)
	blocks  []blockTape
	ckpt    []*stash // Checkpoint: the compressed block inputs
	norm    lnTape
	yn      *gpu.Matrix // the head's input
	mats    map[*gpu.Matrix]bool
	stashes []*stash
}

// timer is a pair of timed events around one piece of a step.
type timer struct {
	compress   bool // a Compress call; otherwise a rebuild in backward (rebuilt)
	start, end *gpu.Event
}

// pass is one forward (and backward) of a batch. Errors are values: the
// first one is kept and every later step is skipped (checks of p.err).
type pass struct {
	m     *Model
	B, L  int
	mode  Mode
	train bool
	c     *activation.Compressor
	t     *tape
	err   error

	keepRest bool    // the current block keeps its non-compressible tensors
	main     mainHow // and saves its compressible set so

	live0, peakLive int64 // allocator Live at the start; its largest excess at the sample points
	acct, peakAcct  int64 // the saved tensors' bytes, and their peak
	timers          []timer

	// pending are the compressions not yet made: PerOp's tensors of a
	// block, or of a group of blocks (Model.SetOpsGroup), Checkpoint's
	// block inputs of a group, compressed together (flush), one
	// CompressBatch each.
	pending []pendingSave
	// group is the number of block inputs Checkpoint compresses together
	// (Model.SetCheckpointGroup).
	group int
	// images and idx are the forward's (for Checkpoint's recomputed
	// embedding).
	images, idx uintptr
	// hold is set, per op, for a block whose compressions wait for a
	// later block's (Model.SetOpsGroup): its saved tensors go to buffers
	// of their own, listed in held until the group's flush.
	hold bool
	held []*gpu.Matrix
}

// pendingSave is a compression deferred to the next flush.
type pendingSave struct {
	layer string
	x     *gpu.Matrix
	st    *stash
}

func (p *pass) run(err error) {
	if p.err == nil && err != nil {
		p.err = err
	}
}

// mul is m.b.Mul, skipped after an error.
func (p *pass) mul(c *gpu.Matrix, alpha float64, a *gpu.Matrix, ta bool, b *gpu.Matrix, tb bool, beta float64) {
	if p.err == nil {
		p.err = p.m.b.Mul(c, alpha, a, ta, b, tb, beta)
	}
}

// keep allocates a rows×cols tensor from the memory pool for the tape,
// not zeroed: every tensor of the tape is written whole before it is read.
func (p *pass) keep(rows, cols int, dt gpu.DType) *gpu.Matrix {
	if p.err != nil {
		return nil
	}
	x, err := p.m.b.NewMatrixUninit(cols, rows, dt)
	if err != nil {
		p.err = err
		return nil
	}
	v := x.T()
	p.t.mats[v] = true
	p.acct += int64(rows * cols * dt.Size())
	return v
}

// drop frees a kept tensor once backward is done with it.
func (p *pass) drop(xs ...*gpu.Matrix) {
	for _, x := range xs {
		if x == nil || !p.t.mats[x] {
			continue
		}
		delete(p.t.mats, x)
		r, c := x.Dims()
		p.acct -= int64(r * c * x.DType().Size())
		p.m.b.Free(x)
	}
}

// event records a timed event, or nil after an error.
func (p *pass) event() *gpu.Event {
	if p.err != nil {
		return nil
	}
	e, err := p.m.b.RecordTimed()
	p.run(err)
	return e
}

// rebuilt runs f, a rebuild of what per-op backward reads (a compressed
// tensor reconstructed, or one of the Recompute settings' inputs), and in
// PerOp training times it as checkpointing's recomputations are timed.
func (p *pass) rebuilt(f func()) {
	if p.mode != PerOp || !p.train {
		f()
		return
	}
	t0 := p.event()
	f()
	if t1 := p.event(); t0 != nil && t1 != nil {
		p.timers = append(p.timers, timer{start: t0, end: t1})
	}
}

// sample notes the allocator's Live bytes and the saved tensors' bytes.
func (p *pass) sample() {
	live := p.m.b.MemStats().Live
	p.peakLive = max(p.peakLive, live-p.live0)
	p.peakAcct = max(p.peakAcct, p.acct)
}

// mainBuf returns where a tensor of the compressible set is computed
// (saved: whether this block saves it):
// kept from the pool, or a view of its workspace buffer ws.
func (p *pass) mainBuf(ws *gpu.Matrix, rows int, saved bool) *gpu.Matrix {
	if p.main == mainKeep || p.hold && saved {
		_, c := ws.Dims()
		return p.keep(rows, c, ws.DType())
	}
	return view(ws, rows)
}

// restBuf is mainBuf for a tensor outside the compressible set.
func (p *pass) restBuf(ws *gpu.Matrix, rows int) *gpu.Matrix {
	if p.keepRest {
		_, c := ws.Dims()
		return p.keep(rows, c, ws.DType())
	}
	return view(ws, rows)
}

// saveMain saves the compressible tensor x of layer as the block says.
func (p *pass) saveMain(layer string, x *gpu.Matrix) *stash {
	switch {
	case p.err != nil:
		return nil
	case p.main == mainKeep:
		r, c := x.Dims()
		s := &stash{x: x, bytes: int64(r * c * x.DType().Size())}
		p.t.stashes = append(p.t.stashes, s)
		return s
	case p.main == mainCompress:
		if p.t.mats[x] {
			p.held = append(p.held, x) // p.hold: dropped at its group's flush
		}
		return p.queue(layer, x)
	}
	return nil
}

// flushOps is PerOp's flush: the pending tensors of this block and of the
// blocks its group held (Model.SetOpsGroup) are compressed together, and
// the held ones, sampled with the saved set while they are all there
// beside their new factors, are freed.
func (p *pass) flushOps() {
	p.flush()
	if len(p.held) > 0 {
		p.sample()
	}
	p.drop(p.held...)
	p.held = p.held[:0]
}

// flush compresses the pending tensors by one CompressBatch (the device
// compressor decomposes those of one shape together: one batched QR and
// one host synchronisation for them all) and fills their stashes.
func (p *pass) flush() {
	if len(p.pending) == 0 || p.err != nil {
		p.pending = p.pending[:0]
		return
	}
	layers := make([]string, len(p.pending))
	xs := make([]lowrank.Matrix, len(p.pending))
	for i, ps := range p.pending {
		layers[i], xs[i] = ps.layer, ps.x
	}
	t0 := p.event()
	if p.err != nil {
		return
	}
	ss, err := p.c.CompressBatch(layers, xs)
	t1 := p.event()
	if t1 != nil {
		p.timers = append(p.timers, timer{compress: true, start: t0, end: t1})
	} else {
		t0.Close()
	}
	for i, ps := range p.pending {
		if ss[i] == nil {
			continue
		}
		ps.st.s, ps.st.bytes = ss[i], int64(ss[i].Bytes())
		p.t.stashes = append(p.t.stashes, ps.st)
		p.acct += ps.st.bytes
	}
	p.run(err)
	p.pending = p.pending[:0]
}

// queue defers the compression of x to the next flush and returns the
// stash that the flush fills (nil after an error).
func (p *pass) queue(layer string, x *gpu.Matrix) *stash {
	if p.err != nil {
		return nil
	}
	st := &stash{}
	p.pending = append(p.pending, pendingSave{layer, x, st})
	return st
}

// tensorOf returns the saved tensor: itself if kept, else rebuilt into
// scratch.
func (p *pass) tensorOf(st *stash, scratch *gpu.Matrix) *gpu.Matrix {
	if p.err != nil {
		return nil
	}
	if st.x != nil {
		return st.x
	}
	p.run(st.s.Reconstruct(scratch))
	return scratch
}

// weightGrad sets dst = X̃ᵀ·g for the saved X̃ (in×o for g L×o: a
// weight's gradient in vit's in×out layout).
func (p *pass) weightGrad(dst *gpu.Matrix, st *stash, g *gpu.Matrix) {
	if p.err != nil {
		return
	}
	if st.x != nil {
		p.mul(dst, 1, st.x, true, g, false, 0)
		return
	}
	p.run(st.s.WeightGradInOut(dst, g))
}

// unstash releases a saved tensor.
func (p *pass) unstash(st *stash) {
	if st == nil || st.released {
		return
	}
	st.released = true
	if st.x != nil {
		p.drop(st.x)
		return
	}
	p.acct -= st.bytes
	p.run(st.s.Release())
}

// release frees everything the tape still holds (after an error, or
// tensors a pass kept but did not consume), without accounting.
func (t *tape) release(b *gpu.Backend) {
	for _, s := range t.stashes {
		if !s.released {
			s.released = true
			if s.s != nil {
				_ = s.s.Release()
			}
		}
	}
	for x := range t.mats {
		b.Free(x)
	}
	t.mats = map[*gpu.Matrix]bool{}
}

// newPass returns a pass of batch images; train records a tape.
func (m *Model) newPass(batch int, train bool, mode Mode, c *activation.Compressor) *pass {
	p := &pass{m: m, B: batch, L: batch * m.tokens, mode: mode, train: train, c: c,
		t: &tape{mats: map[*gpu.Matrix]bool{}}, group: m.ckptGroup}
	if p.group < 1 {
		p.group = len(m.blocks)
	}
	if train {
		p.t.blocks = make([]blockTape, len(m.blocks))
		p.t.ckpt = make([]*stash, len(m.blocks))
	}
	return p
}

// forward runs the model on the batch and leaves the logits in
// ws.logits; a training pass fills the tape according to its mode.
func (p *pass) forward(images, idx uintptr) {
	m := p.m
	L := p.L
	var patches *gpu.Matrix
	if p.train && !m.loraOn {
		patches = p.keep(L, m.pp, m.dt)
		p.t.patches = patches
	} else {
		patches = view(m.ws.patches, L)
	}
	p.images, p.idx = images, idx
	x := p.embedInto(patches, view(m.ws.res[0], L))
	if p.err != nil {
		return
	}
	// Checkpoint compresses the block inputs in groups of p.group, one
	// CompressBatch each: until its group's flush each input lives in a
	// buffer of its own (the first in ws.res[0], which no block output
	// overwrites before the last block, whose inputs are all compressed
	// by then), kept from the pool and so counted as saved; a kept input
	// is dropped once it is compressed and its block has read it. With
	// the ends on (Model.SetCheckpointEnds) the first block's input is
	// not saved (backward recomputes it from the images) and the last
	// block saves its tape as in plain training.
	ckpt := p.train && p.mode == Checkpoint
	lastC := -1 // the last block whose input is compressed
	for i := range m.blocks {
		if p.ckptInput(i) {
			lastC = i
		}
	}
	var read []*gpu.Matrix // kept inputs whose block has run, awaiting their flush
	for i := range m.blocks {
		bk := &m.blocks[i]
		out := view(m.ws.res[(i+1)%2], L)
		var bt *blockTape
		flushed := false
		p.hold = false
		switch {
		case !p.train:
			p.keepRest, p.main = false, mainNone
		case p.ckptKept(i):
			p.keepRest, p.main = true, mainKeep
			bt = &p.t.blocks[i]
		case ckpt:
			if p.ckptInput(i) {
				p.t.ckpt[i] = p.queue(bk.name+".in", x)
				if flushed = i == lastC || len(p.pending) >= p.group; flushed {
					p.flush()
					p.sample() // the group's inputs are all held here, beside their factors
					p.drop(read...)
					read = read[:0]
				}
			}
			if p.ckptInput(i + 1) {
				out = p.keep(L, m.dim, m.dt)
			}
			p.keepRest, p.main = false, mainNone
		case p.mode == PerOp:
			p.keepRest, p.main = true, mainCompress
			bt = &p.t.blocks[i]
			g := m.opsGroup
			p.hold = g > 1 && (i+1)%g != 0 && i != len(m.blocks)-1
		default:
			p.keepRest, p.main = true, mainKeep
			bt = &p.t.blocks[i]
		}
		p.blockFwd(bk, x, out, bt)
		if ckpt && p.t.mats[x] {
			if flushed {
				p.drop(x)
			} else {
				read = append(read, x)
			}
		}
		x = out
	}
	if p.err != nil {
		return
	}
	pooled := view(m.ws.pooled, p.B)
	p.run(m.k.meanPool(pooled, x, m.tokens))
	yn, xhat, rstd := view(m.ws.yn, p.B), (*gpu.Matrix)(nil), (*gpu.Matrix)(nil)
	if p.train {
		yn, xhat, rstd = p.keep(p.B, m.dim, m.dt), p.keep(p.B, m.dim, m.dt), p.keep(p.B, 1, gpu.Float32)
		p.t.yn, p.t.norm = yn, lnTape{xhat, rstd}
	}
	if p.err != nil {
		return
	}
	p.run(m.k.lnFwd(yn, xhat, rstd, pooled, m.norm.g.ptr(), m.norm.b.ptr(), lnEps))
	p.linFwd(&m.head, yn, view(m.ws.logits, p.B), nil, 0)
}

// lnEps is LayerNorm's ε (vit's).
const lnEps = 1e-5

// linFwd sets y = x·W + b (+ the position rows pos) (+ add)
// (+ s·(x·A)·B with LoRA on) and returns x·A when the block keeps it.
// With y nil it computes only x·A (a recomputation that needs no output).
func (p *pass) linFwd(l *linear, x, y, add *gpu.Matrix, pos uintptr) *gpu.Matrix {
	if p.err != nil {
		return nil
	}
	m := p.m
	if y != nil && !p.mulBias(l, x, y, add, pos) {
		p.run(m.k.biasRows(y, l.b.ptr(), pos, m.tokens, add))
		p.mul(y, 1, x, false, l.w.C(), false, 1)
	}
	if !m.loraOn || l.la == nil {
		return nil
	}
	r, _ := x.Dims()
	h := p.restBuf(m.ws.h, r)
	if p.err != nil {
		return nil
	}
	p.mul(h, 1, x, false, l.la.C(), false, 0)
	if y != nil {
		p.mul(y, m.scale, h, false, l.lb.C(), false, 1)
	}
	if p.keepRest {
		return h
	}
	return nil
}

// mulBias sets y = x·W + b (+ add) as one product with cuBLASLt's bias
// epilogue (gpu.Backend.MulBias), with the float32 bias or, where cuBLASLt
// has no algorithm for that, its bf16 copy, and reports whether it did;
// without a position table only (the patch embedding's) and unless the
// model's epilogue is off (Model.noEpilogue). Otherwise the caller fills y
// with bias_rows and accumulates the product into it (beta = 1), which
// writes y twice and reads it once more (docs/results.md, "Twenty-eighth
// session": 50 µs against 41 for fc1's product on an H100).
func (p *pass) mulBias(l *linear, x, y, add *gpu.Matrix, pos uintptr) bool {
	m := p.m
	if p.err != nil || pos != 0 || m.noEpilogue {
		return false
	}
	w := l.w.C()
	ok, err := m.b.MulBias(y, x, w, gpu.RowMajor(l.b.ptr(), 1, l.out, l.out, gpu.Float32), add)
	if c := l.b.C(); !ok && err == nil && c.DType() != gpu.Float32 {
		ok, err = m.b.MulBias(y, x, w, c, add)
	}
	p.run(err)
	return ok || err != nil
}

// blockFwd runs block bk on x (L×d) into out, saving into bt (nil: a
// block that saves nothing) as p.keepRest and p.main say. With out nil
// (backward's recomputation) it skips the products that only the output
// needs: fc2's x·W, bias and residual, and its LoRA up-projection.
func (p *pass) blockFwd(bk *block, x, out *gpu.Matrix, bt *blockTape) {
	if p.err != nil {
		return
	}
	m, L := p.m, p.L
	ws := &m.ws
	ln := func(y, x *gpu.Matrix, n *layerNorm) lnTape {
		var t lnTape
		if p.keepRest {
			t = lnTape{p.keep(L, m.dim, m.dt), p.keep(L, 1, gpu.Float32)}
		}
		if p.err == nil {
			p.run(m.k.lnFwd(y, t.xhat, t.rstd, x, n.g.ptr(), n.b.ptr(), lnEps))
		}
		return t
	}
	var t blockTape
	// Compressed per op: the block's compressions are batched (flush),
	// and backward rebuilds instead of storing what the model's Recompute
	// settings name.
	perOp := p.main == mainCompress && p.mode == PerOp
	saveLN, saveAtt, saveA := !(perOp && m.lnRecompute), !(perOp && m.attRecompute), !(perOp && m.geluRecompute)
	y1 := p.mainBuf(ws.y, L, saveLN)
	if p.err != nil {
		return
	}
	t.ln1 = ln(y1, x, &bk.ln1)
	q, k, v := p.restBuf(ws.q, L), p.restBuf(ws.k, L), p.restBuf(ws.v, L)
	if p.err != nil {
		return
	}
	t.hq = p.linFwd(&bk.q, y1, q, nil, 0)
	t.hk = p.linFwd(&bk.k, y1, k, nil, 0)
	t.hv = p.linFwd(&bk.v, y1, v, nil, 0)
	if saveLN {
		t.y1 = p.saveMain(bk.name+".q", y1)
	}
	probs := p.restBuf(ws.p, p.B*m.heads*m.tokens)
	att := p.mainBuf(ws.att, L, saveAtt)
	if p.err != nil {
		return
	}
	p.attnFwd(q, k, v, probs, att)
	x2 := view(ws.x2, L)
	t.ho = p.linFwd(&bk.o, att, x2, x, 0)
	if saveAtt {
		t.att = p.saveMain(bk.name+".o", att)
	}
	// PerOp compresses q's, o's and fc1's inputs together (flush): q's
	// input, in ws.y, must outlive fc1's, which goes into the rebuild
	// buffer (nothing uses it until backward) where that holds L×d.
	// (Only q's input is in ws.y: with it rebuilt, or held in a buffer
	// of its own, nothing needs this flush.)
	if perOp && m.mlp < m.dim && !p.hold && saveLN {
		p.flushOps()
	}
	y2 := p.mainBuf(ws.y, L, saveLN)
	if perOp && m.mlp >= m.dim && !p.hold {
		y2 = gpu.RowMajor(ws.recon.Ptr(), L, m.dim, m.dim, m.dt)
	}
	if p.err != nil {
		return
	}
	t.ln2 = ln(y2, x2, &bk.ln2)
	u := p.mainBuf(ws.u, L, true)
	if p.err != nil {
		return
	}
	t.h1 = p.linFwd(&bk.fc1, y2, u, nil, 0)
	if saveLN {
		t.y2 = p.saveMain(bk.name+".fc1", y2)
	}
	a := p.mainBuf(ws.a, L, saveA)
	if p.err != nil {
		return
	}
	p.run(m.k.geluFwd(a, u))
	t.u = p.saveMain(bk.name+".gelu", u)
	t.h2 = p.linFwd(&bk.fc2, a, out, x2, 0)
	if saveA {
		t.a = p.saveMain(bk.name+".fc2", a)
	}
	if perOp && !p.hold {
		p.flushOps()
	}
	if bt != nil {
		t.q, t.k, t.v, t.p = q, k, v, probs
		*bt = t
	}
}

// backward propagates ws.dlogits (set by the loss) through the model,
// writing the gradients of the trainable parameters, and releases the
// tape as it goes.
func (p *pass) backward() {
	if p.err != nil {
		return
	}
	m, B, L := p.m, p.B, p.L
	ws := &m.ws
	dlogits := view(ws.dlogits, B)
	p.mul(m.head.w.G(), 1, p.t.yn, true, dlogits, false, 0)
	p.mul(m.head.b.G(), 1, column(m.ones32, B), true, dlogits, false, 0)
	dyn := view(ws.dyn, B)
	p.mul(dyn, 1, dlogits, false, m.head.w.C(), true, 0)
	p.drop(p.t.yn)
	dpooled := view(ws.dpooled, B)
	p.lnBwd(dpooled, dyn, p.t.norm, &m.norm, nil)
	g := view(ws.dres[0], L)
	if p.err == nil {
		p.run(m.k.meanPoolBwd(g, dpooled, m.tokens))
	}
	for i := len(m.blocks) - 1; i >= 0 && p.err == nil; i-- {
		bk := &m.blocks[i]
		bt := &p.t.blocks[i]
		// Checkpoint recomputes every block but, with the ends on, the
		// last, whose forward kept its tape.
		if p.mode == Checkpoint && !p.ckptKept(i) {
			t0 := p.event()
			var x *gpu.Matrix
			if p.ckptInput(i) {
				x = p.tensorOf(p.t.ckpt[i], view(ws.res[1], L))
				p.unstash(p.t.ckpt[i])
			} else {
				x = p.embedInto(view(ws.patches, L), view(ws.res[1], L))
			}
			p.keepRest, p.main = true, mainKeep
			p.blockFwd(bk, x, nil, bt) // backward reads fc2's x·A, not the block's output
			if t1 := p.event(); t1 != nil {
				p.timers = append(p.timers, timer{start: t0, end: t1})
			}
			p.sample()
		}
		gin := view(ws.dres[(len(m.blocks)-i)%2], L)
		p.blockBwd(bk, bt, g, gin)
		g = gin
	}
	if m.loraOn || p.err != nil {
		return
	}
	// The embedding (pre-training): W, b and the positions.
	p.mul(m.embed.w.G(), 1, p.t.patches, true, g, false, 0)
	p.mul(m.embed.b.G(), 1, column(m.ones, L), true, g, false, 0)
	td := m.tokens * m.dim
	p.mul(gpu.RowMajor(m.pos.G().Ptr(), 1, td, td, gpu.Float32), 1, column(m.ones, B), true,
		gpu.RowMajor(g.Ptr(), B, td, td, g.DType()), false, 0)
	p.drop(p.t.patches)
}

// ckptInput reports whether compressed checkpointing saves block i's
// input compressed: every block's, or with the ends on
// (Model.SetCheckpointEnds) every block's but the first's and the last's.
func (p *pass) ckptInput(i int) bool {
	return p.train && p.mode == Checkpoint && vit.CompressedInput(i, len(p.m.blocks), p.m.ckptEnds)
}

// ckptKept reports whether block i is the last block of compressed
// checkpointing with its ends out, which keeps its tape from the forward
// instead of being recomputed.
func (p *pass) ckptKept(i int) bool {
	return p.train && p.mode == Checkpoint && p.m.ckptEnds && i == len(p.m.blocks)-1
}

// embedInto sets x to the blocks' input, the patch embedding of the
// pass's images (gathered into patches) plus the positions, and returns
// it: the forward's first step, and in backward checkpointing's
// recomputation of the first block's input where its ends are out (the
// embedding has no adapter, so nothing of it is kept).
func (p *pass) embedInto(patches, x *gpu.Matrix) *gpu.Matrix {
	m := p.m
	if p.err != nil {
		return x
	}
	p.run(m.k.patches(patches, p.images, p.idx, p.B, m.cfg.Model.Side, m.cfg.Model.Patch))
	p.linFwd(&m.embed, patches, x, nil, m.pos.ptr())
	return x
}

// lnBwd writes LayerNorm's input gradient for dy into dx (plus add), and
// in pre-training its parameters' gradients, and drops its tape.
func (p *pass) lnBwd(dx, dy *gpu.Matrix, t lnTape, n *layerNorm, add *gpu.Matrix) {
	if p.err != nil {
		return
	}
	m := p.m
	rows, _ := dy.Dims()
	if !m.loraOn {
		prod := view(m.ws.prod, rows)
		p.run(m.k.mulElem(prod, dy, t.xhat))
		p.mul(n.g.G(), 1, column(m.ones, rows), true, prod, false, 0)
		p.mul(n.b.G(), 1, column(m.ones, rows), true, dy, false, 0)
	}
	if p.err == nil {
		p.run(m.k.lnBwd(dx, dy, t.xhat, t.rstd, n.g.ptr(), add))
	}
	p.drop(t.xhat, t.rstd)
}

// linBwd accumulates the gradients of l's trainable parameters from its
// output gradient g and, if dx is not nil, sets dx = g·∂y/∂x + beta·dx.
// xs is l's saved input, h its saved x·A.
func (p *pass) linBwd(l *linear, xs *stash, h, g, dx *gpu.Matrix, beta float64) {
	if p.err != nil {
		return
	}
	m := p.m
	rows, _ := g.Dims()
	if !m.loraOn {
		p.weightGrad(l.w.G(), xs, g)                               // ∇W = xᵀ·g
		p.mul(l.b.G(), 1, column(m.ones, rows), true, g, false, 0) // ∇b = 1ᵀ·g
	}
	var gb *gpu.Matrix
	if m.loraOn && l.la != nil {
		p.mul(l.lb.G(), m.scale, h, true, g, false, 0) // ∇B = s·hᵀ·g
		gb = view(m.ws.dh, rows)
		p.mul(gb, m.scale, g, false, l.lb.C(), true, 0) // s·g·Bᵀ
		p.weightGrad(l.la.G(), xs, gb)                  // ∇A = xᵀ·(s·g·Bᵀ)
		p.drop(h)
	}
	if dx != nil {
		p.mul(dx, 1, g, false, l.w.C(), true, beta)
		if gb != nil {
			p.mul(dx, 1, gb, false, l.la.C(), true, 1)
		}
	}
}

// lnInput returns a linear's saved input st, or, where it was not saved
// (SetRecomputeLN), the LayerNorm output it was, rebuilt from the
// LayerNorm's tape into the forward's buffer for it, ws.y (which backward
// does not otherwise use; fc1's rebuilt input is consumed before q's is
// rebuilt there).
func (p *pass) lnInput(st *stash, t lnTape, n *layerNorm) *stash {
	if st != nil || p.err != nil {
		return st
	}
	y := view(p.m.ws.y, p.L)
	p.rebuilt(func() { p.run(p.m.k.lnAffine(y, t.xhat, n.g.ptr(), n.b.ptr())) })
	return &stash{x: y}
}

// blockBwd propagates the gradient gout of block bk's output to its input
// gradient gin, releasing the block's tape.
func (p *pass) blockBwd(bk *block, t *blockTape, gout, gin *gpu.Matrix) {
	if p.err != nil {
		return
	}
	m, L := p.m, p.L
	ws := &m.ws
	da := view(ws.du, L)
	var u *gpu.Matrix
	// GELU's input, rebuilt if it was compressed.
	geluIn := func() {
		if t.u.x != nil {
			u = t.u.x
			return
		}
		p.rebuilt(func() { u = p.tensorOf(t.u, view(ws.recon, L)) })
	}
	if t.a == nil && t.u != nil {
		// fc2's input was not saved (SetRecomputeGELU): GELU of GELU's
		// rebuilt input, in the forward's buffer for it (free in backward).
		a := view(ws.a, L)
		p.rebuilt(func() {
			if u = p.tensorOf(t.u, view(ws.recon, L)); p.err == nil {
				p.run(m.k.geluFwd(a, u))
			}
		})
		if p.err != nil {
			return
		}
		p.linBwd(&bk.fc2, &stash{x: a}, t.h2, gout, da, 0)
	} else {
		p.linBwd(&bk.fc2, t.a, t.h2, gout, da, 0)
		p.unstash(t.a)
		if geluIn(); p.err != nil {
			return
		}
	}
	p.run(m.k.geluBwd(da, da, u))
	p.unstash(t.u)
	dy2 := view(ws.dy, L)
	p.linBwd(&bk.fc1, p.lnInput(t.y2, t.ln2, &bk.ln2), t.h1, da, dy2, 0)
	p.unstash(t.y2)
	dx2 := view(ws.dx2, L)
	p.lnBwd(dx2, dy2, t.ln2, &bk.ln2, gout)
	datt := view(ws.datt, L)
	att := t.att
	if att == nil && p.err == nil {
		// o's input was not saved (SetRecomputeAttention): P·V again, from
		// the kept probabilities and values, into the forward's buffer.
		a := view(ws.att, L)
		p.rebuilt(func() { p.attnOut(t.p, t.v, a) })
		att = &stash{x: a}
	}
	p.linBwd(&bk.o, att, t.ho, dx2, datt, 0)
	p.unstash(t.att)
	dq, dk, dv := view(ws.dq, L), view(ws.dk, L), view(ws.dv, L)
	p.attnBwd(t.q, t.k, t.v, t.p, datt, dq, dk, dv)
	p.drop(t.q, t.k, t.v, t.p)
	dy1 := view(ws.dy, L)
	y1 := p.lnInput(t.y1, t.ln1, &bk.ln1)
	p.linBwd(&bk.q, y1, t.hq, dq, dy1, 0)
	p.linBwd(&bk.k, y1, t.hk, dk, dy1, 1)
	p.linBwd(&bk.v, y1, t.hv, dv, dy1, 1)
	p.unstash(t.y1)
	p.lnBwd(gin, dy1, t.ln1, &bk.ln1, dx2)
}
