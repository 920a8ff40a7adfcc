package activation

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// The device path: with a *gpu.Backend the factors P and R stay in device
// memory at the storage precision (bf16 or float32 matrices from the
// backend's memory pool), and every backward product runs on the device
// into device destinations. No activation or factor data crosses to the
// host; what does is a few scalars per compression (the norm and largest
// element read for the input check, the QR's status words) and the ℓ
// sampled row indices, drawn on the host and uploaded (8ℓ bytes).

// deviceStore is a saved activation's device storage: X ≈ P·R (p and r
// at the storage precision, their rank dimension padded with zeros to a
// multiple of 8 (storeFactorsDevice), or pq and rq in int8 with a scale
// per rank-one term), plus the quantized residual res if configured; or
// X itself in p when neither r nor rq is set.
type deviceStore struct {
	b      *gpu.Backend
	p, r   *gpu.Matrix
	pq, rq *gpu.Quantized
	res    *gpu.Quantized
}

// kept reports whether X is stored as it is.
func (d *deviceStore) kept() bool { return d.r == nil && d.rq == nil }

// bytes returns the bytes of the stored matrices as allocated, a factor's
// zero padding included (what Config.StoredBytes predicts).
func (d *deviceStore) bytes() int {
	n := 0
	for _, m := range []*gpu.Matrix{d.p, d.r} {
		if m != nil {
			r, c := m.Dims()
			n += r * c * m.DType().Size()
		}
	}
	for _, q := range []*gpu.Quantized{d.pq, d.rq, d.res} {
		if q != nil {
			n += q.Bytes()
		}
	}
	return n
}

func (d *deviceStore) release() {
	for _, m := range []*gpu.Matrix{d.p, d.r} {
		if m != nil {
			d.b.Free(m)
		}
	}
	for _, q := range []*gpu.Quantized{d.pq, d.rq, d.res} {
		d.b.FreeQuantized(q)
	}
	*d = deviceStore{b: d.b}
}

// factors returns P (L×k) and R (k×d) as operands of the backend's
// products: the stored matrices, k their padded rank dimension, or int8
// factors (k the rank) dequantized into float32 scratch matrices
// (factor-sized) that done frees.
func (d *deviceStore) factors(be *gpu.Backend) (p, r *gpu.Matrix, done func(), err error) {
	if d.pq == nil {
		return d.p, d.r, func() {}, nil
	}
	var tmp []*gpu.Matrix
	done = func() {
		for _, m := range tmp {
			be.Free(m)
		}
	}
	for _, f := range []struct {
		q   *gpu.Quantized
		dst **gpu.Matrix
	}{{d.pq, &p}, {d.rq, &r}} {
		rr, cc := f.q.Dims()
		m, err := be.NewMatrix(rr, cc, gpu.Float32)
		if err != nil {
			done()
			return nil, nil, nil, err
		}
		tmp = append(tmp, m)
		if err := be.Dequantize(m, f.q, 0, false); err != nil {
			done()
			return nil, nil, nil, err
		}
		*f.dst = m
	}
	return p, r, done, nil
}

// quantizeDevice stores the device matrix m (r×c, either layout) in int8
// with one scale per column (perCol: the factor P) or per row (the factor
// R): one per rank-one term either way.
func quantizeDevice(be *gpu.Backend, m *gpu.Matrix, perCol bool) (*gpu.Quantized, error) {
	r, c := m.Dims()
	q, err := be.NewQuantized(r, c, 8, c, perCol)
	if err != nil {
		return nil, err
	}
	if err := be.Quantize(q, 0, m, nil); err != nil {
		be.FreeQuantized(q)
		return nil, err
	}
	return q, nil
}

