package activation

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/exact"
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

// Compressor saves activations for backward. It is safe for concurrent
// use. Close releases its scratch memory.
type Compressor struct {
	cfg     Config
	be      lowrank.Backend
	workers chan *worker // idle decomposers
	sem     chan struct{}

	mu      sync.Mutex
	calls   uint64
	cache   map[cacheKey]*Saved
	stats   map[string]*LayerStats
	order   []string
	total   LayerStats
	pending sync.WaitGroup
	errs    []error
}

// New returns a Compressor with configuration cfg, or an error wrapping
// lowrank.ErrOption or lowrank.ErrRank for an invalid one.
func New(cfg Config) (*Compressor, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &Compressor{cfg: cfg, be: cfg.Backend, cache: map[cacheKey]*Saved{}, stats: map[string]*LayerStats{}}
	if c.be == nil {
		c.be = cpu.Backend{}
	}
	if _, cpu := c.be.(cpu.Backend); !cpu && cfg.Workers > 1 {
		return nil, fmt.Errorf("%w: Workers = %d on backend %s: a device backend serves one goroutine (its own stream); use Workers ≤ 1",
			lowrank.ErrOption, cfg.Workers, c.be.Name())
	}
	n := max(1, cfg.Workers)
	c.workers = make(chan *worker, n)
	for range n {
		c.workers <- &worker{
			be:    c.be,
			rows:  sampling.NewDecomposer(c.be),
			gauss: rsvd.NewDecomposer(c.be),
		}
	}
	if cfg.Workers > 0 {
		c.sem = make(chan struct{}, cfg.Workers)
	}
	return c, nil
}

// Config returns the compressor's configuration.
func (c *Compressor) Config() Config { return c.cfg }

// Close waits for pending compressions and releases the decomposers'
// scratch matrices. Saved handles stay usable.
func (c *Compressor) Close() {
	c.pending.Wait()
	for range cap(c.workers) {
		w := <-c.workers
		w.rows.Close()
		w.gauss.Close()
		c.workers <- w
	}
}

// cacheKey identifies an activation by its memory: the address of its
// first element (held as a pointer, so the buffer cannot be freed and its
// address reused while the entry lives), shape and stride.
type cacheKey struct {
	ptr        unsafe.Pointer
	obj        lowrank.Matrix
	r, c, strd int
}

func keyOf(x lowrank.Matrix) cacheKey {
	r, c := x.Dims()
	switch x := x.(type) {
	case *mat.Dense:
		raw := x.RawMatrix()
		if len(raw.Data) > 0 {
			return cacheKey{ptr: unsafe.Pointer(&raw.Data[0]), r: r, c: c, strd: raw.Stride}
		}
	case *lowrank.Dense32:
		if len(x.Data) > 0 {
			// a float32 and a float64 matrix at one address differ in stride
			// units; tell them apart by a negative stride.
			return cacheKey{ptr: unsafe.Pointer(&x.Data[0]), r: r, c: c, strd: -x.Stride}
		}
	}
	return cacheKey{obj: x, r: r, c: c}
}

// Compress saves the activation x of layer for backward and returns its
// handle. x is an L×d backend matrix (on the CPU a *mat.Dense or a
// *lowrank.Dense32; see View for a (batch, seq, hidden) tensor); it is not
// modified, and is not referenced after Compress returns (or, with
// Workers > 0, after Join).
//
// If the same memory (same address, shape and stride) is already saved
// and not yet fully released, Compress returns that handle with one more
// reference instead of compressing again: each consumer releases it once.
// The caller must not overwrite an activation while a handle to it is live.
//
// Cost: for Rows and Gaussian, about 4·L·d·ℓ·(1+q) flops (sketch and
// projection, 4·L·d·ℓ per power iteration) plus O(min(L,d)·ℓ²) for the QR,
// ℓ = k + Oversample, q = PowerIters; Exact costs O(L·d·min(L,d)). Compress returns a *LayerError wrapping a
// *lowrank.NotFiniteError if x holds NaN or ±Inf (with Workers > 0, from
// Join and from the handle's methods instead).
func (c *Compressor) Compress(layer string, x lowrank.Matrix) (*Saved, error) {
	rows, cols := x.Dims()
	if rows == 0 || cols == 0 {
		return nil, &LayerError{Layer: layer, Err: fmt.Errorf("%w: %d×%d", lowrank.ErrEmpty, rows, cols)}
	}
	key := keyOf(x)
	c.mu.Lock()
	if s, ok := c.cache[key]; ok {
		s.mu.Lock()
		s.refs++
		s.mu.Unlock()
		c.layer(layer).Shared++
		c.mu.Unlock()
		return s, nil
	}
	seed := c.cfg.Seed + 0x9e3779b97f4a7c15*c.calls
	c.calls++
	s := &Saved{c: c, layer: layer, rows: rows, cols: cols, refs: 1, key: key, done: make(chan struct{})}
	c.cache[key] = s
	c.pending.Add(1)
	c.mu.Unlock()

	if c.sem == nil {
		c.run(s, x, seed)
		if s.err != nil {
			return nil, s.err
		}
		return s, nil
	}
	c.sem <- struct{}{}
	go func() {
		defer func() { <-c.sem }()
		c.run(s, x, seed)
	}()
	return s, nil
}

