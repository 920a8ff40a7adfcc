package eig

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/loract/loract/internal/trace"

	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/internal/householder"
	"github.com/loract/loract/internal/tri"
	"github.com/loract/loract/internal/vec"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"
)

// Sym computes the eigen-decomposition G = V·diag(w)·Vᵀ of the n×n
// symmetric matrix held in g (row-major, stride n, both triangles; g is
// overwritten). On return w holds the eigenvalues in non-increasing order and
// v (n×n, row-major, stride n) the orthonormal eigenvectors as its columns.
// It reports false if the eigenvalue iteration failed to converge.
//
// Method (each step measured against the gonum routine it replaces in
// docs/exact-svd.md; the whole is ≈ 38× faster than mat.EigenSym at n = 1024):
//  1. tridiagonalize, G = Q·T·Qᵀ (tridiag: LAPACK Dsytrd's blocked
//     algorithm, trailing updates by GEMM, 4/3·n³ flops);
//  2. eigenvalues of T by the Pal–Walker–Kahan QL/QR iteration (gonum
//     Dsterf, O(n²), absolute error O(ε·‖T‖));
//  3. one eigenvector of T per eigenvalue by inverse iteration with the
//     shift at the computed eigenvalue (O(n) per solve, three solves, both
//     cores, a seeded random start per vector so that vectors of a cluster
//     of close eigenvalues are independent combinations of its subspace);
//  4. orthonormalize the n vectors in eigenvalue order (OrthonormalizeRows:
//     a Newton–Schulz step when they are nearly orthonormal, which a vector
//     whose eigenvalue is separated by a gap g from the others is to
//     O(ε·‖T‖/g); else Householder LQ, which keeps vectors of a cluster in
//     its subspace — the caller's refinement resolves the rest);
//  5. back-transform V = Q·Z (householder.ApplyQ: compact-WY blocks by
//     GEMM).
//
// G is first scaled by a power of two to max|g_ij| ∈ [1, 2) (exact, except
// for elements that become subnormal, which are below ε²·max|g_ij|), and
// the eigenvalues are scaled back: the result does not depend on the scale
// of G, and gonum's Dsterf is only called on a T of norm in [1, 2n) — it
// panics ("lapack: insufficient length of a") when it rescales a T of norm
// outside about [3e-123, 4.5e153] (docs/reliability.md). An eigenvalue
// overflows to ±Inf only if it exceeds math.MaxFloat64 in magnitude.
//
// Steps 1, 4 and 5 cost O(n³) and run in blocked, GEMM-rich code; steps 2
// and 3 are O(n²). This replaces the implicit-QL vector iteration (gonum
// Dsteqr), whose ≈3·n³ rotation flops on a row-major Z with strided access
// dominate gonum's EigenSym.
func Sym(n int, g []float64, w, v []float64) bool {
	if n == 0 {
		return true
	}
	if n == 1 {
		w[0] = g[0]
		v[0] = 1
		return true
	}
	var gmax float64
	for _, x := range g[:n*n] {
		gmax = max(gmax, math.Abs(x))
	}
	if gmax == 0 {
		clear(w[:n])
		clear(v[:n*n])
		for i := range n {
			v[i*n+i] = 1
		}
		return true
	}
	_, ge := math.Frexp(gmax) // gmax ∈ [2^(ge−1), 2^ge)
	shift := 1 - ge
	vec.ScaleExp(g[:n*n], shift)
	defer vec.ScaleExp(w[:n], -shift)
	d := make([]float64, n)
	e := make([]float64, n-1)
	tau := make([]float64, n-1)
	tr := trace.Start()
	tridiag(n, g, d, e, tau)
	tr.Mark("eig: tridiagonalize")

	// Eigenvalues of T, ascending. gonum v0.17.0's Dsterf panics
	// ("insufficient length of a") whenever it rescales an unreduced block
	// of T — one of max norm below ssfmin = 2⁻⁴⁰⁵ or above 2⁵¹¹/3 — because
	// it passes lda = n for a column vector to Dlascl (docs/reliability.md).
	// ‖T‖₂ = ‖G‖₂ ≥ max|g_ij| ≥ 1 after the scaling above, so flushing the
	// elements below dsterfFlush = 2⁻⁴⁰⁰ to zero moves the eigenvalues by
	// at most 3·2⁻⁴⁰⁰ (Weyl), far below the ε·‖T‖ of the iteration, and
	// leaves no block Dsterf would rescale: every block then has a zero norm
	// (skipped) or one above 2⁻⁴⁰⁰.
	lam := make([]float64, n)
	copy(lam, d)
	ee := make([]float64, n-1)
	copy(ee, e)
	flushTiny(lam)
	flushTiny(ee)
	var impl gonum.Implementation
	if !impl.Dsterf(n, lam, ee) {
		return false
	}
	for i := range n {
		w[i] = lam[n-1-i]
	}

	// zt row j is an eigenvector of T for w[j].
	zt := make([]float64, n*n)
	tr.Mark("eig: eigenvalues (Dsterf)")
	inverseIteration(n, d, e, w, zt)
	tr.Mark("eig: inverse iteration")

	// Orthonormalise the rows of zt in order: zt = L·Q, keep Q.
	OrthonormalizeRows(n, n, zt)
	tr.Mark("eig: orthonormalize")

	// v = Q_T·Z where Z = ztᵀ: apply the reflectors of tridiag to Z.
	vec.Transpose(n, n, zt, n, v, n)
	applyTridiagQ(n, g, tau, v)
	tr.Mark("eig: back-transform")
	return true
}