// storeFactorsDevice stores P = op(l) (L×k) and R = op(r) (k×d) as cfg
// says: at the storage precision, or in int8 (FactorBits). large says the
// input was of large magnitude, where a stored value or a scale may
// overflow its storage: then the storage is checked.
//
// At the storage precision P is stored L×k₈ and R k₈×d, k₈ = k rounded up
// to a multiple of 8 where that adds at most an eighth of the bytes
// (Config.storedRank; k₈ = k otherwise), the columns of P and the rows of
// R beyond k zero: P₈·R₈ = P·R exactly (the extra terms are 0·0), and
// every product that reads the factors has inner dimension k₈. An inner
// dimension off a multiple of 8 keeps cuBLAS off its fast bf16 kernels:
// the GPU demo's 12544×1536 reconstruction at rank 231 took 98 µs against
// 28 µs at 232, and 54 µs with gemm padding its operands into scratch,
// 27 µs of it the copies (H100; docs/results.md, "Twenty-second
// session" and "Twenty-third session"). Stored padded, the copies are
// made once, here, instead of at every product; the cost is ≤ 7 more
// ranks of bytes.
func storeFactorsDevice(ds *deviceStore, be *gpu.Backend, l, r *gpu.Matrix, cfg *Config, large bool) error {
	var err error
	if cfg.FactorBits == 8 {
		if ds.pq, err = quantizeDevice(be, l, true); err != nil {
			return err
		}
		if ds.rq, err = quantizeDevice(be, r, false); err != nil {
			return err
		}
		if large {
			return checkStored(be, ds.pq.ScaleMatrix(), ds.rq.ScaleMatrix())
		}
		return nil
	}
	m, k := l.Dims()
	_, n := r.Dims()
	kp := cfg.storedRank(k)
	if ds.p, err = store(be, l, cfg.Precision, m, kp); err != nil {
		return err
	}
	if ds.r, err = store(be, r, cfg.Precision, kp, n); err != nil {
		return err
	}
	if large {
		return checkStored(be, ds.p, ds.r)
	}
	return nil
}

// view returns m, or its transpose view if t.
func view(m lowrank.Matrix, t bool) *gpu.Matrix {
	g := m.(*gpu.Matrix)
	if t {
		return g.T()
	}
	return g
}