// run compresses x into s and accounts it.
func (c *Compressor) run(s *Saved, x lowrank.Matrix, seed uint64) {
	defer c.pending.Done()
	w := <-c.workers
	err := w.compress(s, x, &c.cfg, seed)
	c.workers <- w
	c.mu.Lock()
	if err != nil {
		s.err = &LayerError{Layer: s.layer, Err: err}
		s.released = true
		delete(c.cache, s.key)
		if c.sem != nil { // a synchronous Compress returns its error itself
			c.errs = append(c.errs, s.err)
		}
	} else {
		c.account(s, +1)
	}
	c.mu.Unlock()
	close(s.done)
}

// Join waits until every pending compression has finished and returns the
// errors of those that failed since the last Join (errors.Join of
// *LayerError values), or nil. Call it between forward and backward.
func (c *Compressor) Join() error {
	c.pending.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	err := errors.Join(c.errs...)
	c.errs = nil
	return err
}

// LayerStats is the memory accounting of one layer's saved activations (or
// of all layers: Stats.Total). Bytes are those of the stored factors;
// DenseBytes are the uncompressed equivalent, counted at float32 (4 bytes
// per element, the precision training loops save activations in), so
// that ratios are against float32 storage even for a float64 input.
type LayerStats struct {
	Layer string
	// Calls counts compressions; Shared counts Compress calls answered by
	// the dedup cache (counted under the layer that asked).
	Calls, Shared int
	// Live and Peak are the bytes held now and at most so far.
	Live, Peak int
	// DenseLive and DensePeak are the same for the uncompressed
	// equivalent.
	DenseLive, DensePeak int
	// Rank and RelError are those of the last compression; MaxRelError the
	// largest relative error so far.
	Rank                  int
	RelError, MaxRelError float64
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
		s.Calls, s.Shared, s.MaxRelError = 0, 0, 0
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
		}
	}
}

// worker owns the decomposers and scratch of one goroutine.
type worker struct {
	be    lowrank.Backend
	rows  *sampling.Decomposer
	gauss *rsvd.Decomposer
	f     lowrank.Factors
	buf   mat.Dense
}

// host returns x as a host matrix, downloading a device matrix.
func (w *worker) host(be lowrank.Backend, x lowrank.Matrix) (mat.Matrix, error) {
	switch x := x.(type) {
	case *mat.Dense:
		return x, nil
	case *lowrank.Dense32:
		return x, nil
	}
	w.buf.Reset()
	if err := be.Download(&w.buf, x); err != nil {
		return nil, err
	}
	return &w.buf, nil
}

// compress fills s.p, s.r, s.rank, s.relErr and s.bytes.
func (w *worker) compress(s *Saved, x lowrank.Matrix, cfg *Config, seed uint64) error {
	be := w.be
	m, n := s.rows, s.cols
	k := cfg.Rank.rank(m, n)
	// Factors of rank k take k·(m+n) elements against m·n for X itself;
	// beyond the break-even rank X is stored as it is. A tolerance policy
	// decides after its search.
	if cfg.Method == Uncompressed || (cfg.Rank.kind != rankTol && k*(m+n) >= m*n) {
		return w.keepDense(s, be, x, cfg)
	}
	var tol float64
	if cfg.Rank.kind == rankTol {
		tol = cfg.Rank.tol
	}
	var err error
	switch cfg.Method {
	case ExactSVD:
		return w.exact(s, be, x, k, cfg)
	case RowSampling:
		err = w.rows.QBTo(&w.f, x, k, &sampling.Options{Oversample: cfg.Oversample, PowerIters: cfg.PowerIters, Seed: seed, Tolerance: tol})
	case Gaussian:
		err = w.gauss.QBTo(&w.f, x, k, &rsvd.Options{Oversample: cfg.Oversample, PowerIters: cfg.PowerIters, Seed: seed, Tolerance: tol})
	}
	if err != nil && !errors.Is(err, lowrank.ErrTolerance) {
		return err
	}
	q, b := w.f.Q, w.f.B
	if cfg.Rank.kind == rankTol {
		if _, kk := q.Dims(); kk*(m+n) >= m*n {
			return w.keepDense(s, be, x, cfg)
		}
	}
	// op(X) ≈ Q·B. Not transposed: P = Q (m×k), R = B (k×n). Transposed
	// (Q is n×k, B is k×m): X ≈ Bᵀ·Qᵀ, P = Bᵀ, R = Qᵀ.
	qh, err := w.download(be, q, "q")
	if err != nil {
		return err
	}
	bh, err := w.download(be, b, "b")
	if err != nil {
		return err
	}
	if w.f.Trans {
		s.p.packDense(bh, true, cfg.Precision)
		s.r.packDense(qh, true, cfg.Precision)
	} else {
		s.p.packDense(qh, false, cfg.Precision)
		s.r.packDense(bh, false, cfg.Precision)
	}
	_, s.rank = q.Dims()
	s.relErr = w.f.RelError()
	return w.finish(s, be, x, cfg)
}

