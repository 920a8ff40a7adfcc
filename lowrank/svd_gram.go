package lowrank

import (
	"math"
	"runtime"
	"sort"
	"sync"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"
)

// svdTall computes the thin SVD a = U·diag(s)·Vᵀ of the m×n row-major a
// with m ≥ n ≥ 1; a is not modified. U (m×n) and V (n×n) are returned
// row-major and contiguous, s is non-increasing. It reports false if the
// eigenvalue iteration failed.
//
// The method is a Gram-preconditioned one-sided Jacobi SVD (Drmač–Veselić
// style), arranged so that all O(m·n²) work is GEMM:
//
//  1. G = aᵀa and its eigen-decomposition G = V̂·Λ·V̂ᵀ (eigSym);
//  2. W = a·V̂: its columns are orthogonal up to rounding in G, i.e.
//     |w_iᵀw_j| ≲ ε·σ₁², and ‖w_j‖ = σ_j to within an absolute O(ε·σ₁)
//     even where the eigenvalue λ_j = σ_j² is swamped by the error of G;
//  3. one-sided Jacobi on W, done on its Gram matrix C = WᵀW: cyclic
//     two-sided Jacobi on C computes the rotations, which are then applied
//     to the rows of W and V̂; C is recomputed from the rotated W and the
//     sweep repeated until no pair of columns has a cosine above jacobiTol.
//     C is recomputed from W each round, so the test is on the actual
//     columns; the cosine of two columns computed from C has an error of
//     at most γ_m relative to their norms (componentwise error of a dot
//     product), whatever their size, which is what keeps small singular
//     values and their singular vectors accurate;
//  4. σ_j = ‖w_j‖, u_j = w_j/σ_j, V = V̂·J.
//
// For a matrix whose singular values lie within a few orders of σ₁ (the
// common case) step 2 already leaves every cosine below jacobiTol and step 3
// costs a single Gram product. Cost: ≈ m·n²·(1.25 + 2 + 1.25) flops of
// GEMM, plus the O(n³) eigensolver.
func svdTall(a blas64.General) (u, v blas64.General, s []float64, ok bool) {
	m, n := a.Rows, a.Cols
	tr := startTrace()
	g := make([]float64, n*n)
	gramTo(blas64.General{Rows: n, Cols: n, Stride: n, Data: g}, a)
	tr.mark("gram AᵀA")
	lam := make([]float64, n)
	vd := make([]float64, n*n)
	if !eigSym(n, g, lam, vd) {
		return u, v, nil, false
	}
	v = blas64.General{Rows: n, Cols: n, Stride: n, Data: vd}
	w := blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
	tr.mark("eigensolver")
	svdGemm(false, false, 1, a, v, 0, w)
	tr.mark("W = A·V̂")

	c := blas64.General{Rows: n, Cols: n, Stride: n, Data: g} // reuse g's storage
	tol := jacobiTol(m)
	var rots []rotation
	for round := 0; ; round++ {
		gramTo(c, w)
		tr.mark("gram WᵀW")
		rots = jacobiGram(n, c.Data, tol, rots[:0])
		tr.mark("jacobi on C")
		if len(rots) == 0 {
			break
		}
		if round == maxJacobiRounds {
			return u, v, nil, false
		}
		applyRotations(w, v, rots)
		tr.mark("apply rotations")
	}

	// σ_j = ‖w_j‖ from the diagonal of the last C, sorted non-increasing.
	s = make([]float64, n)
	perm := make([]int, n)
	for j := range n {
		s[j] = math.Sqrt(c.Data[j*n+j])
		perm[j] = j
	}
	sort.SliceStable(perm, func(x, y int) bool { return s[perm[x]] > s[perm[y]] })
	sorted := make([]float64, n)
	good := 0
	for jj, j := range perm {
		sorted[jj] = s[j]
		if s[j] >= minNormalizable {
			good = jj + 1
		}
	}
	inv := make([]float64, n)
	for jj, j := range perm[:good] {
		inv[jj] = 1 / s[j]
	}
	// U overwrites W and V is permuted in place, a row at a time.
	u = w
	permuteScaleRows(u, perm, inv)
	for jj := range inv {
		inv[jj] = 1
	}
	permuteScaleRows(v, perm, inv)
	if good < n {
		completeBasis(u, good)
	}
	tr.mark("normalize, sort, complete")
	return u, v, sorted, true
}

