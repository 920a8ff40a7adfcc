package activation

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
)

// Saved is the handle of one saved activation X (L×d): low-rank factors
// X ≈ P·R with P L×k and R k×d, or X itself (method Uncompressed, a rank
// past the break-even point, or a missed tolerance). Its methods are safe
// for concurrent use; with asynchronous compression they wait for it to
// finish.
//
// Backward-pass products of a host activation take host matrices:
// *mat.Dense (float64) or *lowrank.Dense32 (float32) destinations, and any
// mat.Matrix as the output gradient (*mat.Dense, *lowrank.Dense32 and
// their mat.Transpose views are read in place). Those of a device
// activation (a *gpu.Backend compressor) take *gpu.Matrix destinations and
// gradients, float32 or bf16, either layout, and queue their work on the
// compressor's backend's stream: like every call on that backend, from
// one goroutine at a time.
type Saved struct {
	c          *Compressor
	layer      string
	rows, cols int
	key        *Key
	done       chan struct{}

	// Set by the worker before done is closed.
	err     error
	p, r    packed       // r is empty when p holds X itself
	dev     *deviceStore // the storage on a *gpu.Backend, instead of p and r
	rank    int
	relErr  float64
	bytes   int
	tolMiss bool
	res     quant     // the quantized residual X − P̂·R̂, when not empty
	want    want      // the rank asked by a Budget policy (zero: none)
	gains   []float64 // under a Budget policy: σ_j²/‖X‖² of the sketch

	mu       sync.RWMutex // read-held while the factors are in use
	refs     int
	released bool
}

// Layer returns the name of the layer that first saved the activation.
func (s *Saved) Layer() string { return s.layer }

// Dims returns the shape L×d of the saved activation.
func (s *Saved) Dims() (rows, cols int) { return s.rows, s.cols }

// Wait waits for the compression and returns its error, if any. Once it
// has returned, nothing of the activation is referenced any more.
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

// Compressed reports whether X is stored as factors (false: as it is).
func (s *Saved) Compressed() bool { return s.Wait() == nil && !s.kept() }

// kept reports whether X is stored as it is.
func (s *Saved) kept() bool {
	if s.dev != nil {
		return s.dev.kept()
	}
	return s.r.empty()
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
// saved approximation X̃ (see Config.MeasureError for how it is computed),
// or NaN if the compression failed.
func (s *Saved) RelError() float64 {
	if s.Wait() != nil {
		return math.NaN()
	}
	return s.relErr
}

// share adds a reference for a further consumer unless s is released.
func (s *Saved) share() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return false
	}
	s.refs++
	return true
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

func (s *Saved) mismatch(what string, r, c, wr, wc int) error {
	return &LayerError{Layer: s.layer, Err: fmt.Errorf("%w: %s is %d×%d, want %d×%d", ErrShapeMismatch, what, r, c, wr, wc)}
}

// Reconstruct writes X̃ = P·R (L×d), plus the dequantized residual if one
// is stored, into dst, a *mat.Dense or a *lowrank.Dense32: a zero-sized
// one is resized, any other must be L×d or Reconstruct returns an error
// wrapping ErrShapeMismatch. It costs 2·L·d·k flops, and none beyond a
// copy if X is stored as it is. A *mat.Dense is written in place; a
// *lowrank.Dense32 through float64 scratch of a block of rows (about 32
// Ki elements), never a copy of X. It returns ErrReleased (wrapped) after
// the last Release, and an error wrapping lowrank.ErrNotFinite if an
// element of X̃ overflows the destination's precision (a float64 X near
// ±MaxFloat64, or beyond float32's range in a *lowrank.Dense32); dst then
// holds ±Inf there.
func (s *Saved) Reconstruct(dst lowrank.Matrix) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	if s.dev != nil {
		return s.reconstructDevice(dst)
	}
	const what = "reconstruction destination"
	switch d := dst.(type) {
	case *mat.Dense:
		if d.IsEmpty() {
			d.ReuseAs(s.rows, s.cols)
		} else if r, c := d.Dims(); r != s.rows || c != s.cols {
			return s.mismatch(what, r, c, s.rows, s.cols)
		}
		s.reconstructRows(d, 0, s.rows)
		return s.checkOutput(d, "reconstruction", nil)
	case *lowrank.Dense32:
		if d.Rows == 0 && d.Cols == 0 && d.Data == nil {
			*d = *lowrank.NewDense32(s.rows, s.cols, nil)
		}
		if err := d.Check(); err != nil {
			return &LayerError{Layer: s.layer, Err: err}
		}
		if d.Rows != s.rows || d.Cols != s.cols {
			return s.mismatch(what, d.Rows, d.Cols, s.rows, s.cols)
		}
		rows := min(residualRows(s.cols), s.rows)
		tmp := getScratch(rows, s.cols)
		defer putScratch(tmp)
		for i0 := 0; i0 < s.rows; i0 += rows {
			i1 := min(i0+rows, s.rows)
			blk := tmp.Slice(0, i1-i0, 0, s.cols).(*mat.Dense)
			s.reconstructRows(blk, i0, i1)
			for i := i0; i < i1; i++ {
				row := d.Row(i)
				for j, v := range blk.RawRowView(i - i0) {
					row[j] = float32(v)
				}
			}
		}
		return s.checkOutput(d, "reconstruction", nil)
	}
	return &LayerError{Layer: s.layer, Err: fmt.Errorf("%w: %s must be a *mat.Dense or a *lowrank.Dense32, have %T", lowrank.ErrShape, what, dst)}
}