// dsterfFlush is the magnitude below which the elements of T are set to
// zero before Dsterf (see Sym).
const dsterfFlush = 0x1p-400

func flushTiny(x []float64) {
	for i, v := range x {
		if math.Abs(v) < dsterfFlush {
			x[i] = 0
		}
	}
}

// tridiagBlock and tridiagCrossover are the panel width of tridiag and the
// trailing size below which it finishes unblocked (LAPACK's Ilaenv values
// for DSYTRD).
const (
	tridiagBlock     = 32
	tridiagCrossover = 128
)

// tridiag reduces the symmetric n×n g (row-major, stride n, both triangles
// held) to tridiagonal form G = Q·T·Qᵀ, with d the diagonal and e the
// off-diagonal of T and Q stored as Householder reflectors in the strict
// lower triangle of g and in tau, exactly as LAPACK Dsytrd (lower) does.
// It is Dsytrd's blocked algorithm with the rank-2·nb trailing update
// A₂₂ ← A₂₂ − V·Wᵀ − W·Vᵀ done as two GEMMs on the full trailing block,
// which keeps both triangles current: 4/3·n³ flops, of which the panel
// factorization (gonum Dlatrd: matrix–vector products) is half.
func tridiag(n int, g []float64, d, e, tau []float64) {
	var impl gonum.Implementation
	nb := tridiagBlock
	// vw holds the panel's V and W as rows (latrdLower's vt and wt, one
	// above the other), wv the same rows the other way round, so that the
	// trailing update A₂₂ −= V·Wᵀ + W·Vᵀ = [V W]·[W V]ᵀ is one GEMM with an
	// inner dimension of 2·nb.
	vw, wv := make([]float64, 2*nb*n), make([]float64, 2*nb*n)
	t := [][]float64{make([]float64, nb), make([]float64, nb)}
	ybuf := make([][]float64, runtime.GOMAXPROCS(0))
	for p := range ybuf {
		ybuf[p] = make([]float64, n)
	}
	i := 0
	for ; n-i > tridiagCrossover; i += nb {
		p := n - i
		vt, wt := vw[:nb*p], vw[nb*p:2*nb*p]
		latrdLower(p, nb, g[i*n+i:], n, d[i:], e[i:], tau[i:], vt, wt, t, ybuf)
		copy(wv[:nb*p], wt)
		copy(wv[nb*p:2*nb*p], vt)
		r := p - nb
		a := blas64.General{Rows: 2 * nb, Cols: r, Stride: p, Data: vw[nb : 2*nb*p]}
		b := blas64.General{Rows: 2 * nb, Cols: r, Stride: p, Data: wv[nb : 2*nb*p]}
		a22 := blas64.General{Rows: r, Cols: r, Stride: n, Data: g[(i+nb)*n+i+nb:]}
		gemm.General(true, false, -1, a, b, 1, a22)
		for j := i; j < i+nb; j++ {
			g[(j+1)*n+j] = e[j]
		}
	}
	impl.Dsytd2(blas.Lower, n-i, g[i*n+i:], n, d[i:], e[i:], tau[i:])
}

