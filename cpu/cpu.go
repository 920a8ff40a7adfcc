package cpu

import (
	"github.com/loract/loract/internal/vec"
	"github.com/loract/loract/lowrank"

	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// CPU is the host backend. Its working matrices are *mat.Dense (float64);
// *lowrank.Dense32 float32 inputs are read in place, converted a panel at a time
// inside the products, so no float64 copy of a float32 input is made. The
// zero value is ready to use and safe for concurrent use.
type Backend struct{}

var _ Backend = Backend{}

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

// Cols returns a view of columns [j0, j1) of m.
func (Backend) Cols(m lowrank.Matrix, j0, j1 int) lowrank.Matrix {
	switch m := m.(type) {
	case *mat.Dense:
		r, _ := m.Dims()
		return m.Slice(0, r, j0, j1).(*mat.Dense)
	case *lowrank.Dense32:
		return m.Slice(0, m.Rows, j0, j1)
	}
	panic(badMatrix(m))
}

func badMatrix(m lowrank.Matrix) string {
	return fmt.Sprintf("lowrank: CPU backend cannot use a %T", m)
}

func dense(m lowrank.Matrix) blas64.General {
	d, ok := m.(*mat.Dense)
	if !ok {
		panic(badMatrix(m))
	}
	return d.RawMatrix()
}

func opDims(m lowrank.Matrix, t bool) (r, c int) {
	r, c = m.Dims()
	if t {
		return c, r
	}
	return r, c
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// Mul computes c = alpha·op(a)·op(b) + beta·c. At most one of a and b may
// be a *lowrank.Dense32.
func (Backend) Mul(c lowrank.Matrix, alpha float64, a lowrank.Matrix, ta bool, b lowrank.Matrix, tb bool, beta float64) error {
	ar, ac := opDims(a, ta)
	br, bc := opDims(b, tb)
	cr, cc := c.Dims()
	if ac != br || ar != cr || bc != cc {
		panic(lowrank.ErrShape)
	}
	cg := dense(c)
	gemmMixed(ta, tb, alpha, a, b, beta, cg)
	return nil
}

// Gather sets dst = op(a)[idx, :]ᵀ.
func (Backend) Gather(dst lowrank.Matrix, a lowrank.Matrix, t bool, idx []int) error {
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

// Normal fills m with standard normals from a PCG stream seeded by seed.
func (Backend) Normal(m lowrank.Matrix, seed uint64) error {
	d := dense(m)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for i := 0; i < d.Rows; i++ {
		row := d.Data[i*d.Stride : i*d.Stride+d.Cols]
		for j := range row {
			row[j] = rng.NormFloat64()
		}
	}
	return nil
}

// QR replaces a by the orthonormal factor of its thin QR and writes R into
// r if r is not nil. A p×l a with p·l² ≥ 2²² is factored by CholeskyQR2,
// with a shifted first pass (shifted CholeskyQR3) when a is ill
// conditioned, on internal/gemm; smaller ones, and any that CholeskyQR
// cannot finish (a zero, or with an exactly zero column), by Householder
// reflections. Both give orthonormal columns to working accuracy whatever
// the rank of a; see cholQR.
func (Backend) QR(a, r lowrank.Matrix) error {
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
		cholQR(g, rg)
	} else {
		householderQR(g, rg, nil)
	}
	return nil
}

// LU replaces a by the unit lower trapezoidal L of a = P·L·U.
func (Backend) LU(a lowrank.Matrix) error {
	g := dense(a)
	if g.Rows < g.Cols {
		panic(lowrank.ErrShape)
	}
	ipiv := make([]int, g.Cols)
	lapack64.Getrf(g, ipiv)
	// Undo the row interchanges on L so that a's row order is kept: the
	// normaliser only needs range(P·L) = range(a) for full-rank a.
	for i := 0; i < g.Rows; i++ {
		row := g.Data[i*g.Stride : i*g.Stride+g.Cols]
		for j := range row {
			switch {
			case j == i:
				row[j] = 1
			case j > i:
				row[j] = 0
			}
		}
	}
	for i := g.Cols - 1; i >= 0; i-- {
		if p := ipiv[i]; p != i {
			blas64.Swap(blas64.Vector{N: g.Cols, Inc: 1, Data: g.Data[i*g.Stride:]},
				blas64.Vector{N: g.Cols, Inc: 1, Data: g.Data[p*g.Stride:]})
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

// RowNorms2 writes the squared norms of the rows of op(a) into dst.
func (Backend) RowNorms2(dst []float64, a lowrank.Matrix, t bool) error {
	p, q := opDims(a, t)
	if len(dst) != p {
		panic(lowrank.ErrShape)
	}
	if !t {
		for i := range dst {
			switch a := a.(type) {
			case *mat.Dense:
				dst[i] = vec.SumSq64(a.RawRowView(i))
			case *lowrank.Dense32:
				dst[i] = vec.SumSq32(a.Row(i))
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
				dst[j] += v * v
			}
		case *lowrank.Dense32:
			for j, v := range a.Row(r) {
				dst[j] += float64(v) * float64(v)
			}
		default:
			panic(badMatrix(a))
		}
	}
	return nil
}

// Norm2 returns ‖m‖_F².
func (Backend) Norm2(m lowrank.Matrix) (float64, error) {
	switch m := m.(type) {
	case *mat.Dense:
		return lowrank.FrobNorm2(m), nil
	case *lowrank.Dense32:
		return lowrank.FrobNorm2(m), nil
	}
	panic(badMatrix(m))
}

// FindNonFinite returns the first NaN or ±Inf element of m.
func (Backend) FindNonFinite(m lowrank.Matrix) (i, j int, v float64, found bool, err error) {
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
