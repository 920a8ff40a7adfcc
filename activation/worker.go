package activation

import (
	"errors"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/exact"
	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// worker owns the decomposers and scratch of one goroutine.
type worker struct {
	be    lowrank.Backend
	rows  *sampling.Decomposer
	gauss *rsvd.Decomposer
	f     lowrank.Factors
	fs    []*lowrank.Factors // the factors of a batch (compressBatchDevice)
	// side is a sibling of a device be (Fork, made on first use) whose
	// stream decomposes half of a batch (qbTwoStreams), with sideRows.
	side     *gpu.Backend
	sideRows *sampling.Decomposer
	buf      mat.Dense // a downloaded device activation
}

// compress fills s's storage, rank, relErr and bytes from x.
func (w *worker) compress(s *Saved, x lowrank.Matrix, cfg *Config, seed uint64) error {
	if dev, ok := w.be.(*gpu.Backend); ok {
		return w.compressDevice(s, x, cfg, seed, dev)
	}
	m, n := s.rows, s.cols
	k, over, how := plan(s, cfg)
	switch how {
	case planDense:
		return w.keepDense(s, x, cfg)
	case planExact:
		return w.exact(s, x, k, cfg)
	}
	// On the CPU a transpose view is decomposed in place as the matrix it
	// stores, and the factors transposed back.
	h, trans := x, false
	if _, host := w.be.(cpu.Backend); host {
		if hm, ok := x.(mat.Matrix); ok {
			h, trans = cpu.HostMatrix(hm)
		}
	}
	err := w.qb(&w.f, s, h, k, over, cfg, seed)
	if errors.Is(err, lowrank.ErrTolerance) {
		s.tolMiss = true
		return w.keepDense(s, x, cfg)
	}
	if err != nil {
		return err
	}
	if kk := w.f.Rank(); cfg.Rank.kind == rankTol && kk*(m+n) >= m*n {
		return w.keepDense(s, x, cfg)
	}
	if s.want.k > 0 {
		s.gains = gains(w.f.Spectrum, w.f.SquaredNormA)
	}
	// h ≈ op(L)·op(R); for x = hᵀ, X ≈ op(R)ᵀ·op(L)ᵀ.
	l, tl := w.f.Left()
	r, tr := w.f.Right()
	if trans {
		l, r, tl, tr = r, l, !tr, !tl
	}
	if err := w.pack(&s.p, l, tl, cfg, "P"); err != nil {
		return err
	}
	if err := w.pack(&s.r, r, tr, cfg, "R"); err != nil {
		return err
	}
	s.rank = w.f.Rank()
	s.relErr = w.f.RelError()
	return w.finish(s, x, cfg)
}

// How plan stores an activation.
const (
	planQB    = iota // the randomized QB of cfg.Method
	planDense        // as it is
	planExact        // the truncated exact SVD
)

// plan returns the rank and oversampling of s's compression and how it is
// stored. Factors of rank k take k·(m+n) elements against m·n for X
// itself; beyond the break-even rank X is stored as it is. A tolerance
// policy decides after its search.
func plan(s *Saved, cfg *Config) (k, over, how int) {
	m, n := s.rows, s.cols
	k, over = cfg.Rank.rank(m, n), cfg.Oversample
	if s.want.k > 0 { // a Budget policy: the rank reserved, a wider sketch
		k, over = s.want.k, max(over, s.want.width-s.want.k)
	}
	switch {
	case cfg.Method == Uncompressed || s.want.dense || (cfg.Rank.kind != rankTol && k*(m+n) >= m*n):
		return k, over, planDense
	case cfg.Method == ExactSVD:
		return k, over, planExact
	}
	return k, over, planQB
}

// qb runs the randomized method of cfg on x (a matrix of w's backend)
// into f: rank k, oversampling over, the tolerance of a Tolerance policy,
// and the sketch's spectrum when a budget plans s's layer.
func (w *worker) qb(f *lowrank.Factors, s *Saved, x lowrank.Matrix, k, over int, cfg *Config, seed uint64) error {
	if cfg.Method == Gaussian {
		o := w.rowsOptions(s, over, cfg, seed)
		return w.gauss.QBTo(f, x, k, &rsvd.Options{Oversample: o.Oversample, PowerIters: o.PowerIters, Seed: o.Seed, Tolerance: o.Tolerance, Spectrum: o.Spectrum})
	}
	return w.rows.QBTo(f, x, k, w.rowsOptions(s, over, cfg, seed))
}

// rowsOptions returns the sampling options of s's compression.
func (w *worker) rowsOptions(s *Saved, over int, cfg *Config, seed uint64) *sampling.Options {
	var tol float64
	if cfg.Rank.kind == rankTol {
		tol = cfg.Rank.tol
	}
	return &sampling.Options{Oversample: over, PowerIters: cfg.PowerIters, Seed: seed, Tolerance: tol, Spectrum: s.want.k > 0}
}

// compressBatch is compress for every ss[i], its error into errs[i]: on a
// device backend through compressBatchDevice (for more than one), on the
// CPU one by one.
func (w *worker) compressBatch(ss []*Saved, xs []lowrank.Matrix, cfg *Config, seeds []uint64, errs []error) {
	if dev, ok := w.be.(*gpu.Backend); ok && len(ss) > 1 {
		w.compressBatchDevice(ss, xs, cfg, seeds, errs, dev)
		return
	}
	for i, s := range ss {
		errs[i] = w.compress(s, xs[i], cfg, seeds[i])
	}
}

// tolRank returns the smallest rank k ≤ kmax (and ≤ len(sq)) of an exact
// SVD whose discarded energy, total − Σ_{j<k} sq_j, is at most tol²·total,
// or 0 if none is: sq are the squared singular values, non-increasing, in
// the units of total (‖X‖²). A zero X (total 0) takes rank 1.
func tolRank(sq []float64, total, tol float64, kmax int) int {
	var kept float64
	for k := 1; k <= min(kmax, len(sq)); k++ {
		kept += sq[k-1]
		if total-kept <= tol*tol*total {
			return k
		}
	}
	return 0
}

// kept returns Σ_{j<k} sq_j, summed in order (as tolRank sums).
func kept(sq []float64, k int) float64 {
	var t float64
	for _, v := range sq[:k] {
		t += v
	}
	return t
}

// gains returns σ_j²/‖X‖², j < ℓ, from a sketch's squared singular values
// and ‖X‖² (in the same units), all 0 for X = 0.
func gains(spec []float64, normA2 float64) []float64 {
	g := make([]float64, len(spec))
	if normA2 > 0 {
		for j, v := range spec {
			g[j] = v / normA2
		}
	}
	return g
}

// pack stores op(m) (m a backend matrix) as cfg says: at cfg.Precision, or
// in int8 with a scale per rank-one term (per column of P, per row of R).
func (w *worker) pack(dst *packed, m lowrank.Matrix, trans bool, cfg *Config, name string) error {
	d, ok := m.(*mat.Dense)
	if !ok {
		var h mat.Dense
		if err := w.be.Download(&h, m); err != nil {
			return fmt.Errorf("downloading %s: %w", name, err)
		}
		d = &h
	}
	var err error
	if cfg.FactorBits == 8 {
		err = dst.packInt8(d, trans, name == "P")
	} else {
		err = dst.packDense(d, trans, cfg.Precision)
	}
	if err != nil {
		return fmt.Errorf("factor %s: %w", name, err)
	}
	return nil
}

// exact stores the truncated exact SVD: P = U·diag(S), R = Vᵀ.
func (w *worker) exact(s *Saved, x lowrank.Matrix, k int, cfg *Config) error {
	h, err := hostMatrix(w.be, x, &w.buf)
	if err != nil {
		return err
	}
	m, n := s.rows, s.cols
	if cfg.Rank.kind == rankTol || s.want.k > 0 {
		k = min(m, n)
	}
	f, err := exact.TruncatedSVD(h, k)
	if err != nil {
		return err
	}
	sv := f.Values(nil)
	// Squared norms of scale·X, scale = 1/σ₁ (≥ 1/max|x_ij|): no overflow
	// or underflow whatever X's magnitude.
	scale := 1.0
	if sv[0] > 0 {
		scale = 1 / sv[0]
	}
	stored, _ := cpu.HostMatrix(h)
	total, _, err := cpu.Backend{}.SquaredNorm(stored, scale)
	if err != nil {
		return err
	}
	sq := make([]float64, len(sv))
	for j, v := range sv {
		sq[j] = (v * scale) * (v * scale)
	}
	if cfg.Rank.kind == rankTol {
		k = tolRank(sq, total, cfg.Rank.tol, cfg.Rank.rank(m, n))
		if k == 0 {
			s.tolMiss = true
			return w.keepDense(s, x, cfg)
		}
		if k*(m+n) >= m*n {
			return w.keepDense(s, x, cfg)
		}
		f.Truncate(k)
	}
	if s.want.k > 0 {
		s.gains = gains(sq[:s.want.width], total)
		k = s.want.k
		f.Truncate(k)
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
	if err := w.pack(&s.p, &us, false, cfg, "P"); err != nil {
		return err
	}
	if err := w.pack(&s.r, &v, true, cfg, "R"); err != nil {
		return err
	}
	s.rank = k
	s.relErr = lowrank.ErrorFromSquaredNorms(total, kept(sq, k))
	return w.finish(s, x, cfg)
}

// keepDense stores x as it is, at the storage precision.
func (w *worker) keepDense(s *Saved, x lowrank.Matrix, cfg *Config) error {
	h, err := hostMatrix(w.be, x, &w.buf)
	if err != nil {
		return err
	}
	if err := lowrank.CheckFinite(h); err != nil {
		return err
	}
	if err := s.p.packMatrix(h, cfg.Precision); err != nil {
		return err
	}
	s.r = packed{}
	s.rank = min(s.rows, s.cols)
	s.relErr = 0
	return w.finish(s, x, cfg)
}

// finish stores the residual if asked, sets s.bytes and, if asked,
// measures the error of the stored factors exactly.
func (w *worker) finish(s *Saved, x lowrank.Matrix, cfg *Config) error {
	if cfg.ResidualBits != 0 && !s.r.empty() {
		h, err := hostMatrix(w.be, x, &w.buf)
		if err != nil {
			return err
		}
		if s.relErr, err = s.storeResidual(h, cfg.ResidualBits, cfg.residualBlock()); err != nil {
			return fmt.Errorf("residual: %w", err)
		}
	}
	s.bytes = s.p.bytes() + s.r.bytes() + s.res.bytes()
	if !cfg.MeasureError {
		return nil
	}
	h, err := hostMatrix(w.be, x, &w.buf)
	if err != nil {
		return err
	}
	s.relErr = lowrank.RelError(h, stored{s})
	return nil
}

// stored presents a handle's storage as a lowrank.Approximation.
type stored struct{ s *Saved }

func (a stored) Dims() (m, n int) { return a.s.rows, a.s.cols }
func (a stored) Rank() int        { return a.s.rank }
func (a stored) ReconstructRows(dst *mat.Dense, i0, i1 int) {
	a.s.reconstructRows(dst, i0, i1)
}
