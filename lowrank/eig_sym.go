package lowrank

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack/gonum"
)

// eigSym computes the eigen-decomposition G = V·diag(w)·Vᵀ of the n×n
// symmetric matrix held in g (row-major, stride n, both triangles; g is
// overwritten). On return w holds the eigenvalues in non-increasing order and
// v (n×n, row-major, stride n) the orthonormal eigenvectors as its columns.
// It reports false if the eigenvalue iteration failed to converge.
//
// Method (measured against gonum's Dsteqr in docs/exact-svd.md):
//  1. tridiagonalize, G = Q·T·Qᵀ (tridiag: blocked Householder, 4/3·n³ flops);
//  2. eigenvalues of T by the Pal–Walker–Kahan QL/QR iteration (gonum
//     Dsterf, O(n²), absolute error O(ε·‖T‖));
//  3. one eigenvector of T per eigenvalue by inverse iteration with the
//     shift at the computed eigenvalue (O(n) per solve, three solves, both
//     cores, a seeded random start per vector so that vectors of a cluster
//     of close eigenvalues are independent combinations of its subspace);
//  4. orthonormalise the n vectors in eigenvalue order by a Householder LQ
//     factorization (unconditionally orthonormal to O(n·ε); a vector whose
//     eigenvalue is separated by a gap g from the others changes by
//     O(ε·‖T‖/g), and vectors of a cluster are rotated within the cluster's
//     subspace, which the caller's Jacobi refinement resolves);
//  5. back-transform V = Q·Z.
//
// Steps 1, 4 and 5 cost O(n³) and run in blocked, GEMM-rich code; steps 2
// and 3 are O(n²). This replaces the implicit-QL vector iteration (gonum
// Dsteqr), whose ≈3·n³ rotation flops on a row-major Z with strided access
// dominate gonum's EigenSym.
func eigSym(n int, g []float64, w, v []float64) bool {
	if n == 0 {
		return true
	}
	if n == 1 {
		w[0] = g[0]
		v[0] = 1
		return true
	}
	d := make([]float64, n)
	e := make([]float64, n-1)
	tau := make([]float64, n-1)
	tridiag(n, g, d, e, tau)

	// Eigenvalues of T, ascending.
	lam := make([]float64, n)
	copy(lam, d)
	ee := make([]float64, n-1)
	copy(ee, e)
	var impl gonum.Implementation
	if !impl.Dsterf(n, lam, ee) {
		return false
	}
	for i := range n {
		w[i] = lam[n-1-i]
	}

	// zt row j is an eigenvector of T for w[j].
	zt := make([]float64, n*n)
	inverseIteration(n, d, e, w, zt)

	// Orthonormalise the rows of zt in order: zt = L·Q, keep Q.
	orthonormalizeRows(n, n, zt)

	// v = Q_T·Z where Z = ztᵀ: apply the reflectors of tridiag to Z.
	for i := range n {
		for j := range n {
			v[i*n+j] = zt[j*n+i]
		}
	}
	applyTridiagQ(n, g, tau, v)
	return true
}

// tridiag reduces the symmetric g (lower triangle used) to tridiagonal
// form, G = Q·T·Qᵀ, with d the diagonal and e the off-diagonal of T and Q
// stored as reflectors in g and tau (LAPACK Dsytrd, lower).
func tridiag(n int, g []float64, d, e, tau []float64) {
	var impl gonum.Implementation
	work := []float64{0}
	impl.Dsytrd(blas.Lower, n, g, n, d, e, tau, work, -1)
	work = make([]float64, int(work[0]))
	impl.Dsytrd(blas.Lower, n, g, n, d, e, tau, work, len(work))
}

// applyTridiagQ overwrites the n×n row-major z with Q·z, where Q is the
// orthogonal factor of tridiag held in g and tau: Q = H(0)···H(n−2), and
// H(i) has its Householder vector in g[i+1:n, i], the QR layout of the
// submatrix g[1:n, 0:n−1] (LAPACK Dormtr, lower, applied through Dormqr).
func applyTridiagQ(n int, g, tau, z []float64) {
	var impl gonum.Implementation
	work := []float64{0}
	impl.Dormqr(blas.Left, blas.NoTrans, n-1, n, n-1, g[n:], n, tau, z[n:], n, work, -1)
	work = make([]float64, int(work[0]))
	impl.Dormqr(blas.Left, blas.NoTrans, n-1, n, n-1, g[n:], n, tau, z[n:], n, work, len(work))
}

// orthonormalizeRows replaces the r×c (r ≤ c) row-major x by the matrix Q
// with orthonormal rows of its LQ factorization x = L·Q: row i of Q spans
// rows 0..i of x.
func orthonormalizeRows(r, c int, x []float64) {
	var impl gonum.Implementation
	tau := make([]float64, r)
	work := []float64{0}
	impl.Dgelqf(r, c, x, c, tau, work, -1)
	lw := int(work[0])
	impl.Dorglq(r, c, r, x, c, tau, work, -1)
	lw = max(lw, int(work[0]))
	work = make([]float64, lw)
	impl.Dgelqf(r, c, x, c, tau, work, lw)
	impl.Dorglq(r, c, r, x, c, tau, work, lw)
}