// checkOutput returns nil if the product out (a *mat.Dense or
// *lowrank.Dense32 the caller gave) is finite. Else it returns a
// *LayerError wrapping the *lowrank.NotFiniteError of in (the output
// gradient) if in holds a NaN or ±Inf, or an error wrapping
// lowrank.ErrNotFinite that names the overflowing element: the factors
// and in are finite, so the product's exact value lies beyond the
// destination's range. The scan costs one read of out, against the
// product's 2·k flops per element.
func (s *Saved) checkOutput(out mat.Matrix, what string, in mat.Matrix) error {
	err := lowrank.CheckFinite(out)
	if err == nil {
		return nil
	}
	var nf *lowrank.NotFiniteError
	if !errors.As(err, &nf) {
		return nil // an empty product: nothing to overflow
	}
	if in != nil {
		var gf *lowrank.NotFiniteError
		if errors.As(lowrank.CheckFinite(in), &gf) {
			return &LayerError{Layer: s.layer, Err: fmt.Errorf("output gradient: %w", gf)}
		}
	}
	prec := "float64"
	if _, ok := out.(*lowrank.Dense32); ok {
		prec = "float32"
	}
	return &LayerError{Layer: s.layer, Err: fmt.Errorf("%w: the %s overflows %s at (%d, %d)", lowrank.ErrNotFinite, what, prec, nf.Row, nf.Col)}
}

// reconstructRows writes rows [i0, i1) of X̃ (the factors' product plus
// the residual) into the (i1−i0)×d dst.
func (s *Saved) reconstructRows(dst *mat.Dense, i0, i1 int) {
	s.factorRows(dst, i0, i1)
	if !s.res.empty() {
		s.res.dequantRows(dst, i0, i1, true)
	}
}

// factorRows writes rows [i0, i1) of P̂·R̂ (or of X stored as it is) into
// the (i1−i0)×d dst.
func (s *Saved) factorRows(dst *mat.Dense, i0, i1 int) {
	if dst.IsEmpty() {
		dst.ReuseAs(i1-i0, s.cols)
	}
	if s.r.empty() {
		s.p.unpackRows(dst, i0, i1)
		return
	}
	p := getScratch(i1-i0, s.p.c)
	defer putScratch(p)
	s.p.unpackRows(p, i0, i1)
	r, rb := s.r.operand()
	defer putScratch(rb)
	mustMul(dst, p, false, r, false)
}

// WeightGradOutIn writes dst = Gᵀ·X̃ (o×d), the weight gradient of a
// linear layer y = X·Wᵀ whose weight W is out×in (o×d: PyTorch's
// nn.Linear layout), from the output gradient g (L×o), without
// reconstructing X̃: (Gᵀ·P)·R, 2·k·o·(L+d) flops instead of 2·L·d·(k+o).
// dst is a *mat.Dense or *lowrank.Dense32 (zero-sized: resized); a g with
// other than L rows or a dst of the wrong shape gives an error wrapping
// ErrShapeMismatch. g is not modified, and dst may share memory with it
// (the product is then formed in scratch first). A non-finite result is an
// error (Saved.Reconstruct's checkOutput): one wrapping g's
// *lowrank.NotFiniteError if g holds a NaN or ±Inf, else one wrapping
// lowrank.ErrNotFinite for a product beyond the destination's range.
func (s *Saved) WeightGradOutIn(dst lowrank.Matrix, g lowrank.Matrix) error {
	return s.weightGrad(dst, g, true)
}

