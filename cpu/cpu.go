// Package cpu is loract's host backend: a lowrank.Backend whose working
// matrices are gonum *mat.Dense (float64) and whose read-only inputs may
// also be *lowrank.Dense32 (float32 activations, read in place, converted
// a panel at a time inside the products: no float64 copy is made). Every
// product runs on the module's own GEMM (Go assembly micro-kernels,
// threaded over GOMAXPROCS; docs/gemm.md). The thin QR is CholeskyQR2 with
// a shifted third pass and a Householder fallback.
package cpu

import (
	"fmt"
	"math"
	"unsafe"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/vec"
	"github.com/loract/loract/lowrank"
)

// Backend is the host backend. The zero value is ready to use and safe for
// concurrent use (it holds no state but its option).
//
// A product with a float32 operand (a *lowrank.Dense32: an activation)
// and a float64 one computes in float32, as NumPy and PyTorch do for
// float32 data, at twice the speed of float64: the float64 operand is
// rounded to float32 (one rounding, u = 2⁻²⁴ relative, below the float32
// input's own), the product accumulates in float32 (internal/gemm.Sgemm:
// each element within γ_{k+2}·|op(a)|·|op(b)|), and it is widened into the
// float64 destination, where alpha and beta are applied. The algorithms'
// orthogonalisation stays in float64. Where the float32 product would
// overflow (a result element ±Inf or NaN from finite operands) it is
// recomputed in float64, and products whose alpha is not ±1 — the
// algorithms' operand scaling of inputs outside [2⁻¹⁶, 2¹⁶] — run in
// float64, where the scaled operands cannot underflow.
type Backend struct {
	// WideFloat32 computes every product in float64, float32 operands
	// widened exactly inside the packing (the accuracy of a float64 copy
	// of the input, at half the speed).
	WideFloat32 bool
}

var _ lowrank.Backend = Backend{}

// Name returns "cpu".
func (Backend) Name() string { return "cpu" }

// New returns a zeroed r×c *mat.Dense.
func (Backend) New(r, c int) (lowrank.Matrix, error) {
	if r <= 0 || c <= 0 {
		return nil, fmt.Errorf("%w: cannot allocate %d×%d", lowrank.ErrEmpty, r, c)
	}
	return mat.NewDense(r, c, nil), nil
}

// Free is a no-op: the garbage collector reclaims host matrices.
func (Backend) Free(lowrank.Matrix) {}

// Slice returns a view of rows [i0, i1) and columns [j0, j1) of m.
func (Backend) Slice(m lowrank.Matrix, i0, i1, j0, j1 int) lowrank.Matrix {
	r, c := m.Dims()
	if i0 < 0 || i1 < i0 || i1 > r || j0 < 0 || j1 < j0 || j1 > c {
		panic(lowrank.ErrShape)
	}
	switch m := m.(type) {
	case *mat.Dense:
		return m.Slice(i0, i1, j0, j1).(*mat.Dense)
	case *lowrank.Dense32:
		return m.Slice(i0, i1, j0, j1)
	}
	panic(badMatrix(m))
}

func badMatrix(m lowrank.Matrix) string {
	return fmt.Sprintf("cpu: the CPU backend cannot use a %T", m)
}

func dense(m lowrank.Matrix) blas64.General {
	d, ok := m.(*mat.Dense)
	if !ok {
		panic(badMatrix(m))
	}
	return d.RawMatrix()
}

// checkInput panics with an error wrapping lowrank.ErrShape for a
// *lowrank.Dense32 whose fields are inconsistent, so that a hand-built one
// never reaches an index out of range.
func checkInput(m lowrank.Matrix) {
	if d, ok := m.(*lowrank.Dense32); ok {
		if err := d.Check(); err != nil {
			panic(err)
		}
	}
}

// layout describes the elements of a host matrix: the address of element
// (0, 0), the element size, the stride in elements and the shape.
type layout struct {
	base       uintptr
	size       uintptr
	stride     int
	rows, cols int
}

func layoutOf(m lowrank.Matrix) (layout, bool) {
	switch m := m.(type) {
	case *mat.Dense:
		raw := m.RawMatrix()
		if raw.Rows == 0 || raw.Cols == 0 {
			return layout{}, false
		}
		return layout{uintptr(unsafe.Pointer(&raw.Data[0])), 8, raw.Stride, raw.Rows, raw.Cols}, true
	case *lowrank.Dense32:
		if m.Rows == 0 || m.Cols == 0 || len(m.Data) == 0 {
			return layout{}, false
		}
		return layout{uintptr(unsafe.Pointer(&m.Data[0])), 4, m.Stride, m.Rows, m.Cols}, true
	}
	return layout{}, false
}