// permuteScaleRows sets x[i, jj] = x[i, perm[jj]]·scale[jj] for every row i
// (scale 0 clears the column), rows split over the cores.
func permuteScaleRows(x blas64.General, perm []int, scale []float64) {
	n := x.Cols
	parallelRows(x.Rows, x.Rows*n, func(i0, i1 int) {
		tmp := make([]float64, n)
		for i := i0; i < i1; i++ {
			row := x.Data[i*x.Stride : i*x.Stride+n]
			copy(tmp, row)
			for jj, j := range perm {
				row[jj] = tmp[j] * scale[jj]
			}
		}
	})
}

// minNormalizable is the smallest column norm of W that is divided into it
// to form a left singular vector. a is scaled to max|a_ij| ∈ [1, 2) before
// the SVD, so a column this short is far below the rounding noise
// ε·σ₁ ≥ 2⁻⁵³ of its singular value; its left singular vector is any unit
// vector orthogonal to the others (completeBasis), which changes the
// reconstruction by at most this norm.
const minNormalizable = 0x1p-600

// maxJacobiRounds bounds the Gram–Jacobi rounds. Each round is a full set of
// Jacobi sweeps on C, after which the columns are orthogonal to rounding;
// measured: 0 rounds for well-conditioned matrices, 1–2 for graded spectra
// down to 10⁻¹⁴ and rank-deficient ones.
const maxJacobiRounds = 12

// jacobiTol returns the cosine below which two columns of length m count as
// orthogonal: √m·ε, the convergence threshold of LAPACK's one-sided Jacobi
// xGESVJ (the statistical size of the rounding error of a length-m dot
// product relative to the norms). It is ≤ 1e-13 for m ≤ 2·10⁵, so U meets
// ‖UᵀU − I‖_max ≤ 1e-12 with room for the rounding of u_j = w_j/σ_j.
func jacobiTol(m int) float64 {
	return math.Sqrt(float64(m)) * 0x1p-52
}

// rotation is a plane rotation of columns p and q:
// (x_p, x_q) ← (c·x_p − s·x_q, s·x_p + c·x_q).
type rotation struct {
	p, q int
	c, s float64
}

// maxJacobiSweeps bounds the cyclic sweeps of jacobiGram; quadratic
// convergence makes more than ~10 a sign of a threshold below the rounding
// level, which jacobiTol avoids.
const maxJacobiSweeps = 30

// jacobiGram diagonalizes the symmetric positive semidefinite n×n c
// (row-major, both triangles) by cyclic Jacobi rotations c ← JᵀcJ, skipping
// pairs with |c_pq| ≤ tol·√(c_pp·c_qq), and appends the rotations to rots.
func jacobiGram(n int, c []float64, tol float64, rots []rotation) []rotation {
	for range maxJacobiSweeps {
		rotated := false
		for p := 0; p < n-1; p++ {
			for q := p + 1; q < n; q++ {
				apq := c[p*n+q]
				app, aqq := c[p*n+p], c[q*n+q]
				if math.Abs(apq) <= tol*math.Sqrt(app)*math.Sqrt(aqq) {
					continue
				}
				rotated = true
				// Symmetric Schur decomposition of [app apq; apq aqq]
				// (Golub & Van Loan, Algorithm 8.5.1).
				theta := (aqq - app) / (2 * apq)
				var t float64
				if math.Abs(theta) > 1e150 {
					t = 0.5 / theta
				} else {
					t = math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(1+theta*theta))
				}
				cs := 1 / math.Sqrt(1+t*t)
				sn := t * cs
				for k := range n {
					if k == p || k == q {
						continue
					}
					ckp, ckq := c[k*n+p], c[k*n+q]
					np, nq := cs*ckp-sn*ckq, sn*ckp+cs*ckq
					c[k*n+p], c[p*n+k] = np, np
					c[k*n+q], c[q*n+k] = nq, nq
				}
				c[p*n+p] = app - t*apq
				c[q*n+q] = aqq + t*apq
				c[p*n+q], c[q*n+p] = 0, 0
				rots = append(rots, rotation{p: p, q: q, c: cs, s: sn})
			}
		}
		if !rotated {
			break
		}
	}
	return rots
}

