package activation

import (
	"errors"
	"fmt"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// View returns the (batch·seq)×hidden matrix of an activation of shape
// (batch, seq, hidden) stored contiguously in data, sharing data. It
// panics with lowrank.ErrShape if len(data) ≠ batch·seq·hidden.
func View(batch, seq, hidden int, data []float32) *lowrank.Dense32 {
	return lowrank.NewDense32(batch*seq, hidden, data)
}

// Key identifies a tensor for sharing one saved activation between the
// consumers of that tensor (the q, k and v projections of one LayerNorm
// output; a frozen layer and its LoRA branch): ID is the caller's name for
// the tensor and Version changes whenever its buffer is overwritten. See
// CompressKey.
type Key struct {
	ID, Version uint64
}

// Compressor saves activations for backward. All its methods are safe for
// concurrent use: Compress, CompressKey, Join, Stats, ResetPeak and Close
// may be called from any goroutines at any time (after Close, Compress
// returns ErrClosed). Close releases its scratch memory.
type Compressor struct {
	cfg     Config
	be      lowrank.Backend
	workers chan *worker  // idle decomposers
	sem     chan struct{} // bounds the goroutines of asynchronous mode

	mu      sync.Mutex
	idle    *sync.Cond // signalled when pending falls to 0
	closed  bool
	shut    bool // workers released
	calls   uint64
	pending int
	keys    map[Key]*Saved
	stats   map[string]*LayerStats
	order   []string
	total   LayerStats
	errs    []error
	budget  *budgetState // nil unless the rank policy is a Budget
}

// New returns a Compressor with configuration cfg, or an error wrapping
// lowrank.ErrOption or lowrank.ErrRank for an invalid one.
func New(cfg Config) (*Compressor, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &Compressor{cfg: cfg, be: cfg.Backend, keys: map[Key]*Saved{}, stats: map[string]*LayerStats{}}
	c.idle = sync.NewCond(&c.mu)
	if cfg.Rank.kind == rankBudget {
		c.budget = newBudget(cfg.Rank)
	}
	if c.be == nil {
		c.be = cpu.Backend{}
	}
	dev := c.deviceBackend()
	if dev != nil && cfg.Precision == lowrank.Float64 {
		return nil, fmt.Errorf("%w: precision %v on backend %s: device storage is bf16 or float32", lowrank.ErrOption, cfg.Precision, c.be.Name())
	}
	_, host := c.be.(cpu.Backend)
	if !host && dev == nil && cfg.Workers > 1 {
		return nil, fmt.Errorf("%w: Workers = %d on backend %s: a backend without Fork serves one goroutine; use Workers ≤ 1",
			lowrank.ErrOption, cfg.Workers, c.be.Name())
	}
	n := max(1, cfg.Workers)
	c.workers = make(chan *worker, n)
	for range n {
		be := c.be
		if dev != nil && cfg.Workers > 0 {
			// Asynchronous compression on a device: each worker queues
			// its work on a stream of its own, made to wait for the
			// caller's stream at each Compress.
			f, err := dev.Fork()
			if err != nil {
				c.closeWorkers()
				return nil, fmt.Errorf("activation: a stream for worker: %w", err)
			}
			be = f
		}
		c.workers <- &worker{be: be, rows: sampling.NewDecomposer(be), gauss: rsvd.NewDecomposer(be)}
	}
	if cfg.Workers > 0 {
		c.sem = make(chan struct{}, cfg.Workers)
	}
	return c, nil
}

// Config returns the compressor's configuration.
func (c *Compressor) Config() Config { return c.cfg }

// Close stops new compressions (Compress returns ErrClosed), waits for the
// pending ones and releases the decomposers' scratch matrices. Saved
// handles stay usable. A second Close only waits.
func (c *Compressor) Close() {
	c.mu.Lock()
	c.closed = true
	for c.pending > 0 {
		c.idle.Wait()
	}
	shut := c.shut
	c.shut = true
	c.mu.Unlock()
	if shut {
		return
	}
	c.closeWorkers()
}

// closeWorkers releases the scratch of the workers in c.workers (and
// their streams, on a device).
func (c *Compressor) closeWorkers() {
	for range len(c.workers) {
		w := <-c.workers
		w.rows.Close()
		w.gauss.Close()
		w.f.Free(w.be)
		if w.side != nil {
			w.sideRows.Close()
			_ = w.side.Close()
			w.side, w.sideRows = nil, nil
		}
		if f, ok := w.be.(*gpu.Backend); ok && w.be != c.be {
			_ = f.Close()
		}
		c.workers <- w
	}
}

// Compress saves the activation x of layer for backward and returns its
// handle. x is an L×d matrix of the compressor's backend: on the CPU a
// *mat.Dense or a *lowrank.Dense32 (see View), or a mat.Transpose of
// either, read in place; any other mat.Matrix is copied first; on a
// *gpu.Backend a *gpu.Matrix, float32 or bf16, row- or column-major. x is
// not modified, and nothing of it is referenced once the compression has
// finished: when Compress returns, or with Workers > 0 when the handle's
// Wait (or Join) returns — until then the caller must not overwrite x. On
// a device, "finished" is in stream order: the reads of x are queued on
// the backend's stream before Compress returns, so kernels the caller
// queues on that stream afterwards may overwrite x.
//
// Every call compresses afresh; a further consumer of the same tensor
// shares the handle by saying so, with Saved.Retain or CompressKey.
//
// Cost: for RowSampling and Gaussian, about 4·L·d·ℓ·(1+q) flops (sketch
// and projection, 4·L·d·ℓ per power iteration) plus O(min(L,d)·ℓ²) for the
// QR, ℓ = k + Oversample, q = PowerIters; ExactSVD costs O(L·d·min(L,d)).
//
// Errors, each a *LayerError naming the layer: an empty or malformed x
// (lowrank.ErrEmpty, lowrank.ErrShape), NaN or ±Inf in x (a
// *lowrank.NotFiniteError with the position), factors beyond the storage
// precision's range (lowrank.ErrNotFinite), a compression that panicked
// (ErrPanic); ErrClosed after Close. With Workers > 0 the data errors come
// from the handle's Wait and methods and from Join instead.
func (c *Compressor) Compress(layer string, x lowrank.Matrix) (*Saved, error) {
	return c.compress(layer, nil, x)
}

// CompressKey is Compress for a tensor with several consumers: if a handle
// saved under key is still live (not fully released), it is returned with
// one more reference and nothing is compressed; otherwise x is compressed
// and remembered under key until its last Release. Each consumer releases
// the handle once. The key, never the memory address, decides: a buffer
// that is overwritten with new data needs a new Version.
func (c *Compressor) CompressKey(layer string, key Key, x lowrank.Matrix) (*Saved, error) {
	return c.compress(layer, &key, x)
}

func (c *Compressor) compress(layer string, key *Key, x lowrank.Matrix) (*Saved, error) {
	s, seed, shared, err := c.begin(layer, key, x)
	if err != nil || shared {
		return s, err
	}
	if c.sem == nil {
		c.run(s, x, seed)
		if s.err != nil {
			return nil, s.err
		}
		return s, nil
	}
	ready, err := c.ready(s)
	if err != nil {
		return nil, err
	}
	c.sem <- struct{}{}
	go func() {
		defer func() { <-c.sem }()
		defer ready.Close()
		c.runAfter(s, x, seed, ready)
	}()
	return s, nil
}

// CompressBatch is Compress for several activations at once: the same
// handles, seeds, accounting and errors as Compress(layers[i], xs[i]) in
// order, with one difference of cost. On a device backend the activations
// compressed by RowSampling at one rank are decomposed together by
// sampling.Decomposer.QBBatchTo, whatever their shapes (a layer's L×4096
// and L×11008 inputs alike): one fused read and input check, one batched
// QR and batched products for all of them, one host synchronisation for
// the batch (its reads deferred: lowrank.Deferrer) instead of three per
// activation — for
// many small activations (the per-op tensors of a transformer block) a
// fraction of their cost one by one (docs/gpu.md, "Batched compression").
// On the CPU it is Compress in a loop. With Workers > 0 the batch is one
// asynchronous job: its handles are returned at once and complete
// together.
//
// It returns one handle per activation, nil for one that failed, and the
// errors of those that failed (errors.Join of *LayerError values); with
// Workers > 0 the data errors come from the handles and Join, as for
// Compress. It panics with lowrank.ErrShape if layers and xs differ in
// length.
func (c *Compressor) CompressBatch(layers []string, xs []lowrank.Matrix) ([]*Saved, error) {
	if len(layers) != len(xs) {
		panic(fmt.Errorf("%w: CompressBatch of %d layers and %d activations", lowrank.ErrShape, len(layers), len(xs)))
	}
	out := make([]*Saved, len(xs))
	var errs []error
	var run []*Saved
	var runX []lowrank.Matrix
	var seeds []uint64
	for i, x := range xs {
		s, seed, _, err := c.begin(layers[i], nil, x)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[i] = s
		run, runX, seeds = append(run, s), append(runX, x), append(seeds, seed)
	}
	// failed returns the handles with the errors of those that have
	// failed taken out.
	failed := func() ([]*Saved, error) {
		for i, s := range out {
			if s != nil && s.err != nil {
				errs = append(errs, s.err)
				out[i] = nil
			}
		}
		return out, errors.Join(errs...)
	}
	if len(run) == 0 {
		return failed()
	}
	if c.sem == nil {
		c.runBatch(run, runX, seeds, nil)
		return failed()
	}
	ready, err := c.ready(run[0])
	if err != nil {
		for _, s := range run[1:] {
			c.finish(s, err)
		}
		return failed()
	}
	c.sem <- struct{}{}
	go func() {
		defer func() { <-c.sem }()
		defer ready.Close()
		c.runBatch(run, runX, seeds, ready)
	}()
	return out, errors.Join(errs...)
}

// ready returns, on a device backend, an event recorded on the caller's
// stream after the work so far (the kernels that wrote the activations),
// for a worker's stream to wait on; nil on the CPU. On failure s is
// finished with the error, which is returned.
func (c *Compressor) ready(s *Saved) (*gpu.Event, error) {
	dev := c.deviceBackend()
	if dev == nil {
		return nil, nil
	}
	ev, err := dev.Record()
	if err != nil {
		c.finish(s, err)
		return nil, s.err
	}
	return ev, nil
}

// begin validates x and registers its handle: a shared handle (CompressKey
// of a live key, returned with shared set) or a new pending one with its
// seed. Its error is a *LayerError.
func (c *Compressor) begin(layer string, key *Key, x lowrank.Matrix) (s *Saved, seed uint64, shared bool, err error) {
	if x == nil {
		return nil, 0, false, &LayerError{Layer: layer, Err: fmt.Errorf("%w: nil activation", lowrank.ErrEmpty)}
	}
	if d, ok := x.(*lowrank.Dense32); ok {
		if err := d.Check(); err != nil {
			return nil, 0, false, &LayerError{Layer: layer, Err: err}
		}
	}
	rows, cols := x.Dims()
	if rows <= 0 || cols <= 0 {
		return nil, 0, false, &LayerError{Layer: layer, Err: fmt.Errorf("%w: %d×%d", lowrank.ErrEmpty, rows, cols)}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, 0, false, &LayerError{Layer: layer, Err: ErrClosed}
	}
	if key != nil {
		if s, ok := c.keys[*key]; ok && s.share() {
			c.layer(layer).Shared++
			c.mu.Unlock()
			return s, 0, true, nil
		}
	}
	var w want
	if c.budget != nil {
		if w, err = c.reserve(layer, rows, cols); err != nil {
			c.mu.Unlock()
			return nil, 0, false, &LayerError{Layer: layer, Err: err}
		}
	}
	seed = c.cfg.Seed + 0x9e3779b97f4a7c15*c.calls
	c.calls++
	s = &Saved{c: c, layer: layer, rows: rows, cols: cols, refs: 1, key: key, done: make(chan struct{}), want: w}
	if c.budget != nil {
		c.budget.step = append(c.budget.step, s)
	}
	if key != nil {
		c.keys[*key] = s
	}
	c.pending++
	c.mu.Unlock()
	return s, seed, false, nil
}

// run compresses x into s and accounts it. A panic on the way becomes s's
// error; the worker, the key and the pending count are released on every
// path, and s.done is closed last.
func (c *Compressor) run(s *Saved, x lowrank.Matrix, seed uint64) { c.runAfter(s, x, seed, nil) }

// runAfter is run with the device work made to wait for ready, if not nil
// (asynchronous mode on a device): runBatch of one handle.
func (c *Compressor) runAfter(s *Saved, x lowrank.Matrix, seed uint64, ready *gpu.Event) {
	c.runBatch([]*Saved{s}, []lowrank.Matrix{x}, []uint64{seed}, ready)
}

// runBatch compresses xs into the handles ss (one CompressBatch, or one
// Compress) on one worker and accounts them, with the device work made to
// wait for ready if not nil (asynchronous mode on a device). The worker's
// stream is then synchronised before the handles are finished, so that
// when Wait returns the inputs are no longer read and the factors are
// complete for any stream. A panic on the way becomes every handle's
// error; the worker, the keys and the pending count are released on every
// path, and each handle is finished with its own error.
func (c *Compressor) runBatch(ss []*Saved, xs []lowrank.Matrix, seeds []uint64, ready *gpu.Event) {
	errs := make([]error, len(ss))
	defer func() {
		if r := recover(); r != nil {
			for i := range errs {
				errs[i] = fmt.Errorf("%w: %v", ErrPanic, r)
			}
		}
		for i, s := range ss {
			c.finish(s, errs[i])
		}
	}()
	w := <-c.workers
	defer func() { c.workers <- w }()
	if ready != nil {
		f := w.be.(*gpu.Backend)
		if err := f.Wait(ready); err != nil {
			for i := range errs {
				errs[i] = err
			}
			return
		}
		defer func() {
			if e := f.Synchronize(); e != nil {
				for i := range errs {
					if errs[i] == nil {
						errs[i] = e
					}
				}
			}
		}()
	}
	w.compressBatch(ss, xs, &c.cfg, seeds, errs)
}

// finish records the outcome of s's compression.
func (c *Compressor) finish(s *Saved, err error) {
	c.mu.Lock()
	if err == nil && c.budget != nil && s.bytes > s.want.charge {
		// Never reached: the storage is what the reservation computed
		// (TestBudgetBytesExact); kept so that a mistake there cannot
		// exceed the budget.
		err = fmt.Errorf("%w: stored %d bytes, %d reserved", ErrBudget, s.bytes, s.want.charge)
	}
	if err != nil {
		if c.budget != nil {
			c.budget.used -= s.want.charge
		}
		s.err = &LayerError{Layer: s.layer, Err: err}
		s.released = true
		if s.key != nil && c.keys[*s.key] == s {
			delete(c.keys, *s.key)
		}
		if c.sem != nil { // a synchronous Compress returns its error itself
			c.errs = append(c.errs, s.err)
		}
	} else {
		c.account(s, +1)
	}
	c.pending--
	if c.pending == 0 {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
	close(s.done)
}

// Join waits until every compression started before or during the call has
// finished and returns the errors of those that failed since the last Join
// (errors.Join of *LayerError values), or nil. Call it between forward and
// backward. Under a Budget policy it also plans the next step from the
// spectra measured since the last Join (see Budget and Plan).
func (c *Compressor) Join() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pending > 0 {
		c.idle.Wait()
	}
	if c.budget != nil {
		c.replan()
	}
	err := errors.Join(c.errs...)
	c.errs = nil
	return err
}

// LayerStats is the memory accounting of one layer's saved activations (or
// of all layers: Stats.Total). Bytes are those of the stored factors (or
// copies); DenseBytes are the uncompressed equivalent, counted at float32
// (4 bytes per element, the precision training loops save activations in),
// so that ratios are against float32 storage even for a float64 input.
type LayerStats struct {
	Layer string
	// Calls counts compressions; Shared counts CompressKey calls answered
	// with a live handle (counted under the layer that asked).
	Calls, Shared int
	// Stored counts the activations kept as they are (method Uncompressed,
	// a rank past the break-even point, or a missed tolerance), and
	// ToleranceMisses those of them kept because no rank within the bound
	// met a Tolerance policy. BudgetCuts counts the compressions whose
	// planned rank a Budget policy cut to fit the bytes left.
	Stored, ToleranceMisses, BudgetCuts int
	// Live and Peak are the bytes held now and at most so far.
	Live, Peak int
	// DenseLive and DensePeak are the same for the uncompressed
	// equivalent.
	DenseLive, DensePeak int
	// Rank and RelError are those of the last compression; MaxRelError the
	// largest relative error so far and MeanRelError the mean over Calls.
	Rank                                int
	RelError, MaxRelError, MeanRelError float64
}

// Stats is a snapshot of the accounting.
type Stats struct {
	// Layers in order of their first Compress.
	Layers []LayerStats
	// Total over all layers: Peak is the peak of the sum, not the sum of
	// peaks.
	Total LayerStats
}

// Stats returns a snapshot of the memory accounting.
func (c *Compressor) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{Total: c.total}
	st.Total.Layer = "total"
	for _, name := range c.order {
		st.Layers = append(st.Layers, *c.stats[name])
	}
	return st
}