// Overlaps reports whether the host matrices x and y (each a *mat.Dense or
// a *lowrank.Dense32; anything else never overlaps) share an element. Two
// views with the same element size and stride (blocks of one matrix)
// overlap only if their row and column ranges intersect; otherwise the
// address ranges are compared, conservatively.
func Overlaps(x, y lowrank.Matrix) bool {
	lx, okx := layoutOf(x)
	ly, oky := layoutOf(y)
	if !okx || !oky {
		return false
	}
	end := func(l layout) uintptr { return l.base + uintptr((l.rows-1)*l.stride+l.cols)*l.size }
	if lx.base >= end(ly) || ly.base >= end(lx) {
		return false
	}
	if lx.size != ly.size || lx.stride != ly.stride || lx.cols > lx.stride || ly.cols > ly.stride {
		return true
	}
	// Element offsets from the lower of the two bases, as (row, column)
	// of the common parent.
	lo := min(lx.base, ly.base)
	pos := func(l layout) (r, c int) {
		off := int((l.base - lo) / l.size)
		return off / l.stride, off % l.stride
	}
	xr, xc := pos(lx)
	yr, yc := pos(ly)
	return xr < yr+ly.rows && yr < xr+lx.rows && xc < yc+ly.cols && yc < xc+lx.cols
}

func opDims(m lowrank.Matrix, t bool) (r, c int) {
	r, c = m.Dims()
	if t {
		return c, r
	}
	return r, c
}

// Mul computes c = alpha·op(a)·op(b) + beta·c. a and b may be *mat.Dense
// or *lowrank.Dense32; c is a *mat.Dense. It panics with lowrank.ErrShape
// for mismatched shapes and with lowrank.ErrAlias if c's memory overlaps a's
// or b's (the address ranges intersect; BLAS forbids it too).
func (be Backend) Mul(c lowrank.Matrix, alpha float64, a lowrank.Matrix, ta bool, b lowrank.Matrix, tb bool, beta float64) error {
	checkInput(a)
	checkInput(b)
	if Overlaps(c, a) || Overlaps(c, b) {
		panic(lowrank.ErrAlias)
	}
	ar, ac := opDims(a, ta)
	br, bc := opDims(b, tb)
	cr, cc := c.Dims()
	if ac != br || ar != cr || bc != cc {
		panic(lowrank.ErrShape)
	}
	cg := dense(c)
	if !be.WideFloat32 && (alpha == 1 || alpha == -1) && gemm32(ta, tb, alpha, a, b, beta, cg) {
		return nil
	}
	gemmMixed(ta, tb, alpha, a, b, beta, cg)
	return nil
}

// Scale multiplies every element of the *mat.Dense m by alpha.
func (Backend) Scale(m lowrank.Matrix, alpha float64) error {
	d := dense(m)
	for i := 0; i < d.Rows; i++ {
		row := d.Data[i*d.Stride : i*d.Stride+d.Cols]
		for j := range row {
			row[j] *= alpha
		}
	}
	return nil
}

// Gather sets dst = op(a)[idx, :]ᵀ.
func (Backend) Gather(dst lowrank.Matrix, a lowrank.Matrix, t bool, idx []int) error {
	d, q := checkGather(dst, a, t, idx)
	if t {
		// Columns idx of a, gathered one row of a at a time: each row of a
		// is read once (measured at 8192×4096, ℓ = 128: 17 ms column by
		// column, which walks the whole matrix once per index).
		for r := 0; r < q; r++ {
			out := d.Data[r*d.Stride : r*d.Stride+len(idx)]
			switch a := a.(type) {
			case *mat.Dense:
				row := a.RawRowView(r)
				for j, i := range idx {
					out[j] = row[i]
				}
			case *lowrank.Dense32:
				row := a.Row(r)
				for j, i := range idx {
					out[j] = float64(row[i])
				}
			default:
				panic(badMatrix(a))
			}
		}
		return nil
	}
	for j, i := range idx {
		// row i of a, written down column j of dst.
		switch a := a.(type) {
		case *mat.Dense:
			for r, v := range a.RawRowView(i) {
				d.Data[r*d.Stride+j] = v
			}
		case *lowrank.Dense32:
			for r, v := range a.Row(i) {
				d.Data[r*d.Stride+j] = float64(v)
			}
		default:
			panic(badMatrix(a))
		}
	}
	return nil
}

