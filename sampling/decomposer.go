package sampling

import (
	"container/heap"
	"fmt"
	"math"

	"github.com/loract/loract/internal/skeleton"
	"github.com/loract/loract/lowrank"
)

// Factors are QB factors held on a backend: op(A) ≈ Q·B, op(A) = Aᵀ if
// Trans. Norm2A = ‖A‖_F² and Norm2B = ‖B‖_F² give the relative error
// through lowrank.ErrorFromNorms.
type Factors = skeleton.Factors

// Decomposer runs the decomposition on a backend and keeps its scratch
// matrices between calls, so that a steady-state call with the same shapes
// allocates no backend memory beyond what its destination needs. A
// Decomposer is not safe for concurrent use; concurrent callers use one
// each.
type Decomposer struct {
	ws    *lowrank.Workspace
	perm  []int
	keys  keyHeap
	norms []float64
	idx   []int
}

// NewDecomposer returns a Decomposer on backend b.
func NewDecomposer(b lowrank.Backend) *Decomposer {
	return &Decomposer{ws: lowrank.NewWorkspace(b)}
}

// Close releases the scratch matrices. The Decomposer stays usable.
func (d *Decomposer) Close() { d.ws.Close() }

// QBTo computes the rank-k LoRAct QB decomposition of a (a backend matrix,
// not modified) and writes it into dst. dst's Q and B are reused when they
// have the right shapes and allocated otherwise.
//
// It returns an error wrapping lowrank.ErrEmpty, ErrRank, ErrNotFinite or
// ErrOption for bad input or options.
func (d *Decomposer) QBTo(dst *Factors, a lowrank.Matrix, k int, opts *Options) error {
	y, trans, norm2, err := d.sketch(a, k, opts)
	if err != nil {
		return err
	}
	if err := d.ws.Backend().QR(y, nil); err != nil {
		return err
	}
	return skeleton.FinishQB(d.ws, dst, a, trans, y, k, norm2)
}

// SVD computes the rank-k SVD form of the decomposition: the QB, then the
// SVD of the small B. It returns U (m×k), S and V (n×k) of A itself
// (orientation already undone).
func (d *Decomposer) SVD(a lowrank.Matrix, k int, opts *Options) (u, v lowrank.Matrix, s []float64, err error) {
	y, trans, _, err := d.sketch(a, k, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := d.ws.Backend().QR(y, nil); err != nil {
		return nil, nil, nil, err
	}
	return skeleton.FinishSVD(d.ws, a, trans, y, k)
}

// sketch validates the input, draws the rows, and returns the p×ℓ sketch
// Y after power iterations (a workspace matrix), the orientation and ‖A‖_F².
func (d *Decomposer) sketch(a lowrank.Matrix, k int, opts *Options) (y lowrank.Matrix, trans bool, norm2 float64, err error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := opts.check(); err != nil {
		return nil, false, 0, err
	}
	m, n := a.Dims()
	if err := lowrank.CheckRank(m, n, k); err != nil {
		return nil, false, 0, err
	}
	trans, err = opts.Orientation.Trans(m, n)
	if err != nil {
		return nil, false, 0, err
	}
	be := d.ws.Backend()
	if norm2, err = lowrank.CheckInput(be, a); err != nil {
		return nil, false, 0, err
	}
	p, s := m, n
	if trans {
		p, s = n, m
	}
	l := min(k+opts.Oversample, p)
	var idx []int
	if opts.Indices != nil {
		l = len(opts.Indices)
		if l < k || l > p {
			return nil, false, 0, fmt.Errorf("%w: %d Indices, want k = %d ≤ ℓ ≤ %d", lowrank.ErrOption, l, k, p)
		}
		for _, i := range opts.Indices {
			if i >= p {
				return nil, false, 0, fmt.Errorf("%w: index %d ≥ %d rows of op(A)", lowrank.ErrOption, i, p)
			}
		}
		d.idx = append(d.idx[:0], opts.Indices...)
		idx = d.idx
	} else if idx, err = d.draw(a, trans, p, l, opts); err != nil {
		return nil, false, 0, err
	}
	if opts.Draw != nil {
		opts.Draw.Trans = trans
		opts.Draw.Indices = append(opts.Draw.Indices[:0], idx...)
	}
	omega, err := d.ws.Get("omega", s, l)
	if err != nil {
		return nil, false, 0, err
	}
	if err := be.Gather(omega, a, trans, idx); err != nil {
		return nil, false, 0, err
	}
	if y, err = d.ws.Get("y", p, l); err != nil {
		return nil, false, 0, err
	}
	if err := be.Mul(y, 1, a, trans, omega, false, 0); err != nil {
		return nil, false, 0, err
	}
	for range opts.PowerIters {
		if err := be.QR(y, nil); err != nil {
			return nil, false, 0, err
		}
		// Ω ← op(A)ᵀ·Q, Y ← op(A)·Ω.
		if err := be.Mul(omega, 1, a, !trans, y, false, 0); err != nil {
			return nil, false, 0, err
		}
		if err := be.Mul(y, 1, a, trans, omega, false, 0); err != nil {
			return nil, false, 0, err
		}
	}
	return y, trans, norm2, nil
}

// draw returns ℓ distinct row indices of the p-row op(a).
func (d *Decomposer) draw(a lowrank.Matrix, trans bool, p, l int, opts *Options) ([]int, error) {
	rng := opts.rng()
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
		if err := d.ws.Backend().RowNorms2(w, a, trans); err != nil {
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