// inverseIterations is the number of shifted solves per eigenvector. The
// shift is the computed eigenvalue, within O(ε‖T‖) of the exact one, so each
// solve shrinks the component along an eigenvector whose eigenvalue is g
// away by a factor O(ε‖T‖/g); three solves leave ≤ (ε‖T‖/g)³·n, below ε for
// every g ≥ 10⁻⁵·‖T‖, and closer eigenvalues form a cluster whose subspace,
// not its basis, is what matters downstream.
const inverseIterations = 3

// inverseIteration writes into row j of zt (n×n, stride n) a unit
// eigenvector of the symmetric tridiagonal T = tridiag(e, d, e) for the
// eigenvalue w[j], splitting the rows over GOMAXPROCS goroutines.
func inverseIteration(n int, d, e, w, zt []float64) {
	var tnorm float64
	for i := range n {
		s := math.Abs(d[i])
		if i > 0 {
			s += math.Abs(e[i-1])
		}
		if i < n-1 {
			s += math.Abs(e[i])
		}
		tnorm = max(tnorm, s)
	}
	if tnorm == 0 {
		// T = 0: every vector is an eigenvector.
		for j := range n {
			zt[j*n+j] = 1
		}
		return
	}
	// A pivot smaller than ε‖T‖ is raised to it (LAPACK Dlagtf's
	// perturbation): T − λI is then factored exactly for a matrix within
	// ε‖T‖ of it, the backward error inverse iteration has anyway.
	pert := 0x1p-52 * tnorm
	workers := min(runtime.GOMAXPROCS(0), max(1, n/64))
	var wg sync.WaitGroup
	for p := range workers {
		j0, j1 := p*n/workers, (p+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			lu := newTridiagLU(n)
			for j := j0; j < j1; j++ {
				x := zt[j*n : (j+1)*n]
				rng := rand.New(rand.NewPCG(uint64(j), 0x5eed))
				for i := range x {
					x[i] = rng.Float64() - 0.5
				}
				lu.factor(d, e, w[j], pert)
				for range inverseIterations {
					lu.solve(x)
					var s float64
					for _, v := range x {
						s = max(s, math.Abs(v))
					}
					scaleVec(1/s, x)
				}
				var s float64
				for _, v := range x {
					s += v * v
				}
				scaleVec(1/math.Sqrt(s), x)
			}
		}()
	}
	wg.Wait()
}

func scaleVec(a float64, x []float64) {
	for i := range x {
		x[i] *= a
	}
}

// tridiagLU is the LU factorization with partial pivoting of T − λI for a
// symmetric tridiagonal T (LAPACK Dgttrf): P·(T − λI) = L·U with U upper
// triangular with two super-diagonals.
type tridiagLU struct {
	dl, d, du, du2 []float64
	piv            []bool
}

func newTridiagLU(n int) *tridiagLU {
	return &tridiagLU{
		dl: make([]float64, n), d: make([]float64, n),
		du: make([]float64, n), du2: make([]float64, n),
		piv: make([]bool, n),
	}
}

func (f *tridiagLU) factor(d, e []float64, lam, pert float64) {
	n := len(d)
	dl, dd, du, du2 := f.dl, f.d, f.du, f.du2
	for i := range n {
		dd[i] = d[i] - lam
		du2[i] = 0
		f.piv[i] = false
	}
	copy(dl, e)
	copy(du, e)
	for i := 0; i < n-1; i++ {
		if math.Abs(dd[i]) >= math.Abs(dl[i]) {
			if dd[i] != 0 {
				fact := dl[i] / dd[i]
				dl[i] = fact
				dd[i+1] -= fact * du[i]
			} else {
				dl[i] = 0
			}
			continue
		}
		// Interchange rows i and i+1.
		f.piv[i] = true
		fact := dd[i] / dl[i]
		dd[i] = dl[i]
		dl[i] = fact
		tmp := du[i]
		du[i] = dd[i+1]
		dd[i+1] = tmp - fact*dd[i+1]
		if i < n-2 {
			du2[i] = du[i+1]
			du[i+1] = -fact * du[i+1]
		}
	}
	for i := range n {
		if math.Abs(dd[i]) < pert {
			dd[i] = math.Copysign(pert, dd[i])
		}
	}
}

// solve overwrites x with (T − λI)⁻¹·x.
func (f *tridiagLU) solve(x []float64) {
	n := len(x)
	dl, dd, du, du2 := f.dl, f.d, f.du, f.du2
	for i := 0; i < n-1; i++ {
		if !f.piv[i] {
			x[i+1] -= dl[i] * x[i]
		} else {
			t := x[i]
			x[i] = x[i+1]
			x[i+1] = t - dl[i]*x[i]
		}
	}
	x[n-1] /= dd[n-1]
	if n > 1 {
		x[n-2] = (x[n-2] - du[n-2]*x[n-1]) / dd[n-2]
	}
	for i := n - 3; i >= 0; i-- {
		x[i] = (x[i] - du[i]*x[i+1] - du2[i]*x[i+2]) / dd[i]
	}
}