// checkGather panics unless dst is the q×len(idx) destination of a gather
// of rows idx of op(a) (p×q), every index in [0, p); it returns dst's
// matrix and q.
func checkGather(dst, a lowrank.Matrix, t bool, idx []int) (blas64.General, int) {
	checkInput(a)
	d := dense(dst)
	p, q := opDims(a, t)
	if d.Rows != q || d.Cols != len(idx) {
		panic(lowrank.ErrShape)
	}
	for _, i := range idx {
		if i < 0 || i >= p {
			panic(fmt.Sprintf("lowrank: gather index %d out of range [0, %d)", i, p))
		}
	}
	return d, q
}

// Normal fills m with standard normals. The rows are cut into chunks of
// normalChunk elements whatever GOMAXPROCS is, filled on up to GOMAXPROCS
// goroutines, chunk c from its own PCG stream (normalStream): the result
// depends on seed and the shape alone, not on the number of cores.
func (Backend) Normal(m lowrank.Matrix, seed uint64) error {
	d := dense(m)
	per := max(1, normalChunk/max(d.Cols, 1))
	chunks := (d.Rows + per - 1) / per
	parallelChunks(chunks, func(c int) {
		s1, s2 := normalStream(seed, c)
		p := pcg{s1, s2}
		for i := c * per; i < min(d.Rows, (c+1)*per); i++ {
			p.fillNormal(d.Data[i*d.Stride : i*d.Stride+d.Cols])
		}
	})
	return nil
}

// normalChunk is the number of elements of one chunk of Normal: 16 Ki
// normals take about 0.15 ms, far above a goroutine's start.
const normalChunk = 1 << 14

// normalStream returns the seeds of the PCG stream of chunk c of
// Normal's seed: chunk 0 is the stream a single rand.NewPCG(seed, φ)
// gives (so an m of at most one chunk is filled as it always was), the
// others start from states mixed from (seed, c) by SplitMix64, unrelated
// to chunk 0's.
func normalStream(seed uint64, c int) (seed1, seed2 uint64) {
	const phi = 0x9e3779b97f4a7c15
	if c == 0 {
		return seed, phi
	}
	hi := splitMix64(seed ^ uint64(c)*phi)
	return hi, splitMix64(hi ^ uint64(c))
}

// splitMix64 is the output function of SplitMix64 (Steele, Lea and
// Flood 2014): a bijective mixing of x.
func splitMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// QR replaces a by the orthonormal factor of its thin QR and writes R into
// r if r is not nil. A p×l a with p·l² ≥ 2²² is factored by CholeskyQR2,
// with a shifted first pass (shifted CholeskyQR3) when a is ill
// conditioned, on internal/gemm; smaller ones, and any that CholeskyQR
// cannot finish (a zero, or with an exactly zero column), by Householder
// reflections. Both give orthonormal columns to working accuracy whatever
// the rank of a; see cholQR.
func (be Backend) QR(a, r lowrank.Matrix) error { return be.QRTol(a, r, 0) }

// QRTol is QR for a whose Q need only satisfy ‖QᵀQ − I‖_F ≤ tol + γ_p·l
// (γ_p = p·u/(1 − p·u), u = 2⁻⁵³, the rounding of the check's Gram
// matrix) instead of QR's O((p·l + l²)·u): CholeskyQR then stops before a
// pass that would only refine Q below tol, which for a well-conditioned a
// saves the second of its two passes. tol = 0 is QR; QRTol panics for a
// negative or NaN tol. With WideFloat32 QRTol is QR whatever tol: the
// tolerance is what the algorithms ask for the sketch of a float32 input
// whose products round Q to float32 (skeleton.SketchQR), and that option
// computes them in float64. It implements lowrank.TolerantQRer.
func (be Backend) QRTol(a, r lowrank.Matrix, tol float64) error {
	if !(tol >= 0) {
		panic(fmt.Sprintf("cpu: QRTol tolerance %v, want ≥ 0", tol))
	}
	if be.WideFloat32 {
		tol = 0
	}
	g := dense(a)
	if g.Rows < g.Cols {
		panic(lowrank.ErrShape)
	}
	l := g.Cols
	var rg blas64.General
	if r != nil {
		rg = dense(r)
		if rg.Rows != l || rg.Cols != l {
			panic(lowrank.ErrShape)
		}
	}
	if g.Rows*l*l >= cholQRMinWork {
		cholQR(g, rg, tol)
	} else {
		householderQR(g, rg, nil)
	}
	return nil
}