// WeightGradInOut writes dst = X̃ᵀ·G (d×o), the weight gradient of a
// linear layer y = X·W whose weight W is in×out (d×o: gonum's layout),
// from the output gradient g (L×o): Rᵀ·(Pᵀ·G), 2·k·o·(L+d) flops. It is
// the transpose of WeightGradOutIn; shapes, destinations and errors are as
// there.
func (s *Saved) WeightGradInOut(dst lowrank.Matrix, g lowrank.Matrix) error {
	return s.weightGrad(dst, g, false)
}

func (s *Saved) weightGrad(dst lowrank.Matrix, gm lowrank.Matrix, outIn bool) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	if s.dev != nil {
		return s.weightGradDevice(dst, gm, outIn)
	}
	g, ok := gm.(mat.Matrix)
	if !ok {
		return &LayerError{Layer: s.layer, Err: fmt.Errorf("%w: the output gradient of a host activation must be a mat.Matrix, have %T", lowrank.ErrShape, gm)}
	}
	gr, o := g.Dims()
	if gr != s.rows {
		return s.mismatch("output gradient", gr, o, s.rows, o)
	}
	gh, gt := cpu.HostMatrix(g) // G = op(gh): ghᵀ if gt
	r, c := o, s.cols
	if !outIn {
		r, c = s.cols, o
	}
	out, err := s.dest(dst, r, c, "weight gradient destination", gh)
	if err != nil {
		return err
	}
	p, pb := s.p.operand()
	defer putScratch(pb)
	if s.r.empty() { // X itself: Gᵀ·X or Xᵀ·G
		if outIn {
			mustMul(out.d, gh, !gt, p, false)
		} else {
			mustMul(out.d, p, true, gh, gt)
		}
		return s.commitGrad(out, dst, g)
	}
	rm, rb := s.r.operand()
	defer putScratch(rb)
	k := s.p.c
	if outIn {
		t := getScratch(o, k) // Gᵀ·P
		defer putScratch(t)
		mustMul(t, gh, !gt, p, false)
		mustMul(out.d, t, false, rm, false)
	} else {
		t := getScratch(k, o) // Pᵀ·G
		defer putScratch(t)
		mustMul(t, p, true, gh, gt)
		mustMul(out.d, rm, true, t, false)
	}
	if !s.res.empty() {
		s.addResidualGrad(out.d, gh, gt, outIn)
	}
	return s.commitGrad(out, dst, g)
}

// commitGrad moves a weight gradient into the caller's dst and checks it.
func (s *Saved) commitGrad(out destination, dst lowrank.Matrix, g mat.Matrix) error {
	if err := out.commit(); err != nil {
		return err
	}
	return s.checkOutput(dst.(mat.Matrix), "weight gradient", g)
}

// addResidualGrad adds the residual's share of the weight gradient to
// dst: Gᵀ·Ê (outIn) or Êᵀ·G, one block of rows of Ê dequantized into
// scratch at a time, G = op(gh) (ghᵀ if gt). Cost 2·L·d·o flops.
func (s *Saved) addResidualGrad(dst *mat.Dense, gh lowrank.Matrix, gt, outIn bool) {
	rows := min(residualRows(s.cols), s.rows)
	eb := getScratch(rows, s.cols)
	defer putScratch(eb)
	for i0 := 0; i0 < s.rows; i0 += rows {
		i1 := min(i0+rows, s.rows)
		e := eb.Slice(0, i1-i0, 0, s.cols).(*mat.Dense)
		s.res.dequantRows(e, i0, i1, false)
		g, t := rowsOf(gh, gt, i0, i1) // G[i0:i1, :] = op(g), gᵀ if t
		var err error
		if outIn {
			err = cpu.Backend{}.Mul(dst, 1, g, !t, e, false, 1)
		} else {
			err = cpu.Backend{}.Mul(dst, 1, e, true, g, t, 1)
		}
		if err != nil {
			panic(err) // the CPU backend reports no errors
		}
	}
}