// applyTridiagQ overwrites the n×n row-major z with Q·z, where Q is the
// orthogonal factor of tridiag held in g and tau: Q = H(0)···H(n−2), and
// H(i) has its Householder vector in g[i+1:n, i], the QR layout of the
// submatrix g[1:n, 0:n−1] (LAPACK Dormtr, lower).
//
// The blocks are applied by householder.ApplyQ (compact WY, T from the
// corrected householder.Larft, products by internal/gemm): gonum's Dormqr
// forms T with gonum's Dlarft, which is wrong for the reflectors of a
// rank-deficient G, whose vectors end in exact zeros (docs/reliability.md).
func applyTridiagQ(n int, g, tau, z []float64) {
	refl := blas64.General{Rows: n - 1, Cols: n - 1, Stride: n, Data: g[n : n*n-1]}
	householder.ApplyQ(false, refl, tau[:n-1], blas64.General{Rows: n - 1, Cols: n, Stride: n, Data: z[n:]})
}

// OrthonormalizeRows replaces the r×c (r ≤ c) row-major x, whose rows are
// nearly orthonormal, by a matrix with orthonormal rows spanning, row by
// row, nearly the same directions. With δ = ‖x·xᵀ − I‖_max (one GEMM) it
// returns x as it is for δ ≤ √c·ε, takes one Newton–Schulz step
// x ← x − ½·(x·xᵀ − I)·x for δ ≤ newtonSchulzMax (which leaves ≈ ¾·δ²,
// below rounding), and otherwise — vectors of a tight cluster, which
// inverse iteration returns independent but not orthogonal, or the
// rotations I + K of the SVD refinement — takes the Q of the LQ
// factorization x = L·Q, which keeps row i in the span of rows 0..i: by
// Cholesky QR twice (cholQRRows) where x is conditioned well enough, else
// by Householder LQ (householder.LQ), which is unconditionally
// orthonormal.
//
// Measured (n = 1024, x = I + K with |k_ij| ≤ 5·10⁻⁶, the refinement's
// case, load ≈ 8): two Newton–Schulz steps and their checks 0.52 s, LQ
// 0.25 s; so LQ replaces every Newton–Schulz step but the last.
func OrthonormalizeRows(r, c int, x []float64) {
	xg := blas64.General{Rows: r, Cols: c, Stride: c, Data: x}
	m := blas64.General{Rows: r, Cols: r, Stride: r, Data: make([]float64, r*r)}
	gemm.GramRows(m, xg) // x·xᵀ
	var delta float64
	for i := range r {
		m.Data[i*r+i] -= 1
	}
	for _, v := range m.Data {
		delta = max(delta, math.Abs(v))
	}
	switch {
	case delta <= orthonormalTol(c):
	case delta <= newtonSchulzMax:
		// δ' ≤ ¾·δ² + O(√c·ε) rounding of the step: below orthonormalTol
		// without another Gram product to check it.
		t := blas64.General{Rows: r, Cols: c, Stride: c, Data: append([]float64(nil), x...)}
		gemm.General(false, false, -0.5, m, t, 1, xg)
	default:
		for i := range r {
			m.Data[i*r+i] += 1
		}
		if !cholQRRows(r, c, x, m) {
			householderLQ(r, c, x)
		}
	}
}