// LU replaces a by the unit lower trapezoidal L of a = P·L·U.
func (Backend) LU(a lowrank.Matrix) error {
	g := dense(a)
	p, l := g.Rows, g.Cols
	if p < l {
		panic(lowrank.ErrShape)
	}
	// A pivot at most u·max|a| is taken as zero: the directions it would
	// add to range(L) are below a's rounding. Dividing by it (gonum's
	// Getrf does, by a subnormal pivot of a rank-deficient sketch) gives
	// ±Inf and then NaN.
	var amax float64
	for i := 0; i < p; i++ {
		for _, v := range g.Data[i*g.Stride : i*g.Stride+l] {
			amax = math.Max(amax, math.Abs(v))
		}
	}
	tol := amax * 0x1p-53
	ipiv := make([]int, l)
	for j := 0; j < l; j++ {
		piv := j
		for i := j + 1; i < p; i++ {
			if math.Abs(g.Data[i*g.Stride+j]) > math.Abs(g.Data[piv*g.Stride+j]) {
				piv = i
			}
		}
		ipiv[j] = piv
		if piv != j {
			blas64.Swap(blas64.Vector{N: l, Inc: 1, Data: g.Data[j*g.Stride:]}, blas64.Vector{N: l, Inc: 1, Data: g.Data[piv*g.Stride:]})
		}
		pv := g.Data[j*g.Stride+j]
		if math.Abs(pv) <= tol {
			for i := j + 1; i < p; i++ {
				g.Data[i*g.Stride+j] = 0
			}
			continue
		}
		if j+1 == p {
			continue
		}
		col := blas64.Vector{N: p - j - 1, Inc: g.Stride, Data: g.Data[(j+1)*g.Stride+j:]}
		for i := 0; i < col.N; i++ { // divided, not scaled by 1/pv, which may overflow: each quotient is ≤ 1
			col.Data[i*col.Inc] /= pv
		}
		if j+1 < l {
			blas64.Ger(-1, col, blas64.Vector{N: l - j - 1, Inc: 1, Data: g.Data[j*g.Stride+j+1:]},
				blas64.General{Rows: p - j - 1, Cols: l - j - 1, Stride: g.Stride, Data: g.Data[(j+1)*g.Stride+j+1:]})
		}
	}
	// Keep L (unit lower trapezoidal), then undo the row interchanges on
	// it so that a's row order is kept: the normaliser only needs
	// range(P·L) = range(a) for full-rank a.
	for i := 0; i < p; i++ {
		row := g.Data[i*g.Stride : i*g.Stride+l]
		for j := range row {
			switch {
			case j == i:
				row[j] = 1
			case j > i:
				row[j] = 0
			}
		}
	}
	for i := l - 1; i >= 0; i-- {
		if p := ipiv[i]; p != i {
			blas64.Swap(blas64.Vector{N: l, Inc: 1, Data: g.Data[i*g.Stride:]},
				blas64.Vector{N: l, Inc: 1, Data: g.Data[p*g.Stride:]})
		}
	}
	return nil
}

// SVD computes a = u·diag(s)·vᵀ for a small square a with gonum's SVD.
func (Backend) SVD(u lowrank.Matrix, s []float64, v lowrank.Matrix, a lowrank.Matrix) error {
	ad, ok := a.(*mat.Dense)
	if !ok {
		panic(badMatrix(a))
	}
	l, lc := ad.Dims()
	if l != lc || len(s) != l {
		panic(lowrank.ErrShape)
	}
	var svd mat.SVD
	if !svd.Factorize(ad, mat.SVDFull) {
		return fmt.Errorf("%w: SVD of a %d×%d matrix", lowrank.ErrNoConvergence, l, l)
	}
	svd.Values(s)
	svd.UTo(u.(*mat.Dense))
	svd.VTo(v.(*mat.Dense))
	return nil
}

// SquaredRowNorms writes the squared norms of the rows of scale·op(a) into
// dst.
func (Backend) SquaredRowNorms(dst []float64, a lowrank.Matrix, t bool, scale float64) error {
	checkInput(a)
	p, q := opDims(a, t)
	if len(dst) != p {
		panic(lowrank.ErrShape)
	}
	if !t {
		for i := range dst {
			switch a := a.(type) {
			case *mat.Dense:
				dst[i], _ = vec.ScaledSumSq64(a.RawRowView(i), scale)
			case *lowrank.Dense32:
				dst[i], _ = vec.ScaledSumSq32(a.Row(i), scale)
			default:
				panic(badMatrix(a))
			}
		}
		return nil
	}
	clear(dst)
	for r := 0; r < q; r++ {
		switch a := a.(type) {
		case *mat.Dense:
			for j, v := range a.RawRowView(r) {
				v *= scale
				dst[j] += v * v
			}
		case *lowrank.Dense32:
			for j, v := range a.Row(r) {
				x := float64(v) * scale
				dst[j] += x * x
			}
		default:
			panic(badMatrix(a))
		}
	}
	return nil
}

