package activation

import (
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
)

func sqrt(x float64) float64 { return math.Sqrt(x) }

// scratch recycles the float64 buffers that factors are unpacked into for
// a product, so that a steady-state backward pass does not allocate them.
var scratch = sync.Pool{New: func() any { return new(mat.Dense) }}

func getScratch(r, c int) *mat.Dense {
	d := scratch.Get().(*mat.Dense)
	if rr, cc := d.Dims(); rr != r || cc != c {
		d.Reset()
		d.ReuseAs(r, c)
	}
	return d
}

// mul sets dst = op(a)·op(b) with the CPU backend's GEMM when the operands
// are host matrices it takes, and with gonum otherwise.
func mul(dst *mat.Dense, a mat.Matrix, ta bool, b *mat.Dense) {
	switch a.(type) {
	case *mat.Dense, *lowrank.Dense32:
		if err := (cpu.Backend{}).Mul(dst, 1, a, ta, b, false, 0); err != nil {
			panic(err) // the CPU backend reports no errors
		}
		return
	}
	if ta {
		a = a.T()
	}
	dst.Mul(a, b)
}

// Saved is the handle of one saved activation X (L×d): low-rank factors
// X ≈ P·R with P L×k and R k×d, or X itself (method None, or a rank past
// the break-even point). Its methods are safe for concurrent use; with
// asynchronous compression they wait for it to finish.
type Saved struct {
	c          *Compressor
	layer      string
	rows, cols int
	key        cacheKey
	done       chan struct{}

	// Set by the worker before done is closed.
	err    error
	p, r   packed // r is empty when p holds X itself
	rank   int
	relErr float64
	bytes  int

	mu       sync.RWMutex // read-held while the factors are in use
	refs     int
	released bool
}

// Layer returns the name of the layer that first saved the activation.
func (s *Saved) Layer() string { return s.layer }

// Dims returns the shape L×d of the saved activation.
func (s *Saved) Dims() (rows, cols int) { return s.rows, s.cols }

// Wait waits for the compression and returns its error, if any.
func (s *Saved) Wait() error {
	<-s.done
	return s.err
}

// Rank returns k, or min(L, d) if X is stored as it is. It is 0 if the
// compression failed.
func (s *Saved) Rank() int {
	if s.Wait() != nil {
		return 0
	}
	return s.rank
}

// Bytes returns the bytes of the stored factors (or copy).
func (s *Saved) Bytes() int {
	if s.Wait() != nil {
		return 0
	}
	return s.bytes
}

// DenseBytes returns the uncompressed equivalent, 4·L·d bytes (float32).
func (s *Saved) DenseBytes() int { return 4 * s.rows * s.cols }

// RelError returns the relative Frobenius error ‖X − X̃‖_F/‖X‖_F of the
// saved approximation X̃ (see Config.MeasureError for how it is computed).
func (s *Saved) RelError() float64 {
	if s.Wait() != nil {
		return math.NaN()
	}
	return s.relErr
}

// use waits for the compression, checks that s is live and keeps it so
// (read-locked) until done is called.
func (s *Saved) use() (done func(), err error) {
	if err := s.Wait(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.released {
		s.mu.RUnlock()
		return nil, &LayerError{Layer: s.layer, Err: ErrReleased}
	}
	return s.mu.RUnlock, nil
}

// Reconstruct writes X̃ = P·R (L×d) into dst; a zero-sized dst is resized,
// any other must be L×d or Reconstruct returns an error wrapping
// ErrShapeMismatch. It costs 2·L·d·k flops, and none beyond a copy if X is
// stored as it is. It returns ErrReleased (wrapped) after the last
// Release.
func (s *Saved) Reconstruct(dst *mat.Dense) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	if !dst.IsEmpty() {
		if r, c := dst.Dims(); r != s.rows || c != s.cols {
			return s.mismatch("reconstruction destination", r, c, s.rows, s.cols)
		}
	}
	s.reconstruct(dst)
	return nil
}

func (s *Saved) reconstruct(dst *mat.Dense) {
	if s.r.empty() {
		s.p.unpack(dst)
		return
	}
	p, r := getScratch(s.p.r, s.p.c), getScratch(s.r.r, s.r.c)
	defer scratch.Put(p)
	defer scratch.Put(r)
	s.p.unpack(p)
	s.r.unpack(r)
	if dst.IsEmpty() {
		dst.ReuseAs(s.rows, s.cols)
	}
	mul(dst, p, false, r)
}

func (s *Saved) mismatch(what string, r, c, wr, wc int) error {
	return &LayerError{Layer: s.layer, Err: fmt.Errorf("%w: %s is %d×%d, want %d×%d", ErrShapeMismatch, what, r, c, wr, wc)}
}

// WeightGrad writes dst = Gᵀ·X̃ (o×d), the weight gradient of a linear
// layer y = X·W (W d×o) whose output gradient is g (L×o), without
// reconstructing X̃: Gᵀ·P·R = (Gᵀ·P)·R, 2·k·o·(L+d) flops instead of
// 2·L·d·(k+o). A zero-sized dst is resized; a g with other than L rows or
// a dst of the wrong shape gives an error wrapping ErrShapeMismatch.
// g is not modified.
func (s *Saved) WeightGrad(dst *mat.Dense, g mat.Matrix) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	gr, o := g.Dims()
	if gr != s.rows {
		return s.mismatch("output gradient", gr, o, s.rows, o)
	}
	if !dst.IsEmpty() {
		if r, c := dst.Dims(); r != o || c != s.cols {
			return s.mismatch("weight gradient destination", r, c, o, s.cols)
		}
	} else {
		dst.ReuseAs(o, s.cols)
	}
	p := getScratch(s.p.r, s.p.c)
	defer scratch.Put(p)
	s.p.unpack(p)
	if s.r.empty() {
		mul(dst, g, true, p)
		return nil
	}
	r, t := getScratch(s.r.r, s.r.c), getScratch(o, s.p.c)
	defer scratch.Put(r)
	defer scratch.Put(t)
	s.r.unpack(r)
	mul(t, g, true, p)
	mul(dst, t, false, r)
	return nil
}

// Retain adds a reference to s, for a further consumer (as a Compress of
// the same memory does).
func (s *Saved) Retain() error {
	if err := s.Wait(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return &LayerError{Layer: s.layer, Err: ErrReleased}
	}
	s.refs++
	return nil
}

// Release drops one reference; the last one frees the factors and removes
// them from the accounting and the dedup cache. Releasing more often than
// the handle was obtained returns an error wrapping ErrReleased.
func (s *Saved) Release() error {
	if err := s.Wait(); err != nil {
		return err
	}
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return &LayerError{Layer: s.layer, Err: ErrReleased}
	}
	s.refs--
	if s.refs > 0 {
		return nil
	}
	s.released = true
	if c.cache[s.key] == s {
		delete(c.cache, s.key)
	}
	c.account(s, -1)
	s.p.recycle()
	s.r.recycle()
	return nil
}
