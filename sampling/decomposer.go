package sampling

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// Decomposer runs the decomposition on a backend and keeps its scratch
// matrices between calls, each allocated at the largest shape asked so far
// and viewed at smaller ones, so that a steady-state call with the same
// shapes allocates no backend memory beyond what its destination needs. A
// Decomposer is not safe for concurrent use; concurrent callers use one
// each (or share one Options, which is read-only).
type Decomposer struct {
	be lowrank.Backend
	sc skeleton.Scratch
	// Nyström's slots.
	w, uw, vw, e, r, ur, vr skeleton.Slot

	perm  []int
	keys  keyHeap
	norms []float64
	idx   []int
	draw  Draw
	bt    batch // QBBatchTo's state
}

// NewDecomposer returns a Decomposer on backend b.
func NewDecomposer(b lowrank.Backend) *Decomposer { return &Decomposer{be: b} }

// Close releases the scratch matrices. The Decomposer stays usable.
func (d *Decomposer) Close() {
	d.sc.Close(d.be)
	for _, s := range []*skeleton.Slot{&d.w, &d.uw, &d.vw, &d.e, &d.r, &d.ur, &d.vr} {
		s.Free(d.be)
	}
}

// ScratchElements returns the number of backend matrix elements the
// Decomposer holds as scratch (for memory tests and accounting).
func (d *Decomposer) ScratchElements() int {
	n := d.sc.Elements()
	for _, s := range []*skeleton.Slot{&d.w, &d.uw, &d.vw, &d.e, &d.r, &d.ur, &d.vr} {
		n += s.Elements()
	}
	return n
}

// Draw returns the draw of the last successful call: whether it worked on
// op(A) = Aᵀ of the matrix it was given, and the sampled row indices of
// op(A). The slice is the caller's.
func (d *Decomposer) Draw() Draw {
	return Draw{Trans: d.draw.Trans, Indices: append([]int(nil), d.draw.Indices...)}
}

// QBTo computes the rank-k LoRAct QB decomposition of a (a matrix of the
// Decomposer's backend, not modified) and writes it into dst. dst's Q and
// B are reused when they have the right shapes and allocated otherwise.
//
// It returns an error wrapping lowrank.ErrEmpty, ErrRank, ErrNotFinite or
// ErrOption for bad input or options, and lowrank.ErrTolerance (beside a
// valid rank-k result) when Options.Tolerance is not met.
func (d *Decomposer) QBTo(dst *lowrank.Factors, a lowrank.Matrix, k int, opts *Options) error {
	return d.method(opts, d.basis).QBTo(dst, a, k)
}

// SVD computes the rank-k SVD form of the decomposition: the QB, then the
// SVD of the small B. It returns U (m×k), S and V (n×k) of A itself
// (orientation already undone), as new matrices of the backend.
func (d *Decomposer) SVD(a lowrank.Matrix, k int, opts *Options) (u, v lowrank.Matrix, s []float64, err error) {
	return d.method(opts, d.basis).SVD(a, k)
}

// method returns the skeleton's view of the decomposition with options
// opts (nil: the zero Options) and the given basis.
func (d *Decomposer) method(opts *Options, basis func(lowrank.Matrix, int, *Options, lowrank.Orientation) (skeleton.Problem, lowrank.Matrix, error)) skeleton.Method {
	if opts == nil {
		opts = &Options{}
	}
	return skeleton.Method{Backend: d.be, Scratch: &d.sc, Orientation: opts.Orientation,
		Basis: func(a lowrank.Matrix, k int, o lowrank.Orientation) (skeleton.Problem, lowrank.Matrix, error) {
			return basis(a, k, opts, o)
		}}
}

// basis returns the orthonormal basis of the sketch: qr(Y).
func (d *Decomposer) basis(a lowrank.Matrix, k int, opts *Options, o lowrank.Orientation) (skeleton.Problem, lowrank.Matrix, error) {
	pr, y, err := d.sketch(a, k, opts, o)
	if err != nil {
		return pr, nil, err
	}
	return pr, y, skeleton.SketchQR(d.be, pr, y)
}