// download returns a backend matrix as a *mat.Dense (itself on the CPU).
func (w *worker) download(be lowrank.Backend, m lowrank.Matrix, name string) (*mat.Dense, error) {
	if d, ok := m.(*mat.Dense); ok {
		return d, nil
	}
	var d mat.Dense
	if err := be.Download(&d, m); err != nil {
		return nil, fmt.Errorf("downloading %s: %w", name, err)
	}
	return &d, nil
}

// exact stores the truncated exact SVD: P = U·diag(S), R = Vᵀ.
func (w *worker) exact(s *Saved, be lowrank.Backend, x lowrank.Matrix, k int, cfg *Config) error {
	h, err := w.host(be, x)
	if err != nil {
		return err
	}
	m, n := s.rows, s.cols
	if err := lowrank.CheckFinite(h); err != nil {
		return err
	}
	norm2A := lowrank.SquaredFrobenius(h)
	if cfg.Rank.kind == rankTol {
		k = min(m, n)
	}
	f, err := exact.TruncatedSVD(h, k)
	if err != nil {
		return err
	}
	sv := f.Values(nil)
	if cfg.Rank.kind == rankTol {
		kmax := cfg.Rank.rank(m, n)
		target := (1 - cfg.Rank.tol*cfg.Rank.tol) * norm2A
		k = kmax
		for i, sum := 0, 0.0; i < kmax; i++ {
			sum += sv[i] * sv[i]
			if sum >= target {
				k = i + 1
				break
			}
		}
		if k*(m+n) >= m*n {
			return w.keepDense(s, be, x, cfg)
		}
		f.Truncate(k)
	}
	var norm2B float64
	for _, v := range sv[:k] {
		norm2B += v * v
	}
	var us, v mat.Dense
	f.UTo(&us)
	f.VTo(&v)
	raw := us.RawMatrix()
	for i := 0; i < raw.Rows; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+k]
		for j := range row {
			row[j] *= sv[j]
		}
	}
	s.p.packDense(&us, false, cfg.Precision)
	s.r.packDense(&v, true, cfg.Precision)
	s.rank = k
	s.relErr = lowrank.ErrorFromSquaredNorms(norm2A, norm2B)
	return w.finish(s, be, x, cfg)
}

// keepDense stores x as it is, at the storage precision.
func (w *worker) keepDense(s *Saved, be lowrank.Backend, x lowrank.Matrix, cfg *Config) error {
	h, err := w.host(be, x)
	if err != nil {
		return err
	}
	if err := lowrank.CheckFinite(h); err != nil {
		return err
	}
	s.p.packMatrix(h, cfg.Precision)
	s.r = packed{}
	s.rank = min(s.rows, s.cols)
	s.relErr = 0
	return w.finish(s, be, x, cfg)
}

// finish sets s.bytes and, if asked, measures the error of the stored
// factors exactly.
func (w *worker) finish(s *Saved, be lowrank.Backend, x lowrank.Matrix, cfg *Config) error {
	s.bytes = s.p.bytes() + s.r.bytes()
	if !cfg.MeasureError {
		return nil
	}
	h, err := w.host(be, x)
	if err != nil {
		return err
	}
	var rec mat.Dense
	s.reconstruct(&rec)
	var num, den float64
	for i := 0; i < s.rows; i++ {
		row := rec.RawRowView(i)
		for j, v := range row {
			a := h.At(i, j)
			num += (a - v) * (a - v)
			den += a * a
		}
	}
	if den > 0 {
		s.relErr = sqrt(num / den)
	} else {
		s.relErr = sqrt(num)
	}
	return nil
}