// store copies m (r×c) into new storage of precision prec on be, of
// shape rp×cp ≥ r×c: m is its leading r×c block, the rest zero. The
// storage has m's layout: a row-major m (a transposed view, as a rows
// QB's factors are) is stored row-major, so that the copy reads and
// writes down the stored columns (coalesced) where a transposing copy
// would read across them (docs/gpu.md, "The factors' copies"); the padded
// dimensions are the logical ones in either layout.
func store(be *gpu.Backend, m *gpu.Matrix, prec lowrank.Precision, rp, cp int) (*gpu.Matrix, error) {
	if m.RowMajorLayout() {
		st, err := store(be, m.T(), prec, cp, rp)
		if err != nil {
			return nil, err
		}
		return st.T(), nil
	}
	r, c := m.Dims()
	// Unpadded, Copy writes every element; padded, the storage is zeroed
	// whole (one memset over its bytes; the backend has none for a block
	// of a matrix) and m copied into its block, so the padding stays zero.
	var st *gpu.Matrix
	var dst lowrank.Matrix // st's leading r×c block
	var err error
	if rp == r && cp == c {
		st, err = be.NewStorageUninit(r, c, prec)
		dst = st
	} else {
		var sm lowrank.Matrix
		if sm, err = be.NewStorage(rp, cp, prec); err == nil {
			st = sm.(*gpu.Matrix)
			dst = be.Slice(st, 0, r, 0, c)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := be.Copy(dst, m); err != nil {
		be.Free(st)
		return nil, err
	}
	return st, nil
}

// compressDevice is worker.compress for a device backend.
func (w *worker) compressDevice(s *Saved, x lowrank.Matrix, cfg *Config, seed uint64, be *gpu.Backend) error {
	xm, err := w.deviceInput(s, x, be)
	if err != nil {
		return err
	}
	k, over, how := plan(s, cfg)
	switch how {
	case planDense:
		return w.keepDenseDevice(s, xm, cfg, be)
	case planExact:
		return w.exactDevice(s, xm, k, cfg, be)
	}
	return w.storeQBDevice(s, xm, cfg, be, &w.f, w.qb(&w.f, s, xm, k, over, cfg, seed))
}

// deviceInput returns x as a device matrix and gives s its device storage.
func (w *worker) deviceInput(s *Saved, x lowrank.Matrix, be *gpu.Backend) (*gpu.Matrix, error) {
	xm, ok := x.(*gpu.Matrix)
	if !ok {
		return nil, fmt.Errorf("%w: a %s backend takes *gpu.Matrix activations, have %T", lowrank.ErrShape, be.Name(), x)
	}
	// The storage is freed through the caller's backend, ordered after
	// the backward products queued on its stream.
	s.dev = &deviceStore{b: s.c.deviceBackend()}
	return xm, nil
}

// storeQBDevice stores the QB f of x (or handles its error err, as
// compressDevice does) into s.
func (w *worker) storeQBDevice(s *Saved, xm *gpu.Matrix, cfg *Config, be *gpu.Backend, f *lowrank.Factors, err error) error {
	m, n := s.rows, s.cols
	if errors.Is(err, lowrank.ErrTolerance) {
		s.tolMiss = true
		return w.keepDenseDevice(s, xm, cfg, be)
	}
	if err != nil {
		return err
	}
	if kk := f.Rank(); cfg.Rank.kind == rankTol && kk*(m+n) >= m*n {
		return w.keepDenseDevice(s, xm, cfg, be)
	}
	if s.want.k > 0 {
		s.gains = gains(f.Spectrum, f.SquaredNormA)
	}
	l, tl := f.Left()
	r, tr := f.Right()
	// NormScale < 1: an input of large magnitude, whose factors may
	// exceed the storage's range.
	if err := storeFactorsDevice(s.dev, be, view(l, tl), view(r, tr), cfg, f.NormScale < 1); err != nil {
		return err
	}
	s.rank = f.Rank()
	s.relErr = f.RelError()
	normX := 0.0
	if f.SquaredNormA > 0 {
		normX = math.Sqrt(f.SquaredNormA) / f.NormScale
	}
	return w.finishDevice(s, xm, cfg, be, normX, f.NormScale < 1)
}

// compressBatchDevice is compressBatch on a device backend: the row-sampled
// QBs of one rank and width go through QBBatchTo together, whatever their
// shapes (it groups them by shape and orientation), the rest one by one.
func (w *worker) compressBatchDevice(ss []*Saved, xs []lowrank.Matrix, cfg *Config, seeds []uint64, errs []error, be *gpu.Backend) {
	type key struct{ k, over int } // a batch: one rank and oversampling
	var order []key
	groups := map[key][]int{}
	for i, s := range ss {
		k, over, how := plan(s, cfg)
		if _, ok := xs[i].(*gpu.Matrix); !ok || how != planQB || cfg.Method != RowSampling {
			errs[i] = w.compress(s, xs[i], cfg, seeds[i])
			continue
		}
		sh := key{k, over}
		if _, ok := groups[sh]; !ok {
			order = append(order, sh)
		}
		groups[sh] = append(groups[sh], i)
	}
	for _, sh := range order {
		at := groups[sh]
		if len(at) == 1 {
			errs[at[0]] = w.compress(ss[at[0]], xs[at[0]], cfg, seeds[at[0]])
			continue
		}
		for len(w.fs) < len(at) {
			w.fs = append(w.fs, new(lowrank.Factors))
		}
		xms := make([]lowrank.Matrix, len(at))
		opts := make([]*sampling.Options, len(at))
		for j, i := range at {
			xm, _ := w.deviceInput(ss[i], xs[i], be)
			xms[j] = xm
			opts[j] = w.rowsOptions(ss[i], sh.over, cfg, seeds[i])
		}
		var qbErrs []error
		if cfg.BatchStreams == 2 {
			qbErrs = w.qbTwoStreams(xms, sh.k, opts, be)
		} else {
			qbErrs = batchErrs(w.rows.QBBatchTo(w.fs[:len(at)], xms, sh.k, opts), len(at))
		}
		for j, i := range at {
			errs[i] = w.storeQBDevice(ss[i], xms[j].(*gpu.Matrix), cfg, be, w.fs[j], qbErrs[j])
		}
	}
}

// batchErrs returns the per-item errors of a QBBatchTo of n items.
func batchErrs(err error, n int) []error {
	errs := make([]error, n)
	var be *lowrank.BatchError
	for j := range errs {
		errs[j] = err
		if errors.As(err, &be) {
			errs[j] = be.Errs[j]
		}
	}
	return errs
}

// qbTwoStreams computes QBBatchTo(w.fs[j], xms[j], k, opts[j]) for every
// j with the items split into two groups of about equal bytes: one
// decomposed on be's stream, the other on the stream of the worker's
// side sibling (a Fork made on first use), each group driven by its own
// goroutine so that each waits for its own stream only. The side stream
// first waits for be's work so far (the kernels that wrote the
// activations) and be's stream then waits for the side's (an event each,
// no host synchronisation), so the factors are ordered as if be had
// computed them. One group's latency-bound QR then overlaps the other's
// reads of its activations (docs/gpu.md, "Batched compression"). The
// result is the items' errors.
func (w *worker) qbTwoStreams(xms []lowrank.Matrix, k int, opts []*sampling.Options, be *gpu.Backend) []error {
	n := len(xms)
	errs := make([]error, n)
	every := func(err error) []error { // every item fails with err
		for j := range errs {
			errs[j] = err
		}
		return errs
	}
	if w.side == nil {
		side, err := be.Fork()
		if err != nil {
			return every(fmt.Errorf("activation: a second stream for a batch: %w", err))
		}
		w.side, w.sideRows = side, sampling.NewDecomposer(side)
	}
	// Largest first to the lighter group (ties to be's stream).
	order := make([]int, n)
	for j := range order {
		order[j] = j
	}
	size := func(j int) int { r, c := xms[j].Dims(); return r * c }
	sort.SliceStable(order, func(a, b int) bool { return size(order[a]) > size(order[b]) })
	var group [2][]int
	var bytes [2]int
	for _, j := range order {
		g := 0
		if bytes[1] < bytes[0] {
			g = 1
		}
		group[g] = append(group[g], j)
		bytes[g] += size(j)
	}
	for g := range group {
		sort.Ints(group[g]) // the batch's order within a group
	}
	ready, err := be.Record()
	if err == nil {
		err = w.side.Wait(ready)
		ready.Close()
	}
	if err != nil {
		return every(err)
	}
	run := func(dec *sampling.Decomposer, fs []*lowrank.Factors, items []int) {
		as := make([]lowrank.Matrix, len(items))
		os := make([]*sampling.Options, len(items))
		for j, i := range items {
			as[j], os[j] = xms[i], opts[i]
		}
		for j, e := range batchErrs(dec.QBBatchTo(fs, as, k, os), len(items)) {
			errs[items[j]] = e
		}
	}
	// Each group writes its items' w.fs: device matrices of the shared
	// pool, which either stream may write in this order.
	dsts := func(items []int) []*lowrank.Factors {
		fs := make([]*lowrank.Factors, len(items))
		for j, i := range items {
			fs[j] = w.fs[i]
		}
		return fs
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(w.sideRows, dsts(group[1]), group[1])
	}()
	run(w.rows, dsts(group[0]), group[0])
	wg.Wait()
	done, err := w.side.Record()
	if err == nil {
		err = be.Wait(done)
		done.Close()
	}
	if err != nil {
		return every(err)
	}
	return errs
}

// checkStored returns an error wrapping lowrank.ErrNotFinite if a stored
// factor holds ±Inf (a value beyond the storage precision's range).
func checkStored(be *gpu.Backend, ms ...*gpu.Matrix) error {
	for _, m := range ms {
		_, mx, err := be.SquaredNorm(m, 1)
		if err != nil {
			return err
		}
		if math.IsInf(mx, 0) || math.IsNaN(mx) {
			return fmt.Errorf("%w: a factor overflows its %v storage", lowrank.ErrNotFinite, m.DType())
		}
	}
	return nil
}

// checkFiniteDevice returns the input check's error for a device matrix,
// and max|x_ij|.
func checkFiniteDevice(be *gpu.Backend, x *gpu.Matrix) (float64, error) {
	sq, mx, err := be.SquaredNorm(x, 1)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(sq) || math.IsInf(mx, 0) || math.IsNaN(mx) {
		i, j, v, found, err := be.FindNonFinite(x)
		if err != nil {
			return 0, err
		}
		if found {
			return 0, &lowrank.NotFiniteError{Row: i, Col: j, Value: v}
		}
	}
	return mx, nil
}

// keepDenseDevice stores x as it is, at the storage precision, on the
// device.
func (w *worker) keepDenseDevice(s *Saved, x *gpu.Matrix, cfg *Config, be *gpu.Backend) error {
	mx, err := checkFiniteDevice(be, x)
	if err != nil {
		return err
	}
	ds := s.dev
	if ds.p, err = store(be, x, cfg.Precision, s.rows, s.cols); err != nil {
		return err
	}
	ds.r = nil
	if cfg.Precision == lowrank.BFloat16 && mx > 3.38e38 { // bf16's largest finite value is 3.39e38
		if err := checkStored(be, ds.p); err != nil {
			return err
		}
	}
	s.rank = min(s.rows, s.cols)
	s.relErr = 0
	s.bytes = ds.bytes()
	return nil
}

// exactDevice stores the truncated exact SVD computed on the device:
// P = U, R = diag(S)·Vᵀ.
func (w *worker) exactDevice(s *Saved, x *gpu.Matrix, k int, cfg *Config, be *gpu.Backend) error {
	if _, err := checkFiniteDevice(be, x); err != nil {
		return err
	}
	m, n := s.rows, s.cols
	if cfg.Rank.kind == rankTol || s.want.k > 0 {
		k = min(m, n)
	}
	u, v, sv, err := be.ExactSVD(x, k)
	if err != nil {
		return err
	}
	defer be.Free(u)
	defer be.Free(v)
	// σ_j² in units of σ₁² (all 0 for X = 0), and ‖X‖² their sum.
	sq := make([]float64, len(sv))
	var total float64
	for j, x := range sv {
		if sv[0] > 0 {
			sq[j] = (x / sv[0]) * (x / sv[0])
		}
		total += sq[j]
	}
	if cfg.Rank.kind == rankTol {
		k = tolRank(sq, total, cfg.Rank.tol, cfg.Rank.rank(m, n))
		if k == 0 {
			s.tolMiss = true
			return w.keepDenseDevice(s, x, cfg, be)
		}
		if k*(m+n) >= m*n {
			return w.keepDenseDevice(s, x, cfg, be)
		}
	} else {
		if s.want.k > 0 {
			// The whole spectrum was computed (sv, all min(m, n) values):
			// ‖X‖² is their sum, in units of σ₁².
			s.gains = gains(sq[:s.want.width], total)
			k = s.want.k
		}
		// total of a rank-k ExactSVD holds only k values: the error needs
		// ‖X‖², read from the device (in units of σ₁², or as it is for
		// X = 0, whose 1/σ₁ would make 0·∞).
		scale := 1.0
		if sv[0] > 0 {
			scale = 1 / sv[0]
		}
		n2, _, err := be.SquaredNorm(x, scale)
		if err != nil {
			return err
		}
		total = n2
	}
	uk := be.Slice(u, 0, m, 0, k).(*gpu.Matrix)
	// R = diag(S_k)·V_kᵀ, the diagonal uploaded (k² floats: the exact
	// path is a reference, not the steady state), formed in float32.
	dg, err := be.NewMatrix(k, k, gpu.Float32)
	if err != nil {
		return err
	}
	defer be.Free(dg)
	if err := be.Upload(dg, mat.NewDiagDense(k, sv[:k])); err != nil {
		return err
	}
	rk, err := be.NewMatrix(k, n, gpu.Float32)
	if err != nil {
		return err
	}
	defer be.Free(rk)
	vk := be.Slice(v, 0, n, 0, k)
	if err := be.Mul(rk, 1, dg, false, vk, true, 0); err != nil {
		return err
	}
	if err := storeFactorsDevice(s.dev, be, uk, rk, cfg, false); err != nil {
		return err
	}
	s.rank = k
	s.relErr = lowrank.ErrorFromSquaredNorms(total, kept(sq, k))
	return w.finishDevice(s, x, cfg, be, sv[0]*math.Sqrt(total), false)
}

// residualRowsDevice is the number of rows of the blocks in which the
// residual is formed on the device and multiplied into weight gradients:
// about 1 Mi elements of float32 scratch (4 MiB), whatever L.
func residualRowsDevice(d int) int { return max(1, (1<<20)/d) }

// residualDevice quantizes E = X − P̂·R̂, the residual of the stored
// factors, into s.dev.res block of rows by block of rows (float32 scratch
// of residualRowsDevice rows) and returns the relative error of the stored
// approximation, ‖Ê − E‖_F/‖X‖_F, from the blocks' errors (normX = ‖X‖_F;
// the error itself for X = 0). large asks for the scales to be checked
// for overflow.
func residualDevice(s *Saved, x *gpu.Matrix, cfg *Config, be *gpu.Backend, normX float64, large bool) (float64, error) {
	ds := s.dev
	m, n := s.rows, s.cols
	res, err := be.NewQuantized(m, n, cfg.ResidualBits, cfg.residualBlock(), false)
	if err != nil {
		return 0, err
	}
	ds.res = res
	p, r, done, err := ds.factors(be)
	if err != nil {
		return 0, err
	}
	defer done()
	_, k := p.Dims()
	ge, err := be.NewMatrix(res.Scales(), 1, gpu.Float32)
	if err != nil {
		return 0, err
	}
	defer be.Free(ge)
	rows := min(m, residualRowsDevice(n))
	e, err := be.NewMatrix(rows, n, gpu.Float32)
	if err != nil {
		return 0, err
	}
	defer be.Free(e)
	for i0 := 0; i0 < m; i0 += rows {
		i1 := min(i0+rows, m)
		eb := be.Slice(e, 0, i1-i0, 0, n)
		if err := be.Copy(eb, be.Slice(x, i0, i1, 0, n)); err != nil {
			return 0, err
		}
		if err := be.Mul(eb, -1, be.Slice(p, i0, i1, 0, k), false, r, false, 1); err != nil { // X − P̂·R̂
			return 0, err
		}
		if err := be.Quantize(res, i0, eb, ge); err != nil {
			return 0, err
		}
	}
	if large {
		if err := checkStored(be, res.ScaleMatrix()); err != nil {
			return 0, err
		}
	}
	sq, _, err := be.SquaredNorm(ge, 1)
	if err != nil {
		return 0, err
	}
	if normX == 0 {
		return math.Sqrt(sq), nil
	}
	return math.Sqrt(sq) / normX, nil
}

// finishDevice stores the residual if asked, sets s.bytes and, if asked,
// measures the error of the stored approximation on the device:
// ‖P̂·R̂ + Ê − X‖_F/‖X‖_F with the difference formed in a float32 scratch
// matrix. normX is ‖X‖_F for the residual's error, large as for
// residualDevice.
func (w *worker) finishDevice(s *Saved, x *gpu.Matrix, cfg *Config, be *gpu.Backend, normX float64, large bool) error {
	ds := s.dev
	if cfg.ResidualBits != 0 && !ds.kept() {
		var err error
		if s.relErr, err = residualDevice(s, x, cfg, be, normX, large); err != nil {
			return fmt.Errorf("residual: %w", err)
		}
	}
	s.bytes = ds.bytes()
	if !cfg.MeasureError || ds.kept() {
		return nil
	}
	// Squared norms of sc·X and sc·(P·R − X), sc = 1/max|x_ij|: no
	// overflow or underflow whatever X's magnitude.
	_, mx, err := be.SquaredNorm(x, 1)
	if err != nil {
		return err
	}
	sc := 1.0
	if mx > 0 {
		sc = 1 / mx
	}
	nx, _, err := be.SquaredNorm(x, sc)
	if err != nil {
		return err
	}
	d, err := be.NewMatrix(s.rows, s.cols, gpu.Float32)
	if err != nil {
		return err
	}
	defer be.Free(d)
	if err := be.Copy(d, x); err != nil {
		return err
	}
	p, r, done, err := ds.factors(be)
	if err != nil {
		return err
	}
	defer done()
	if err := be.Mul(d, 1, p, false, r, false, -1); err != nil { // P·R − X
		return err
	}
	if ds.res != nil {
		if err := be.Dequantize(d, ds.res, 0, true); err != nil { // + Ê
			return err
		}
	}
	ne, _, err := be.SquaredNorm(d, sc)
	if err != nil {
		return err
	}
	if nx > 0 {
		s.relErr = math.Sqrt(ne / nx)
	} else {
		s.relErr = math.Sqrt(ne) / sc
	}
	return nil
}

// deviceBackend returns the compressor's backend as a device backend, or
// nil.
func (c *Compressor) deviceBackend() *gpu.Backend {
	b, _ := c.be.(*gpu.Backend)
	return b
}

// deviceMatrix returns m as a matrix of s's device, or an error for the
// wrong kind of matrix.
func (s *Saved) deviceMatrix(m lowrank.Matrix, what string) (*gpu.Matrix, error) {
	g, ok := m.(*gpu.Matrix)
	if !ok {
		return nil, &LayerError{Layer: s.layer, Err: fmt.Errorf("%w: %s of a device activation must be a *gpu.Matrix, have %T", lowrank.ErrShape, what, m)}
	}
	return g, nil
}

// reconstructDevice writes P·R (or X) into the device matrix dst.
func (s *Saved) reconstructDevice(dst lowrank.Matrix) error {
	d, err := s.deviceMatrix(dst, "the reconstruction destination")
	if err != nil {
		return err
	}
	if r, c := d.Dims(); r != s.rows || c != s.cols {
		return s.mismatch("reconstruction destination", r, c, s.rows, s.cols)
	}
	be := s.c.deviceBackend()
	ds := s.dev
	if ds.kept() {
		if d.RowMajorLayout() {
			return be.Copy(d.T(), ds.p.T())
		}
		return be.Copy(d, ds.p)
	}
	p, r, done, err := ds.factors(be)
	if err != nil {
		return err
	}
	defer done()
	if err := be.Mul(d, 1, p, false, r, false, 0); err != nil {
		return err
	}
	if ds.res != nil { // + Ê, added in place: no copy of X beyond dst
		return be.Dequantize(d, ds.res, 0, true)
	}
	return nil
}

// weightGradDevice is weightGrad for device storage, dst and g device
// matrices (float32 or bf16, either layout). The intermediate product
// (Gᵀ·P or Pᵀ·G, k×o) is held in bf16 when the factors are: its rounding,
// 2⁻⁹ relative, is that of the stored factors themselves.
func (s *Saved) weightGradDevice(dst, g lowrank.Matrix, outIn bool) error {
	d, err := s.deviceMatrix(dst, "the weight gradient destination")
	if err != nil {
		return err
	}
	gm, err := s.deviceMatrix(g, "the output gradient")
	if err != nil {
		return err
	}
	gr, o := gm.Dims()
	if gr != s.rows {
		return s.mismatch("output gradient", gr, o, s.rows, o)
	}
	r, c := o, s.cols
	if !outIn {
		r, c = s.cols, o
	}
	if dr, dc := d.Dims(); dr != r || dc != c {
		return s.mismatch("weight gradient destination", dr, dc, r, c)
	}
	be := s.c.deviceBackend()
	ds := s.dev
	if ds.kept() {
		if outIn {
			return be.Mul(d, 1, gm, true, ds.p, false, 0)
		}
		return be.Mul(d, 1, ds.p, true, gm, false, 0)
	}
	p, rf, done, err := ds.factors(be)
	if err != nil {
		return err
	}
	defer done()
	_, k := p.Dims() // the stored rank dimension: s.rank padded (storeFactorsDevice)
	tdt := p.DType() // float32 for dequantized int8 factors
	var t *gpu.Matrix
	if outIn {
		t, err = be.NewMatrix(o, k, tdt)
	} else {
		t, err = be.NewMatrix(k, o, tdt)
	}
	if err != nil {
		return err
	}
	defer be.Free(t)
	if outIn { // (Gᵀ·P)·R
		if err := be.Mul(t, 1, gm, true, p, false, 0); err != nil {
			return err
		}
		if err := be.Mul(d, 1, t, false, rf, false, 0); err != nil {
			return err
		}
	} else { // Rᵀ·(Pᵀ·G)
		if err := be.Mul(t, 1, p, true, gm, false, 0); err != nil {
			return err
		}
		if err := be.Mul(d, 1, rf, true, t, false, 0); err != nil {
			return err
		}
	}
	if ds.res == nil {
		return nil
	}
	// + Gᵀ·Ê (or Êᵀ·G), one block of rows of Ê dequantized into float32
	// scratch at a time: 2·L·d·o flops, no copy of X.
	rows := min(s.rows, residualRowsDevice(s.cols))
	e, err := be.NewMatrix(rows, s.cols, gpu.Float32)
	if err != nil {
		return err
	}
	defer be.Free(e)
	for i0 := 0; i0 < s.rows; i0 += rows {
		i1 := min(i0+rows, s.rows)
		eb := be.Slice(e, 0, i1-i0, 0, s.cols)
		if err := be.Dequantize(eb, ds.res, i0, false); err != nil {
			return err
		}
		gb := be.Slice(gm, i0, i1, 0, o)
		if outIn {
			err = be.Mul(d, 1, gb, true, eb, false, 1)
		} else {
			err = be.Mul(d, 1, eb, true, gb, false, 1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
