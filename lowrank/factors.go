package lowrank

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Approximation is a low-rank approximation of an m×n matrix that can
// reconstruct any block of its rows. QB and SVD implement it.
type Approximation interface {
	// Dims returns the shape m×n of the approximated matrix.
	Dims() (m, n int)
	// Rank returns the number of terms k.
	Rank() int
	// ReconstructRows writes rows [i0, i1) of the approximation into dst,
	// which must be (i1−i0)×n or empty.
	ReconstructRows(dst *mat.Dense, i0, i1 int)
}

// QB is a rank-k approximation A ≈ L·R of an m×n matrix A, L m×k and
// R k×n, in which one factor is orthonormal: if LeftOrthonormal reports
// true, L = Q has orthonormal columns and R = QᵀA; otherwise R = Qᵀ has
// orthonormal rows and L = A·Q. Left and Right are the factors to multiply
// whatever the orientation; Q is the orthonormal one. The zero value is an
// empty QB.
type QB struct {
	// op(A) ≈ q·b with op(A) = Aᵀ if trans: q is p×k orthonormal, b k×s.
	q, b  mat.Dense
	trans bool
}

// NewQB returns the QB of op(A) ≈ q·b, taking ownership of q (p×k, with
// orthonormal columns) and b (k×s) without copying: if trans is false it
// approximates the p×s matrix A ≈ q·b, else the s×p matrix A ≈ (q·b)ᵀ =
// bᵀ·qᵀ. It panics with ErrShape if the inner dimensions differ.
func NewQB(q, b *mat.Dense, trans bool) *QB {
	_, kq := q.Dims()
	kb, _ := b.Dims()
	if kq != kb {
		panic(ErrShape)
	}
	f := &QB{trans: trans}
	f.q = *q
	f.b = *b
	return f
}

// Dims returns the shape of the approximated matrix A.
func (f *QB) Dims() (m, n int) {
	p, _ := f.q.Dims()
	_, s := f.b.Dims()
	if f.trans {
		return s, p
	}
	return p, s
}

// Rank returns k.
func (f *QB) Rank() int { _, k := f.q.Dims(); return k }

// LeftOrthonormal reports whether the left factor L (m×k) has orthonormal
// columns; otherwise the right factor R (k×n) has orthonormal rows.
func (f *QB) LeftOrthonormal() bool { return !f.trans }

// Left returns a read-only view of L (m×k); A ≈ Left·Right. The caller
// must not modify it.
func (f *QB) Left() mat.Matrix {
	if f.trans {
		return f.b.T()
	}
	return &f.q
}

// Right returns a read-only view of R (k×n); see Left.
func (f *QB) Right() mat.Matrix {
	if f.trans {
		return f.q.T()
	}
	return &f.b
}

// LeftTo copies L (m×k) into dst. A zero dst is resized; otherwise it must
// be m×k or LeftTo panics with ErrShape.
func (f *QB) LeftTo(dst *mat.Dense) { copyTo(dst, f.Left()) }

// RightTo copies R (k×n) into dst, as LeftTo does.
func (f *QB) RightTo(dst *mat.Dense) { copyTo(dst, f.Right()) }

// Q returns a read-only view of the orthonormal factor as a matrix with k
// orthonormal columns: L (m×k) if LeftOrthonormal, else Rᵀ (n×k).
func (f *QB) Q() mat.Matrix { return &f.q }

// SquaredNormB returns ‖B‖_F², B = QᵀA the factor that is not
// orthonormal. Since Q is orthonormal, ‖A − QB‖_F² = ‖A‖_F² − ‖B‖_F² (see
// ErrorFromSquaredNorms).
func (f *QB) SquaredNormB() float64 { return SquaredFrobenius(&f.b) }

// Bytes returns the storage of the factors at precision p: k·(m+n)·p.Size().
func (f *QB) Bytes(p Precision) int {
	m, n := f.Dims()
	return f.Rank() * (m + n) * p.Size()
}

// Reconstruct writes the m×n approximation L·R into dst, which must be
// m×n or empty. Cost 2·m·n·k flops.
func (f *QB) Reconstruct(dst *mat.Dense) {
	m, _ := f.Dims()
	f.ReconstructRows(dst, 0, m)
}

// ReconstructRows writes rows [i0, i1) of L·R into dst, which must be
// (i1−i0)×n or empty.
func (f *QB) ReconstructRows(dst *mat.Dense, i0, i1 int) {
	_, n := f.Dims()
	prepare(dst, i1-i0, n)
	if i1 == i0 || f.Rank() == 0 {
		dst.Zero()
		return
	}
	if !f.trans {
		// rows of Q·B are rows of Q times B.
		dst.Mul(f.q.Slice(i0, i1, 0, f.Rank()), &f.b)
		return
	}
	// A = Bᵀ·Qᵀ: rows i0..i1 of A are (columns i0..i1 of B)ᵀ·Qᵀ.
	k := f.Rank()
	dst.Mul(f.b.Slice(0, k, i0, i1).T(), f.q.T())
}