// SquaredNorm returns Σ (scale·m_ij)² and max |m_ij| in one read of m.
func (Backend) SquaredNorm(m lowrank.Matrix, scale float64) (sumSq, maxAbs float64, err error) {
	checkInput(m)
	switch m := m.(type) {
	case *mat.Dense:
		raw := m.RawMatrix()
		sumSq, maxAbs = rowSums(raw.Rows, raw.Cols, func(i int) (float64, float64) {
			return vec.ScaledSumSq64(raw.Data[i*raw.Stride:i*raw.Stride+raw.Cols], scale)
		})
	case *lowrank.Dense32:
		sumSq, maxAbs = rowSums(m.Rows, m.Cols, func(i int) (float64, float64) {
			return vec.ScaledSumSq32(m.Row(i), scale)
		})
	default:
		panic(badMatrix(m))
	}
	return sumSq, maxAbs, nil
}

// GatherNorm is Gather and SquaredNorm(a, 1) in one read of a
// (lowrank.GatherNormer): for trans, the columns idx of a are taken from
// each row of a as the row's sum of squares is formed, in SquaredNorm's
// order, so both results equal those of the two calls bit for bit. Without
// trans the sampled rows are a small part of a and the two run one after
// the other. Both read the rows of a on up to GOMAXPROCS goroutines
// (rowSums: the same result on any number of cores).
func (be Backend) GatherNorm(dst lowrank.Matrix, a lowrank.Matrix, trans bool, idx []int) (sumSq, maxAbs float64, err error) {
	if !trans {
		if err := be.Gather(dst, a, trans, idx); err != nil {
			return 0, 0, err
		}
		return be.SquaredNorm(a, 1)
	}
	d, q := checkGather(dst, a, trans, idx)
	var row func(r int) (float64, float64)
	switch a := a.(type) {
	case *mat.Dense:
		row = func(r int) (float64, float64) {
			out, in := d.Data[r*d.Stride:r*d.Stride+len(idx)], a.RawRowView(r)
			s, mx := vec.ScaledSumSq64(in, 1) // a sequential read first: the gather then hits the cache
			for j, i := range idx {
				out[j] = in[i]
			}
			return s, mx
		}
	case *lowrank.Dense32:
		row = func(r int) (float64, float64) {
			out, in := d.Data[r*d.Stride:r*d.Stride+len(idx)], a.Row(r)
			s, mx := vec.ScaledSumSq32(in, 1) // a sequential read first: the gather then hits the cache
			for j, i := range idx {
				out[j] = float64(in[i])
			}
			return s, mx
		}
	default:
		panic(badMatrix(a))
	}
	_, c := a.Dims()
	sumSq, maxAbs = rowSums(q, c, row)
	return sumSq, maxAbs, nil
}

var _ lowrank.GatherNormer = Backend{}

// FindNonFinite returns the first NaN or ±Inf element of m.
func (Backend) FindNonFinite(m lowrank.Matrix) (i, j int, v float64, found bool, err error) {
	checkInput(m)
	mm, ok := m.(mat.Matrix)
	if !ok {
		panic(badMatrix(m))
	}
	e := lowrank.CheckFinite(mm)
	if nf, ok := e.(*lowrank.NotFiniteError); ok {
		return nf.Row, nf.Col, nf.Value, true, nil
	}
	return 0, 0, math.NaN(), false, nil
}

// Copy copies src into dst.
func (Backend) Copy(dst, src lowrank.Matrix) error {
	d := dst.(*mat.Dense)
	dr, dc := d.Dims()
	sr, sc := src.Dims()
	if dr != sr || dc != sc {
		panic(lowrank.ErrShape)
	}
	d.Copy(src.(mat.Matrix))
	return nil
}

// Download copies m into dst.
func (Backend) Download(dst *mat.Dense, m lowrank.Matrix) error {
	r, c := m.Dims()
	if dst.IsEmpty() {
		dst.ReuseAs(r, c)
	} else if dr, dc := dst.Dims(); dr != r || dc != c {
		panic(lowrank.ErrShape)
	}
	dst.Copy(m.(mat.Matrix))
	return nil
}

// Upload copies src into m.
func (Backend) Upload(m lowrank.Matrix, src mat.Matrix) error {
	return Backend{}.Copy(m, src.(lowrank.Matrix))
}