// applyRotations applies rots in order to the columns of w (m×n) and v
// (n×n). Few rotations are applied row by row (each row of w is contiguous,
// the rows are split over the cores): 6 flops per rotation and row. Many
// rotations are first accumulated into J (n×n) and applied by GEMM,
// w ← w·J, v ← v·J, when that is cheaper: 6·r·(m+n) > 6·r·n + 2·(m+n)·n².
func applyRotations(w, v blas64.General, rots []rotation) {
	m, n := w.Rows, w.Cols
	r := len(rots)
	if 3*r*m < (m+n)*n*n {
		rotateRows(w, rots)
		rotateRows(v, rots)
		return
	}
	j := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	for i := range n {
		j.Data[i*n+i] = 1
	}
	rotateRows(j, rots)
	tmp := blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
	svdGemm(false, false, 1, w, j, 0, tmp)
	copyGeneral(w, tmp)
	tv := blas64.General{Rows: n, Cols: n, Stride: n, Data: tmp.Data[:n*n]}
	svdGemm(false, false, 1, v, j, 0, tv)
	copyGeneral(v, tv)
}

func copyGeneral(dst, src blas64.General) {
	for i := range src.Rows {
		copy(dst.Data[i*dst.Stride:i*dst.Stride+src.Cols], src.Data[i*src.Stride:i*src.Stride+src.Cols])
	}
}

// rotateRows applies rots in order to every row of x, rows split over the
// cores.
func rotateRows(x blas64.General, rots []rotation) {
	parallelRows(x.Rows, len(rots)*x.Rows*6, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			row := x.Data[i*x.Stride : i*x.Stride+x.Cols]
			for _, r := range rots {
				a, b := row[r.p], row[r.q]
				row[r.p] = r.c*a - r.s*b
				row[r.q] = r.s*a + r.c*b
			}
		}
	})
}

// parallelRows runs f over [0, rows) split into GOMAXPROCS contiguous
// ranges, or on the caller alone when flops is below a goroutine's worth.
func parallelRows(rows, flops int, f func(i0, i1 int)) {
	parts := runtime.GOMAXPROCS(0)
	if flops < 1<<18 || parts == 1 || rows < 2 {
		f(0, rows)
		return
	}
	parts = min(parts, rows)
	var wg sync.WaitGroup
	for p := range parts {
		i0, i1 := p*rows/parts, (p+1)*rows/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i0, i1)
		}()
	}
	wg.Wait()
}

// completeBasis overwrites columns [g, n) of the m×n u, whose first g
// columns are orthonormal, with unit vectors orthogonal to each other and
// to those g columns: the trailing columns of the Q factor of a Householder
// QR of u[:, 0:g] (orthonormal to O(m·ε) unconditionally).
func completeBasis(u blas64.General, g int) {
	m, n := u.Rows, u.Cols
	q := make([]float64, m*n)
	for i := range m {
		copy(q[i*n:i*n+g], u.Data[i*u.Stride:i*u.Stride+g])
	}
	var impl gonum.Implementation
	tau := make([]float64, g)
	work := []float64{0}
	impl.Dgeqrf(m, g, q, n, tau, work, -1)
	lw := int(work[0])
	impl.Dorgqr(m, n, g, q, n, tau, work, -1)
	lw = max(lw, int(work[0]), 1)
	work = make([]float64, lw)
	if g > 0 {
		impl.Dgeqrf(m, g, q, n, tau, work, lw)
	}
	impl.Dorgqr(m, n, g, q, n, tau, work, lw)
	for i := range m {
		copy(u.Data[i*u.Stride+g:i*u.Stride+n], q[i*n+g:i*n+n])
	}
}