// cholQRRows replaces the r×c x by L⁻¹·x, x·xᵀ = L·Lᵀ, by two Cholesky QR
// passes on xᵀ (CholeskyQR2: Yamamoto, Nakatsukasa, Yanagisawa and Fukaya,
// ETNA 44, 2015), given m = x·xᵀ (both triangles; destroyed). It is the Q
// of the LQ factorization with a positive diagonal of L (row i of the
// result in the span of rows 0..i of x), orthonormal to O((r·c + r²)·u)
// when the second pass runs on rows within 1/2 of orthonormal (κ ≤ √3);
// the first pass needs κ(x) below about u^{−1/2}, and it reports false,
// leaving x unchanged, when a factorization fails or its result is too
// far from orthonormal. Its work is two Cholesky factorizations, two
// triangular solves and one Gram product (the first one is m) on
// internal/gemm, against the LQ's panels and its Q formed from reflectors:
// in the graded 4096×1024 exact SVD of docs/exact-svd.md (whose n = 1024
// vectors have δ = 0.99) the stage took 63–66 ms against 69–73 ms with the
// LQ, and 15.5 ms against 20.5–21 at the 574 columns of its cluster (two
// traced calls each, the Zen 5 of that page).
func cholQRRows(r, c int, x []float64, m blas64.General) bool {
	if !tri.Cholesky(m) {
		return false
	}
	xt := blas64.General{Rows: c, Cols: r, Stride: r, Data: make([]float64, c*r)}
	vec.Transpose(r, c, x, c, xt.Data, r)
	tri.SolveRight(xt, m) // xᵀ·R⁻¹, R = Lᵀ
	m2 := blas64.General{Rows: r, Cols: r, Stride: r, Data: m.Data}
	if !tri.SecondPassFactor(m2, xt) {
		return false
	}
	tri.SolveRight(xt, m2)
	vec.Transpose(c, r, xt.Data, r, x, c)
	return true
}

// newtonSchulzMax is the largest δ from which OrthonormalizeRows takes its
// one Newton–Schulz step: ¾·δ² < 10⁻¹⁸ is below rounding.
const newtonSchulzMax = 1e-9

// orthonormalTol is the ‖x·xᵀ − I‖_max accepted as orthonormal for rows of
// length c: √c·ε, the rounding level of a length-c dot product (as
// jacobiTol).
func orthonormalTol(c int) float64 { return math.Sqrt(float64(c)) * 0x1p-52 }

// householderLQ replaces the r×c x by Q of its LQ factorization x = L·Q
// (householder.LQ; not gonum's Dgelqf/Dorglq, whose blocked paths use the
// defective Dlarft).
func householderLQ(r, c int, x []float64) {
	householder.LQ(blas64.General{Rows: r, Cols: c, Stride: c, Data: x}, blas64.General{})
}

// inverseIterations is the number of shifted solves per eigenvector. The
// shift is the computed eigenvalue, within O(ε‖T‖) of the exact one, so each
// solve shrinks the component along an eigenvector whose eigenvalue is g
// away by a factor O(ε‖T‖/g); three solves leave ≤ (ε‖T‖/g)³·n, below ε for
// every g ≥ clusterGap·‖T‖, and closer eigenvalues form a cluster whose
// subspace, not its basis, is what matters downstream.
const inverseIterations = 3

// clusterGap is the gap, relative to ‖T‖, below which consecutive
// eigenvalues form a cluster whose vectors are computed together (see
// inverseIteration). Outside clusters the computed vectors of eigenvalues g
// apart have cosines O(ε‖T‖/g) ≤ 2.3·10⁻⁶, small enough for the LQ of
// OrthonormalizeRows to keep each vector within O(ε‖T‖/g) of its own.
const clusterGap = 1e-10