// rowsOf returns rows [i0, i1) of op(gh) (ghᵀ if gt) as a view m and
// whether it is mᵀ; gh is a *mat.Dense or *lowrank.Dense32.
func rowsOf(gh lowrank.Matrix, gt bool, i0, i1 int) (lowrank.Matrix, bool) {
	switch g := gh.(type) {
	case *mat.Dense:
		r, c := g.Dims()
		if gt {
			return g.Slice(0, r, i0, i1), true
		}
		return g.Slice(i0, i1, 0, c), false
	case *lowrank.Dense32:
		if gt {
			return g.Slice(0, g.Rows, i0, i1), true
		}
		return g.Slice(i0, i1, 0, g.Cols), false
	}
	panic(fmt.Sprintf("activation: rowsOf %T", gh))
}

// mustMul is the backward pass's host product, in float64 even for
// float32 factors or gradients (widened exactly): the products of stored
// factors keep the accuracy the handle's error reports.
func mustMul(dst *mat.Dense, a lowrank.Matrix, ta bool, b lowrank.Matrix, tb bool) {
	if err := (cpu.Backend{WideFloat32: true}).Mul(dst, 1, a, ta, b, tb, 0); err != nil {
		panic(err) // the CPU backend reports no errors
	}
}

// destination is where a product goes: d, a float64 matrix, and commit,
// which moves d into the caller's destination when that is not d itself.
type destination struct {
	d      *mat.Dense
	commit func() error
}

// dest checks the caller's destination dst (r×c or zero-sized) and returns
// where to compute: dst itself for a *mat.Dense that does not share memory
// with in, else float64 scratch copied into dst by commit.
func (s *Saved) dest(dst lowrank.Matrix, r, c int, what string, in lowrank.Matrix) (destination, error) {
	switch d := dst.(type) {
	case *mat.Dense:
		if d.IsEmpty() {
			d.ReuseAs(r, c)
		} else if dr, dc := d.Dims(); dr != r || dc != c {
			return destination{}, s.mismatch(what, dr, dc, r, c)
		}
		if in == nil || !cpu.Overlaps(d, in) {
			return destination{d: d, commit: func() error { return nil }}, nil
		}
		tmp := getScratch(r, c)
		return destination{d: tmp, commit: func() error { d.Copy(tmp); putScratch(tmp); return nil }}, nil
	case *lowrank.Dense32:
		if d.Rows == 0 && d.Cols == 0 && d.Data == nil {
			*d = *lowrank.NewDense32(r, c, nil)
		}
		if err := d.Check(); err != nil {
			return destination{}, &LayerError{Layer: s.layer, Err: err}
		}
		if d.Rows != r || d.Cols != c {
			return destination{}, s.mismatch(what, d.Rows, d.Cols, r, c)
		}
		tmp := getScratch(r, c)
		return destination{d: tmp, commit: func() error {
			defer putScratch(tmp)
			raw := tmp.RawMatrix()
			for i := 0; i < r; i++ {
				row := d.Row(i)
				for j, v := range raw.Data[i*raw.Stride : i*raw.Stride+c] {
					row[j] = float32(v)
				}
			}
			return nil
		}}, nil
	}
	return destination{}, &LayerError{Layer: s.layer, Err: fmt.Errorf("%w: %s must be a *mat.Dense or a *lowrank.Dense32, have %T", lowrank.ErrShape, what, dst)}
}

// Retain adds a reference to s, for a further consumer of the same tensor.
// It returns the compression's error, or ErrReleased (wrapped) after the
// last Release.
func (s *Saved) Retain() error {
	if err := s.Wait(); err != nil {
		return err
	}
	if !s.share() {
		return &LayerError{Layer: s.layer, Err: ErrReleased}
	}
	return nil
}

// Release drops one reference; the last one frees the factors and removes
// them from the accounting and the key table. Releasing more often than
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
	c.release(s)
	if s.dev != nil {
		s.dev.release()
		return nil
	}
	s.p.recycle()
	s.r.recycle()
	s.res.recycle()
	return nil
}