// sketch validates the input, draws the rows, and returns the problem and
// the P×ℓ sketch Y after power iterations (a scratch matrix). The rows
// gathered from op(A) and every product with op(A) are multiplied by
// pr.Scale (skeleton.MulScaled), so that for an input of any magnitude the
// sketch stays near 1; pr.Scale is a power of two, so this changes no
// rounding, and it is 1 (no work) for inputs of ordinary size.
func (d *Decomposer) sketch(a lowrank.Matrix, k int, opts *Options, o lowrank.Orientation) (pr skeleton.Problem, y lowrank.Matrix, err error) {
	be := d.be
	p := params(opts)
	// With a backend that gathers and checks in one read
	// (lowrank.GatherNormer), the rows are drawn before A is read; the
	// length-squared sampler needs the row norms (of the scaled A) first,
	// and an Indices error is reported after any error of the input, as
	// on the two-read path, so both take that path.
	var idx []int
	gn, fused := be.(lowrank.GatherNormer)
	if fused = fused && opts.Sampler == Uniform; fused {
		if pr, err = skeleton.Shape(a, k, p, o); err != nil {
			return pr, nil, err
		}
		if idx, err = d.rows(&pr, opts); err != nil {
			fused = false
		}
	}
	if !fused {
		if pr, err = skeleton.Prepare(&d.sc, be, a, k, p, o); err != nil {
			return pr, nil, err
		}
		if idx, err = d.rows(&pr, opts); err != nil {
			return pr, nil, err
		}
	}
	omega, err := d.sc.Omega.Get(be, pr.S, pr.L)
	if err != nil {
		return pr, nil, err
	}
	if fused {
		var sq, amax float64
		if sg, ok := be.(lowrank.SeededGatherNormer); ok && opts.Indices == nil {
			// The backend draws the same indices where A lives.
			sq, amax, err = sg.GatherNormSeeded(omega, pr.A, pr.Trans, idx, opts.Seed)
		} else {
			sq, amax, err = gn.GatherNorm(omega, pr.A, pr.Trans, idx)
		}
		if err != nil {
			return pr, nil, err
		}
		if err := skeleton.Accept(&d.sc, be, &pr, sq, amax); err != nil {
			return pr, nil, err
		}
		if pr.Copied != 1 { // Ω from the scaled copy that replaced A
			if err := be.Gather(omega, pr.A, pr.Trans, idx); err != nil {
				return pr, nil, err
			}
		}
	} else if err := be.Gather(omega, pr.A, pr.Trans, idx); err != nil {
		return pr, nil, err
	}
	if err := skeleton.ScaleBy(be, omega, pr.Scale, 1); err != nil {
		return pr, nil, err
	}
	if y, err = d.sc.Y.Get(be, pr.P, pr.L); err != nil {
		return pr, nil, err
	}
	if err := skeleton.MulScaled(be, pr, y, omega, false); err != nil {
		return pr, nil, err
	}
	for range opts.PowerIters {
		if err := skeleton.SketchQR(be, pr, y); err != nil {
			return pr, nil, err
		}
		// Ω ← op(A)ᵀ·Q, Y ← op(A)·Ω.
		if err := skeleton.MulScaled(be, pr, omega, y, true); err != nil {
			return pr, nil, err
		}
		if err := skeleton.MulScaled(be, pr, y, omega, false); err != nil {
			return pr, nil, err
		}
	}
	d.draw.Trans = pr.Trans
	d.draw.Indices = append(d.draw.Indices[:0], idx...)
	return pr, y, nil
}

// rows returns the row indices of op(A) to sample: opts.Indices (setting
// pr.L to their number) after checking them, or a draw of pr.L rows.
func (d *Decomposer) rows(pr *skeleton.Problem, opts *Options) ([]int, error) {
	if opts.Indices == nil {
		return d.drawRows(*pr, opts)
	}
	l := len(opts.Indices)
	if l < pr.K || l > pr.P {
		return nil, fmt.Errorf("%w: %d Indices, want k = %d ≤ ℓ ≤ %d", lowrank.ErrOption, l, pr.K, pr.P)
	}
	for _, i := range opts.Indices {
		if i >= pr.P {
			return nil, fmt.Errorf("%w: index %d ≥ %d rows of op(A)", lowrank.ErrOption, i, pr.P)
		}
	}
	pr.L = l
	d.idx = append(d.idx[:0], opts.Indices...)
	return d.idx, nil
}

// drawRows returns ℓ distinct row indices of the P-row op(a).
func (d *Decomposer) drawRows(pr skeleton.Problem, opts *Options) ([]int, error) {
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed))
	p, l := pr.P, pr.L
	d.idx = d.idx[:0]
	switch opts.Sampler {
	case Uniform:
		// Partial Fisher–Yates shuffle.
		if cap(d.perm) < p {
			d.perm = make([]int, p)
		}
		perm := d.perm[:p]
		for i := range perm {
			perm[i] = i
		}
		for i := 0; i < l; i++ {
			j := i + rng.IntN(p-i)
			perm[i], perm[j] = perm[j], perm[i]
		}
		d.idx = append(d.idx, perm[:l]...)
	case LengthSquared:
		if cap(d.norms) < p {
			d.norms = make([]float64, p)
		}
		w := d.norms[:p]
		// The norms of pr.Scale·op(A): only their ratios matter, and the
		// scale keeps them from overflowing or underflowing.
		if err := d.be.SquaredRowNorms(w, pr.A, pr.Trans, pr.Scale); err != nil {
			return nil, err
		}
		// Efraimidis–Spirakis: key_i = log(u_i)/w_i, keep the ℓ largest.
		// Zero-norm rows get key −Inf and are taken last, in index order.
		d.keys = d.keys[:0]
		for i, wi := range w {
			u := rng.Float64()
			key := math.Inf(-1)
			if wi > 0 {
				key = math.Log(u) / wi
			}
			if len(d.keys) < l {
				heap.Push(&d.keys, keyed{key, i})
			} else if key > d.keys[0].key {
				d.keys[0] = keyed{key, i}
				heap.Fix(&d.keys, 0)
			}
		}
		for _, kv := range d.keys {
			d.idx = append(d.idx, kv.i)
		}
	}
	return d.idx, nil
}

type keyed struct {
	key float64
	i   int
}

// keyHeap is a min-heap on key.
type keyHeap []keyed

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return h[i].key < h[j].key }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(keyed)) }
func (h *keyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