// inverseIteration writes into row j of zt (n×n, stride n) a unit
// eigenvector of the symmetric tridiagonal T = tridiag(e, d, e) for the
// eigenvalue w[j] (w non-increasing), splitting the rows over GOMAXPROCS
// goroutines.
//
// An eigenvalue separated from its neighbours by more than clusterGap·‖T‖
// gets three solves from a seeded random start. The vectors of a cluster
// (consecutive eigenvalues closer than that) would, by themselves, each
// converge to the few eigenvectors of T nearest its shift, and vectors of
// an exactly repeated eigenvalue (rank-deficient G) collapse onto the same
// ones: orthonormalizing such a nearly dependent set afterwards amplifies
// its rounding errors into directions far outside the cluster's invariant
// subspace (‖G·V − V·Λ‖ = 0.48·‖G‖ for the Gram matrix of a 4096×1024
// rank-100 matrix). So a cluster is iterated as a block, subspace
// iteration: after every solve its rows are orthonormalized together
// (householder.LQ), which keeps them an orthonormal basis of the computed
// invariant subspace (LAPACK's Dstein reorthogonalizes within clusters
// for the same reason). Cost: O(n) per vector and solve, plus
// 3·4·n·k² flops of LQ for a cluster of k.
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
	for j := range n {
		x := zt[j*n : (j+1)*n]
		rng := rand.New(rand.NewPCG(uint64(j), 0x5eed))
		for i := range x {
			x[i] = rng.Float64() - 0.5
		}
	}
	var singles []int
	var clusters [][2]int // [j0, j1), j1 − j0 ≥ 2
	gap := clusterGap * tnorm
	for j := 0; j < n; {
		j1 := j + 1
		for j1 < n && w[j1-1]-w[j1] <= gap {
			j1++
		}
		if j1 == j+1 {
			singles = append(singles, j)
		} else {
			clusters = append(clusters, [2]int{j, j1})
		}
		j = j1
	}
	// Separated eigenvalues and chains, each vector on its own; tight
	// clusters as blocks with a common shift.
	var ownShift, blockShift []float64
	var ownIdx, blockSolves []int
	var blocks [][2]int
	ownIdx = append(ownIdx, singles...)
	for _, c := range clusters {
		if mu, damp, ok := commonShift(w, c[0], c[1], pert); ok {
			blocks = append(blocks, c)
			blockShift = append(blockShift, mu)
			// Solves from a random start: each damps the rest of the
			// spectrum by damp, so two leave damp² — below ε for
			// damp ≤ 10⁻⁸ (10⁻¹³ for the zero eigenvalues of a rank-100
			// Gram matrix, whose LQs are most of this step's time).
			solves := inverseIterations
			if damp <= 1e-8 {
				solves = 2
			}
			blockSolves = append(blockSolves, solves)
			continue
		}
		for j := c[0]; j < c[1]; j++ {
			ownIdx = append(ownIdx, j)
		}
	}
	for _, j := range ownIdx {
		ownShift = append(ownShift, w[j])
	}
	solveEach(n, d, e, ownShift, pert, zt, ownIdx, inverseIterations, true)
	for b, c := range blocks {
		j0, j1 := c[0], c[1]
		idx := make([]int, j1-j0)
		shift := make([]float64, j1-j0)
		for i := range idx {
			idx[i], shift[i] = j0+i, blockShift[b]
		}
		block := blas64.General{Rows: j1 - j0, Cols: n, Stride: n, Data: zt[j0*n : j1*n]}
		for range blockSolves[b] {
			solveEach(n, d, e, shift, pert, zt, idx, 1, false)
			householder.LQ(block, blas64.General{})
		}
	}
}

// tightCluster is the largest damping factor (see commonShift) for which
// a cluster is iterated with a common shift: each solve then shrinks the
// components outside the cluster by this factor, ≤ 10⁻¹² after three.
const tightCluster = 1e-4