// SVD is a rank-k approximation A ≈ U·diag(S)·Vᵀ of an m×n matrix A with U
// (m×k) and V (n×k) orthonormal and S non-increasing. The zero value is an
// empty SVD.
type SVD struct {
	u, v mat.Dense
	s    []float64
}

// NewSVD returns an SVD holding u (m×k), s (len k) and v (n×k), taking
// ownership (no copy). It panics with ErrShape on inconsistent shapes.
func NewSVD(u *mat.Dense, s []float64, v *mat.Dense) *SVD {
	_, ku := u.Dims()
	_, kv := v.Dims()
	if ku != len(s) || kv != len(s) {
		panic(ErrShape)
	}
	f := &SVD{s: s}
	f.u = *u
	f.v = *v
	return f
}

// Dims returns the shape of the approximated matrix.
func (f *SVD) Dims() (m, n int) {
	m, _ = f.u.Dims()
	n, _ = f.v.Dims()
	return m, n
}

// Rank returns k.
func (f *SVD) Rank() int { return len(f.s) }

// Values copies the singular values into dst and returns it; a nil or
// short dst is replaced by a new slice.
func (f *SVD) Values(dst []float64) []float64 {
	if cap(dst) < len(f.s) {
		dst = make([]float64, len(f.s))
	}
	dst = dst[:len(f.s)]
	copy(dst, f.s)
	return dst
}

// UTo copies U (m×k) into dst. A zero dst is resized; otherwise it must
// be m×k or UTo panics with ErrShape.
func (f *SVD) UTo(dst *mat.Dense) { copyTo(dst, &f.u) }

// VTo copies V (n×k) into dst, as UTo does.
func (f *SVD) VTo(dst *mat.Dense) { copyTo(dst, &f.v) }

// UView and VView return read-only views of U and V without copying.
func (f *SVD) UView() mat.Matrix { return &f.u }

// VView returns a read-only view of V; see UView.
func (f *SVD) VView() mat.Matrix { return &f.v }

// Truncate keeps the first k terms. It panics with ErrShape unless
// 0 ≤ k ≤ Rank().
func (f *SVD) Truncate(k int) {
	if k < 0 || k > len(f.s) {
		panic(ErrShape)
	}
	if k == len(f.s) {
		return
	}
	m, n := f.Dims()
	var u, v mat.Dense
	if k > 0 {
		u.CloneFrom(f.u.Slice(0, m, 0, k))
		v.CloneFrom(f.v.Slice(0, n, 0, k))
	}
	f.u, f.v, f.s = u, v, f.s[:k:k]
}

// Bytes returns the storage of U, S and V at precision p: (k·(m+n)+k)·p.Size().
func (f *SVD) Bytes(p Precision) int {
	m, n := f.Dims()
	return f.Rank() * (m + n + 1) * p.Size()
}

// Reconstruct writes the m×n approximation into dst, which must be m×n or
// empty.
func (f *SVD) Reconstruct(dst *mat.Dense) {
	m, _ := f.Dims()
	f.ReconstructRows(dst, 0, m)
}

// ReconstructRows writes rows [i0, i1) of U·diag(S)·Vᵀ into dst.
func (f *SVD) ReconstructRows(dst *mat.Dense, i0, i1 int) {
	_, n := f.Dims()
	prepare(dst, i1-i0, n)
	k := len(f.s)
	if i1 == i0 || k == 0 {
		dst.Zero()
		return
	}
	us := mat.NewDense(i1-i0, k, nil)
	us.Copy(f.u.Slice(i0, i1, 0, k))
	raw := us.RawMatrix()
	for i := 0; i < raw.Rows; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+k]
		for j, s := range f.s {
			row[j] *= s
		}
	}
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, raw, f.v.RawMatrix(), 0, dst.RawMatrix())
}

func prepare(dst *mat.Dense, r, c int) {
	if dst.IsEmpty() {
		if r == 0 || c == 0 {
			return
		}
		dst.ReuseAs(r, c)
		return
	}
	dr, dc := dst.Dims()
	if dr != r || dc != c {
		panic(ErrShape)
	}
}

func copyTo(dst *mat.Dense, src mat.Matrix) {
	r, c := src.Dims()
	if r == 0 || c == 0 {
		if !dst.IsEmpty() {
			panic(ErrShape)
		}
		return
	}
	prepare(dst, r, c)
	dst.Copy(src)
}
