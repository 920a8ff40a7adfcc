package vitgpu

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/gpu"
)

// Batch is the input of one pass: Size images of Data whose indices
// (float32) start at the device address Idx (a slice of UploadIndices'
// vector, or of Data's own 0…N−1).
type Batch struct {
	Data *Dataset
	Idx  uintptr
	Size int
}

// Slice returns the batch of the n images whose indices are at positions
// [from, from+n) of the index vector idx.
func Slice(d *Dataset, idx *gpu.Matrix, from, n int) Batch {
	return Batch{Data: d, Idx: idx.Ptr() + uintptr(4*from), Size: n}
}

// Adam is the optimiser's configuration and step count (vit.Adam).
type Adam struct {
	Beta1, Beta2, Eps float64
	t                 int
}

// NewAdam returns Adam with vit's demo settings: β = (0.9, 0.999),
// ε = 1e-8.
func NewAdam() *Adam { return &Adam{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

// step applies one Adam step with learning rate lr to the trainable
// parameters: every base parameter, or with LoRA on the head (the tail of
// the base arena) and the adapters. The bias corrections are formed in
// float64 and rounded once.
func (m *Model) step(o *Adam, lr float64) error {
	o.t++
	c1 := 1 - math.Pow(o.Beta1, float64(o.t))
	c2 := 1 - math.Pow(o.Beta2, float64(o.t))
	upd := func(a *arena, off int) error {
		n := a.n - off
		var wb *gpu.Matrix
		if a.wb != nil {
			wb = span(a.wb, off, n)
		}
		return m.k.adam(span(a.w, off, n), wb, span(a.g, off, n), span(a.m, off, n), span(a.v, off, n),
			lr, o.Beta1, o.Beta2, o.Eps, c1, c2)
	}
	if !m.loraOn {
		return upd(&m.base, 0)
	}
	if err := upd(&m.base, m.headOff); err != nil {
		return err
	}
	return upd(&m.lora, 0)
}

// StepStats is what one training step measured. Times are CUDA events on
// the model's stream; bytes come from the device allocator (the memory
// pool's Live and Peak), except SavedTensors.
type StepStats struct {
	// Ms is the step: forward, loss, backward and the Adam update.
	Ms float64
	// CompressMs is the summed time of the step's Compress calls (events
	// around each), Compressions their number.
	CompressMs   float64
	Compressions int
	// RecomputeMs is the summed time of backward's rebuilds (events around
	// each): in checkpointing, rebuilding the block inputs and recomputing
	// the blocks; per op, reconstructing the compressed tensors and
	// rebuilding the inputs the model's Recompute settings name (LayerNorm
	// outputs, o's input, fc2's input).
	RecomputeMs float64
	// Saved is the peak of the saved activations: the largest excess of
	// the pool's Live bytes over their value at the step's start, sampled
	// where everything saved is held (the end of forward, after each
	// batched compression whose inputs were held for it — Checkpoint's
	// groups, PerOp's groups of blocks — and after each block's
	// recomputation). SavedTensors is the same peak counted as the
	// tensors' own bytes (rows·cols·size, activation.Saved.Bytes), without
	// the pool's size classes.
	Saved, SavedTensors int64
	// Peak is the pool's high-water mark during the step (reset at its
	// start): weights, optimiser state, workspace, data and everything
	// saved; Live the pool's Live bytes at the start.
	Peak, Live int64
	// Mallocs counts cuMemAlloc calls during the step (0 in a steady
	// state: the pool reuses its blocks).
	Mallocs int64
}

// TrainStep runs one training step on the batch: forward saving
// activations as mode says (PerOp and Checkpoint compress through c),
// the cross-entropy loss (its mean written to the float32 at lossSlot
// unless 0), backward, and, if o is not nil, an Adam step of rate lr. It
// waits for the step to finish.
func (m *Model) TrainStep(bt Batch, mode Mode, c *activation.Compressor, o *Adam, lr float64, lossSlot uintptr) (StepStats, error) {
	var st StepStats
	if bt.Size < 1 || bt.Size > m.cfg.MaxBatch {
		return st, fmt.Errorf("vitgpu: batch of %d images, at most %d", bt.Size, m.cfg.MaxBatch)
	}
	if mode != Plain && c == nil {
		return st, fmt.Errorf("vitgpu: mode %v needs a compressor", mode)
	}
	if mode != Plain && !m.loraOn {
		return st, fmt.Errorf("vitgpu: compressed modes fine-tune LoRA adapters; turn LoRA on")
	}
	b := m.b
	ms0 := b.MemStats()
	b.ResetPeak()
	p := m.newPass(bt.Size, true, mode, c)
	p.live0 = ms0.Live
	defer func() {
		p.t.release(b)
		for _, t := range p.timers {
			t.start.Close()
			t.end.Close()
		}
	}()
	start := p.event()
	m.phase("forward")
	p.forward(bt.Data.images.Ptr(), bt.Idx)
	p.sample()
	if p.err == nil {
		p.run(m.k.xent(view(m.ws.dlogits, bt.Size), view(m.ws.logits, bt.Size), bt.Data.labels.Ptr(), bt.Idx, lossSlot, 0))
	}
	// A step ends at Join, between forward and backward: a Budget
	// policy plans the next step there (activation.Budget).
	if p.err == nil && c != nil {
		p.err = c.Join()
	}
	m.phase("backward")
	p.backward()
	m.phase("end")
	if p.err == nil && o != nil {
		p.run(m.step(o, lr))
	}
	end := p.event()
	defer start.Close()
	defer end.Close()
	if p.err != nil {
		return st, p.err
	}
	var err error
	if st.Ms, err = end.Elapsed(start); err != nil {
		return st, err
	}
	for _, t := range p.timers {
		d, err := t.end.Elapsed(t.start)
		if err != nil {
			return st, err
		}
		if t.compress {
			st.CompressMs += d
			st.Compressions++
		} else {
			st.RecomputeMs += d
		}
	}
	ms1 := b.MemStats()
	st.Saved, st.SavedTensors = p.peakLive, p.peakAcct
	st.Peak, st.Live, st.Mallocs = ms1.Peak, ms0.Live, ms1.Mallocs-ms0.Mallocs
	return st, nil
}

// phase calls the onPhase hook, if set.
func (m *Model) phase(name string) {
	if m.onPhase != nil {
		m.onPhase(name)
	}
}

// Accuracy returns the fraction of the dataset's images classified
// correctly, in passes of at most batch images.
func (m *Model) Accuracy(d *Dataset, batch int) (float64, error) {
	batch = min(batch, m.cfg.MaxBatch)
	if batch < 1 {
		return 0, fmt.Errorf("vitgpu: evaluation batch %d", batch)
	}
	if err := m.k.fill(m.slot, 0); err != nil {
		return 0, err
	}
	for i := 0; i < d.N; i += batch {
		n := min(batch, d.N-i)
		idx := d.seq.Ptr() + uintptr(4*i)
		p := m.newPass(n, false, Plain, nil)
		p.forward(d.images.Ptr(), idx)
		if p.err == nil {
			p.run(m.k.xent(nil, view(m.ws.logits, n), d.labels.Ptr(), idx, 0, m.slot.Ptr()))
		}
		if p.err != nil {
			return 0, p.err
		}
	}
	var c mat.Dense
	if err := m.b.Download(&c, m.slot); err != nil {
		return 0, err
	}
	return c.At(0, 0) / float64(d.N), nil
}

// Schedule returns the image indices of steps batches of batch images out
// of n, drawn as vit.Train draws them: without replacement, reshuffled at
// each epoch, from a PCG seeded (seed, 3). Equal arguments give equal
// batches.
func Schedule(n, batch, steps int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 3))
	perm := rng.Perm(n)
	next := 0
	out := make([]int, 0, batch*steps)
	for range batch * steps {
		if next == n {
			perm, next = rng.Perm(n), 0
		}
		out = append(out, perm[next])
		next++
	}
	return out
}
