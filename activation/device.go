package activation

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// The device path: with a *gpu.Backend the factors P and R stay in device
// memory at the storage precision (bf16 or float32 matrices from the
// backend's memory pool), and every backward product runs on the device
// into device destinations. No activation or factor data crosses to the
// host; what does is a few scalars per compression (the norm and largest
// element read for the input check, the QR's status words) and the ℓ
// sampled row indices, drawn on the host and uploaded (8ℓ bytes).

// deviceStore is a saved activation's device storage: X ≈ P·R, or X itself
// in p when r is nil.
type deviceStore struct {
	b    *gpu.Backend
	p, r *gpu.Matrix
}

func (d *deviceStore) bytes() int {
	n := 0
	for _, m := range []*gpu.Matrix{d.p, d.r} {
		if m != nil {
			r, c := m.Dims()
			n += r * c * m.DType().Size()
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
	*d = deviceStore{b: d.b}
}

// view returns m, or its transpose view if t.
func view(m lowrank.Matrix, t bool) *gpu.Matrix {
	g := m.(*gpu.Matrix)
	if t {
		return g.T()
	}
	return g
}

// store copies op(m) into new storage of precision prec on be.
func store(be *gpu.Backend, m *gpu.Matrix, prec lowrank.Precision) (*gpu.Matrix, error) {
	r, c := m.Dims()
	st, err := be.NewStorage(r, c, prec)
	if err != nil {
		return nil, err
	}
	if err := be.Copy(st, m); err != nil {
		be.Free(st)
		return nil, err
	}
	return st.(*gpu.Matrix), nil
}

// compressDevice is worker.compress for a device backend.
func (w *worker) compressDevice(s *Saved, x lowrank.Matrix, cfg *Config, seed uint64, be *gpu.Backend) error {
	xm, ok := x.(*gpu.Matrix)
	if !ok {
		return fmt.Errorf("%w: a %s backend takes *gpu.Matrix activations, have %T", lowrank.ErrShape, be.Name(), x)
	}
	// The storage is freed through the caller's backend, ordered after
	// the backward products queued on its stream.
	s.dev = &deviceStore{b: s.c.deviceBackend()}
	m, n := s.rows, s.cols
	k, over := cfg.Rank.rank(m, n), cfg.Oversample
	if s.want.k > 0 { // a Budget policy: the rank reserved, a wider sketch
		k, over = s.want.k, max(over, s.want.width-s.want.k)
	}
	if cfg.Method == Uncompressed || s.want.dense || (cfg.Rank.kind != rankTol && k*(m+n) >= m*n) {
		return w.keepDenseDevice(s, xm, cfg, be)
	}
	if cfg.Method == ExactSVD {
		return w.exactDevice(s, xm, k, cfg, be)
	}
	var tol float64
	if cfg.Rank.kind == rankTol {
		tol = cfg.Rank.tol
	}
	spec := s.want.k > 0
	var err error
	switch cfg.Method {
	case RowSampling:
		err = w.rows.QBTo(&w.f, xm, k, &sampling.Options{Oversample: over, PowerIters: cfg.PowerIters, Seed: seed, Tolerance: tol, Spectrum: spec})
	case Gaussian:
		err = w.gauss.QBTo(&w.f, xm, k, &rsvd.Options{Oversample: over, PowerIters: cfg.PowerIters, Seed: seed, Tolerance: tol, Spectrum: spec})
	}
	if errors.Is(err, lowrank.ErrTolerance) {
		s.tolMiss = true
		return w.keepDenseDevice(s, xm, cfg, be)
	}
	if err != nil {
		return err
	}
	if kk := w.f.Rank(); cfg.Rank.kind == rankTol && kk*(m+n) >= m*n {
		return w.keepDenseDevice(s, xm, cfg, be)
	}
	if spec {
		s.gains = gains(w.f.Spectrum, w.f.SquaredNormA)
	}
	ds := s.dev
	l, tl := w.f.Left()
	r, tr := w.f.Right()
	if ds.p, err = store(be, view(l, tl), cfg.Precision); err != nil {
		return err
	}
	if ds.r, err = store(be, view(r, tr), cfg.Precision); err != nil {
		return err
	}
	if w.f.NormScale < 1 { // an input of large magnitude: the factors may exceed the storage's range
		if err := checkStored(be, ds.p, ds.r); err != nil {
			return err
		}
	}
	s.rank = w.f.Rank()
	s.relErr = w.f.RelError()
	return w.finishDevice(s, xm, cfg, be)
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
	if ds.p, err = store(be, x, cfg.Precision); err != nil {
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
	var total float64
	for _, x := range sv {
		total += (x / sv[0]) * (x / sv[0])
	}
	kept := func(k int) (t float64) {
		for _, x := range sv[:k] {
			t += (x / sv[0]) * (x / sv[0])
		}
		return t
	}
	if cfg.Rank.kind == rankTol {
		kmax := cfg.Rank.rank(m, n)
		k = 0
		for i := 1; i <= kmax; i++ {
			if total-kept(i) <= cfg.Rank.tol*cfg.Rank.tol*total {
				k = i
				break
			}
		}
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
			spec := make([]float64, s.want.width)
			for j := range spec {
				if sv[0] > 0 {
					spec[j] = (sv[j] / sv[0]) * (sv[j] / sv[0])
				}
			}
			s.gains = gains(spec, total)
			k = s.want.k
		}
		// total of a rank-k ExactSVD holds only k values: the error needs
		// ‖X‖², read from the device.
		sq, _, err := be.SquaredNorm(x, 1/sv[0])
		if err != nil {
			return err
		}
		total = sq
	}
	ds := s.dev
	uk := be.Slice(u, 0, m, 0, k).(*gpu.Matrix)
	if ds.p, err = store(be, uk, cfg.Precision); err != nil {
		return err
	}
	// R = diag(S_k)·V_kᵀ, the diagonal uploaded (k² floats: the exact
	// path is a reference, not the steady state).
	dg, err := be.NewMatrix(k, k, gpu.Float32)
	if err != nil {
		return err
	}
	defer be.Free(dg)
	if err := be.Upload(dg, mat.NewDiagDense(k, sv[:k])); err != nil {
		return err
	}
	rs, err := be.NewStorage(k, n, cfg.Precision)
	if err != nil {
		return err
	}
	ds.r = rs.(*gpu.Matrix)
	vk := be.Slice(v, 0, n, 0, k)
	if err := be.Mul(ds.r, 1, dg, false, vk, true, 0); err != nil {
		return err
	}
	s.rank = k
	s.relErr = lowrank.ErrorFromSquaredNorms(total, kept(k))
	return w.finishDevice(s, x, cfg, be)
}

// finishDevice sets s.bytes and, if asked, measures the error of the
// stored factors on the device: ‖P·R − X‖_F/‖X‖_F with the difference
// formed in a float32 scratch matrix.
func (w *worker) finishDevice(s *Saved, x *gpu.Matrix, cfg *Config, be *gpu.Backend) error {
	ds := s.dev
	s.bytes = ds.bytes()
	if !cfg.MeasureError || ds.r == nil {
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
	if err := be.Mul(d, 1, ds.p, false, ds.r, false, -1); err != nil { // P·R − X
		return err
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
	if ds.r == nil {
		if d.RowMajorLayout() {
			return be.Copy(d.T(), ds.p.T())
		}
		return be.Copy(d, ds.p)
	}
	return be.Mul(d, 1, ds.p, false, ds.r, false, 0)
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
	if ds.r == nil {
		if outIn {
			return be.Mul(d, 1, gm, true, ds.p, false, 0)
		}
		return be.Mul(d, 1, ds.p, true, gm, false, 0)
	}
	k := s.rank
	tdt := ds.p.DType()
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
		if err := be.Mul(t, 1, gm, true, ds.p, false, 0); err != nil {
			return err
		}
		return be.Mul(d, 1, t, false, ds.r, false, 0)
	}
	// Rᵀ·(Pᵀ·G)
	if err := be.Mul(t, 1, ds.p, true, gm, false, 0); err != nil {
		return err
	}
	return be.Mul(d, 1, ds.r, true, t, false, 0)
}