// ResetPeak sets every peak to the current live bytes, and the call
// counters and largest errors to zero.
func (c *Compressor) ResetPeak() {
	c.mu.Lock()
	defer c.mu.Unlock()
	reset := func(s *LayerStats) {
		s.Peak, s.DensePeak = s.Live, s.DenseLive
		s.Calls, s.Shared, s.Stored, s.ToleranceMisses, s.BudgetCuts = 0, 0, 0, 0, 0
		s.MaxRelError, s.MeanRelError = 0, 0
	}
	reset(&c.total)
	for _, s := range c.stats {
		reset(s)
	}
}

// layer returns the stats of name, creating them. c.mu must be held.
func (c *Compressor) layer(name string) *LayerStats {
	s, ok := c.stats[name]
	if !ok {
		s = &LayerStats{Layer: name}
		c.stats[name] = s
		c.order = append(c.order, name)
	}
	return s
}

// account adds (sign +1) or removes (−1) s's bytes. c.mu must be held.
func (c *Compressor) account(s *Saved, sign int) {
	dense := 4 * s.rows * s.cols
	for _, st := range []*LayerStats{c.layer(s.layer), &c.total} {
		st.Live += sign * s.bytes
		st.DenseLive += sign * dense
		st.Peak = max(st.Peak, st.Live)
		st.DensePeak = max(st.DensePeak, st.DenseLive)
		if sign > 0 {
			st.Calls++
			st.Rank = s.rank
			st.RelError = s.relErr
			st.MaxRelError = max(st.MaxRelError, s.relErr)
			st.MeanRelError += (s.relErr - st.MeanRelError) / float64(st.Calls)
			if s.kept() {
				st.Stored++
			}
			if s.tolMiss {
				st.ToleranceMisses++
			}
		}
	}
}

// release removes s from the key table and the accounting once its last
// reference is dropped. c.mu must be held.
func (c *Compressor) release(s *Saved) {
	if s.key != nil && c.keys[*s.key] == s {
		delete(c.keys, *s.key)
	}
	if c.budget != nil {
		c.budget.used -= s.want.charge
	}
	c.account(s, -1)
}

// hostMatrix returns x as a host matrix for the CPU-side steps (the exact
// SVD, a stored copy, error measurement), downloading a device matrix
// into buf, and whether it is the transpose of the matrix stored.
func hostMatrix(be lowrank.Backend, x lowrank.Matrix, buf *mat.Dense) (mat.Matrix, error) {
	if m, ok := x.(mat.Matrix); ok {
		if _, host := be.(cpu.Backend); host {
			return m, nil
		}
	}
	buf.Reset()
	if err := be.Download(buf, x); err != nil {
		return nil, err
	}
	return buf, nil
}