// commonShift returns, for the cluster w[j0:j1] (non-increasing), a shift
// μ just outside it, at distance Δ = 2·spread + 4·pert from one of its
// ends, if the cluster is tight. Solved with per-vector shifts at its
// (nearly) equal eigenvalues, the vectors of a tight cluster would be
// amplified by factors that differ by orders of magnitude within the
// cluster and collapse onto a few eigenvectors; with μ the amplification
// varies by less than a factor (Δ+spread)/Δ ≤ 1.5 + … within the cluster,
// so the block stays well conditioned for the LQ, while every eigenvalue
// outside it is damped, relative to the cluster, by
//
//	(Δ + spread) / min(gap on μ's side − Δ, Δ + spread + gap on the other side),
//
// which must be ≤ tightCluster; μ goes on the side where it is smaller,
// and that damping is returned too.
// A chain of close eigenvalues spanning a range comparable to its gaps is
// not tight and keeps the per-vector shifts, and so does a cluster wider
// than n·ε·‖T‖ (pert = ε·‖T‖), whose basis vectors would not be
// eigenvectors to within the backward error.
func commonShift(w []float64, j0, j1 int, pert float64) (mu, damp float64, ok bool) {
	hi, lo := w[j0], w[j1-1]
	spread := hi - lo
	delta := 2*spread + 4*pert
	above, below := math.Inf(1), math.Inf(1)
	if j0 > 0 {
		above = w[j0-1] - hi
	}
	if j1 < len(w) {
		below = lo - w[j1]
	}
	damping := func(near, far float64) float64 {
		return (delta + spread) / min(near-delta, delta+spread+far)
	}
	dAbove, dBelow := damping(above, below), damping(below, above)
	if above <= delta {
		dAbove = math.Inf(1)
	}
	if below <= delta {
		dBelow = math.Inf(1)
	}
	// A block's vectors are an orthonormal basis of the cluster's
	// invariant subspace, not its eigenvectors: each has a residual up to
	// the spread, so only clusters no wider than the backward error
	// n·ε·‖T‖ of the eigensolver — numerically repeated eigenvalues — are
	// blocks.
	narrow := spread <= float64(len(w))*pert
	if dAbove <= dBelow {
		return hi + delta, dAbove, narrow && dAbove <= tightCluster
	}
	return lo - delta, dBelow, narrow && dBelow <= tightCluster
}

// solveEach applies, to row idx[i] of zt for every i, `solves` solves
// x ← (T − shift[i]·I)⁻¹·x, each followed by a scaling to max|x_i| = 1, and
// a scaling to ‖x‖₂ = 1 at the end if unit; the rows are split over
// GOMAXPROCS goroutines.
func solveEach(n int, d, e, shift []float64, pert float64, zt []float64, idx []int, solves int, unit bool) {
	workers := min(runtime.GOMAXPROCS(0), max(1, len(idx)*solves/64))
	var wg sync.WaitGroup
	for p := range workers {
		i0, i1 := p*len(idx)/workers, (p+1)*len(idx)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			lu := newTridiagLU(n)
			for i := i0; i < i1; i++ {
				j := idx[i]
				x := zt[j*n : (j+1)*n]
				lu.factor(d, e, shift[i], pert)
				for range solves {
					lu.solve(x)
					var s float64
					for _, v := range x {
						s = max(s, math.Abs(v))
					}
					scaleVec(1/s, x)
				}
				if unit {
					var s float64
					for _, v := range x {
						s += v * v
					}
					scaleVec(1/math.Sqrt(s), x)
				}
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
	rd             []float64 // 1/d
	piv            []bool
}

func newTridiagLU(n int) *tridiagLU {
	return &tridiagLU{
		dl: make([]float64, n), d: make([]float64, n),
		du: make([]float64, n), du2: make([]float64, n),
		rd: make([]float64, n), piv: make([]bool, n),
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
		f.rd[i] = 1 / dd[i]
	}
}

// solve overwrites x with (T − λI)⁻¹·x.
func (f *tridiagLU) solve(x []float64) {
	n := len(x)
	dl, rd, du, du2 := f.dl, f.rd, f.du, f.du2
	for i := 0; i < n-1; i++ {
		if !f.piv[i] {
			x[i+1] -= dl[i] * x[i]
		} else {
			t := x[i]
			x[i] = x[i+1]
			x[i+1] = t - dl[i]*x[i]
		}
	}
	x[n-1] *= rd[n-1]
	if n > 1 {
		x[n-2] = (x[n-2] - du[n-2]*x[n-1]) * rd[n-2]
	}
	for i := n - 3; i >= 0; i-- {
		x[i] = (x[i] - du[i]*x[i+1] - du2[i]*x[i+2]) * rd[i]
	}
}
