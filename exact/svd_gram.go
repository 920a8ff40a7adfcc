package exact

import (
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/loract/loract/internal/eig"
	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/internal/householder"
	"github.com/loract/loract/internal/trace"
	"github.com/loract/loract/internal/tri"
	"gonum.org/v1/gonum/blas/blas64"
)

// svdTall computes the thin SVD a = U·diag(s)·Vᵀ of the m×n row-major a
// (any stride) with m ≥ n ≥ 1 and max|a_ij| ∈ [1, 2) (see tallOperand);
// a is not modified. U (m×n) and V (n×n) are returned
// row-major and contiguous, s is non-increasing. It reports false if the
// eigenvalue iteration or the refinement failed to converge, or if the
// result is not finite (neither is known to happen).
//
// The method is a Gram-preconditioned one-sided Jacobi SVD (Drmač–Veselić
// style), arranged so that all O(m·n²) work is GEMM:
//
//  1. G = aᵀa and its eigen-decomposition G = V̂·Λ·V̂ᵀ (eigSym);
//  2. W = a·V̂: its columns are orthogonal up to rounding in G, i.e.
//     |w_iᵀw_j| ≲ ε·σ₁², and ‖w_j‖ = σ_j to within an absolute O(ε·σ₁)
//     even where the eigenvalue λ_j = σ_j² is swamped by the error of G;
//  3. one-sided Jacobi on W in Gram form (refineColumns): C = WᵀW, and
//     the pairs of columns whose cosine exceeds jacobiTol are rotated — in
//     rounds, C recomputed from W each round so that the test is on the
//     actual columns. The cosine computed from C has an error of at most
//     γ_m relative to the two norms (componentwise error of a dot
//     product), whatever their size, which is what keeps small singular
//     values and their singular vectors accurate. Columns below the
//     rounding noise are set aside (activeColumns). Where the refinement
//     runs on the R of W = Q·R (svdViaR), pairs coupled by less than
//     couplingFloor are not rotated but orthonormalized once at the end
//     (refine, orthonormalizeColumns);
//  4. σ_j = ‖w_j‖, u_j = w_j/σ_j, V = V̂·(rotations); null columns get
//     left singular vectors completing an orthonormal basis.
//
// For a matrix whose singular values lie within a few orders of σ₁ (the
// common case) step 2 already leaves every cosine below jacobiTol and step 3
// costs a single Gram product. Cost: ≈ m·n²·(1.25 + 2 + 1.25) flops of
// GEMM plus the O(n³) eigensolver, and per refinement round another
// 1.25·m·n² plus GEMM updates of the columns it moves.
func svdTall(a blas64.General) (u, v blas64.General, s []float64, ok bool) {
	m, n := a.Rows, a.Cols
	tr := trace.Start()
	g := make([]float64, n*n)
	gemm.Gram(blas64.General{Rows: n, Cols: n, Stride: n, Data: g}, a)
	tr.Mark("gram AᵀA")
	lam := make([]float64, n)
	vd := make([]float64, n*n)
	if !eig.Sym(n, g, lam, vd) {
		return u, v, nil, false
	}
	v = blas64.General{Rows: n, Cols: n, Stride: n, Data: vd}
	w := blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
	tr.Mark("eigensolver")
	gemm.General(false, false, 1, a, v, 0, w)
	tr.Mark("W = A·V̂")

	c := blas64.General{Rows: n, Cols: n, Stride: n, Data: g} // reuse g's storage
	gemm.Gram(c, w)
	tr.Mark("gram WᵀW")
	tol := jacobiTol(m)
	if _, large := failingPairs(c, tol, 0, nullFloor(c)); qrRoute && large > 0 {
		return svdViaR(w, v, c, tol, tr)
	}
	active, ok := refine(w, v, c, tol, false, tr)
	if !ok {
		return u, v, nil, false
	}
	u, s = finishColumns(w, v, c, active)
	tr.Mark("normalize, sort, complete")
	return checkFinite(u, v, s)
}

// qrRoute chooses, for a W whose refinement meets pairs with large Jacobi
// angles (columns the Gram eigensolver could not separate, which take
// several rounds), the refinement of the R factor of W = Q·R (svdViaR)
// over that of W itself. A W with small angles only converges in one
// round on W, cheaper than the QR and U = Q·U_R (BenchmarkRefineRoute).
var qrRoute = true

// cholRoute makes svdViaR factor W by Cholesky QR (cholQRW) where it
// succeeds, instead of Householder QR.
var cholRoute = true

// svdViaR finishes the SVD from W = A·V̂ (m×n, overwritten) and its Gram
// matrix c (overwritten) when W needs refinement: a QR factorization
// W = Q·R that is columnwise backward stable, ‖Δw_j‖ ≤ γ·‖w_j‖, so that
// every column keeps its accuracy relative to its own norm, as the
// refinement requires — two Cholesky QR passes on the column-scaled W
// (cholQRW) where they succeed, else Householder QR —, the one-sided
// Jacobi refinement on the n×n R instead of the m×n W (each round costs
// n³ instead of m·n²), and U = Q·U_R.
func svdViaR(w, v, c blas64.General, tol float64, tr *trace.Trace) (u, vo blas64.General, s []float64, ok bool) {
	m, n := w.Rows, w.Cols
	var tau []float64
	var q1, r2, r blas64.General
	chol := false
	if cholRoute {
		q1, r2, r, chol = cholQRW(w, c)
	}
	if chol {
		tr.Mark("Cholesky QR of W")
	} else {
		tau = make([]float64, n)
		householder.Geqrf(w, tau)
		tr.Mark("QR of W")
		r = blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
		for i := range n {
			copy(r.Data[i*n+i:(i+1)*n], w.Data[i*w.Stride+i:i*w.Stride+n])
		}
	}
	// The first round's pairs and angles come from c = WᵀW, not from a new
	// RᵀR: W + ΔW = Q·R with ‖Δw_j‖ ≤ γ·‖w_j‖ (both factorizations are
	// columnwise backward stable), so the two differ by O(γ·‖w_p‖·‖w_q‖),
	// as a Gram product's own rounding does; every later round recomputes
	// its Gram matrix from R.
	active, ok := refine(r, v, c, tol, true, tr)
	if !ok {
		return u, v, nil, false
	}
	ur, s := finishColumns(r, v, c, active)
	if chol {
		// U = Q₁·(R₂⁻¹·U_R), into w's storage where it is contiguous
		// (svdTall's): nothing reads w any more.
		inv := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
		for i := range n {
			inv.Data[i*n+i] = 1
		}
		tri.SolveRight(inv, r2)
		m2 := blas64.General{Rows: n, Cols: n, Stride: n, Data: r2.Data} // r2 is no longer needed
		tri.MulUpper(m2, inv, ur, false)
		u = blas64.General{Rows: m, Cols: n, Stride: n, Data: w.Data[:m*n]}
		if w.Stride != n {
			u.Data = make([]float64, m*n)
		}
		gemm.General(false, false, 1, q1, m2, 0, u)
		tr.Mark("U = Q·U_R")
		return checkFinite(u, v, s)
	}
	u = blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
	for i := range n {
		copy(u.Data[i*n:(i+1)*n], ur.Data[i*n:(i+1)*n])
	}
	householder.ApplyQ(false, w, tau, u)
	tr.Mark("U = Q·U_R")
	return checkFinite(u, v, s)
}

// refine makes the active columns of x (p×n) orthogonal, by refineColumns
// and, where that leaves relaxed pairs, orthonormalizeColumns; its
// arguments and results are refineColumns' at depth 0. A pair is relaxed
// when its coupling is below couplingFloor: instead of more rounds of
// rotations, whose angles would be tiny but whose GEMMs cost as much as
// the first round's, the relaxed columns are orthonormalized once, which
// drops their couplings from the factorization. If that declines — its
// factorization fails, or it would drop more than √n·ε·‖X‖_F, the
// statistical size of the rounding error of W = A·V̂ itself — the rounds go
// on without relaxed pairs, to cosines ≤ tol.
//
// Pairs are relaxed only on the R of svdViaR (upper), where a round costs
// O(n³) as the orthonormalization does and a graded spectrum's later
// rounds rotate hundreds of columns by tiny angles. On W the rounds after
// the first move few columns, for less than the m×s triangular solve of
// the orthonormalization costs (a spectrum geometric to 10⁻⁴ at 4096×1024:
// one more round, on 53 columns, 18 ms; with relaxed pairs, rounds on 54
// and 2 columns and then 46 ms to orthonormalize 724; docs/exact-svd.md),
// so W's refinement is left as it was.
func refine(x, v, c blas64.General, tol float64, upper bool, tr *trace.Trace) ([]int, bool) {
	floor := nullFloor(c)
	coupling := 0.0
	if upper {
		coupling = couplingFloor(floor, x.Cols)
	}
	active, relaxed, ok := refineColumns(x, v, c, tol, coupling, floor, 0, upper, tr)
	if !ok || len(relaxed) == 0 {
		return active, ok
	}
	var xf2 float64
	for _, j := range active {
		xf2 += c.Data[j*c.Stride+j]
	}
	bound := math.Sqrt(float64(x.Cols)) * 0x1p-52 * math.Sqrt(xf2)
	if declineRelaxed {
		bound = -1
	}
	omega, done := orthonormalizeColumns(x, c, relaxed, bound)
	tr.Markf("orthonormalize %d columns: ω = %.3g·ε·‖X‖_F (%v)", len(relaxed), omega/(0x1p-52*math.Sqrt(xf2)), done)
	if done {
		return active, true
	}
	active, _, ok = refineColumns(x, v, c, tol, 0, floor, 0, false, tr)
	return active, ok
}

// declineRelaxed makes refine's orthonormalization decline, so that the
// rounds after it are tested (TestSVDViaRRoutes).
var declineRelaxed bool

// couplingFloor returns the coupling below which refine relaxes a pair of
// columns, ε·σ₁/√n for the null floor √n·ε·σ₁ (nullFloor) of n columns:
// at most n·(n−1)/2 pairs, each dropping a coupling below it, drop less
// than √(n/2)·ε·σ₁ ≤ √n·ε·‖X‖_F in the Frobenius norm (to first order),
// the bound orthonormalizeColumns is held to. (The null floor itself as
// the coupling floor relaxed the 4096×1024 activation-like matrix's pairs
// so many at a time that they dropped 680·ε·‖X‖_F, docs/exact-svd.md.)
func couplingFloor(floor float64, n int) float64 {
	return floor / float64(n)
}

// failingPairs returns the number of pairs of active columns (see
// activeColumns) that fail the test of scanPairs, and how many of them
// have a Jacobi angle above smallAngle.
func failingPairs(c blas64.General, tol, coupling, floor float64) (fail, large int) {
	fail, large, _ = scanPairs(c, activeColumns(c, floor), tol, coupling, nil, nil, nil)
	return fail, large
}

// scanPairs tests every pair p < q of the active columns on the Gram
// matrix c (n×n, stride n). The pair passes if its cosine is at most tol,
// |c_pq| ≤ tol·√c_pp·√c_qq (the columns are orthogonal to working
// accuracy), or if its coupling is at most coupling,
// |c_pq| ≤ coupling·max(√c_pp, √c_qq): the component of the smaller
// column along the larger is then below the coupling floor, and the pair
// is relaxed (see orthonormalizeColumns); otherwise it fails. It returns
// the number of failing pairs, how many of them have a Jacobi angle
// |t| > smallAngle, and the number of relaxed pairs. If kt is not nil, the
// tangent t of each failing small-angle pair is stored in kt[p·n+q] (the
// other entries are left alone); if pairs is not nil, the large-angle
// pairs (p, q) are appended to *pairs; if relaxed is not nil (length n),
// relaxed[j] is set for the columns of the relaxed pairs (and left alone
// for the others). The rows of pairs are split over the cores by equal
// shares of the triangle; the result does not depend on the split.
func scanPairs(c blas64.General, active []int, tol, coupling float64, kt []float64, pairs *[][2]int, relaxed []bool) (fail, large, nRelaxed int) {
	n, cd := c.Cols, c.Data
	sq := make([]float64, n)
	for _, j := range active {
		sq[j] = math.Sqrt(cd[j*n+j])
	}
	type count struct {
		fail, large, relaxed int
		pairs                [][2]int
		inRelaxed            []bool
	}
	counts := parallelTriangle(len(active), func(a0, a1 int) count {
		var r count
		for ai := a0; ai < a1; ai++ {
			p := active[ai]
			row := cd[p*n : (p+1)*n]
			bound, app := tol*sq[p], cd[p*n+p]
			for _, q := range active[ai+1:] {
				apq := math.Abs(row[q])
				if apq <= bound*sq[q] {
					continue
				}
				if apq <= coupling*max(sq[p], sq[q]) {
					r.relaxed++
					if relaxed != nil {
						if r.inRelaxed == nil {
							r.inRelaxed = make([]bool, n)
						}
						r.inRelaxed[p], r.inRelaxed[q] = true, true
					}
					continue
				}
				r.fail++
				t := jacobiTan(app, row[q], cd[q*n+q])
				if math.Abs(t) <= smallAngle {
					if kt != nil {
						kt[p*n+q] = t
					}
					continue
				}
				r.large++
				if pairs != nil {
					r.pairs = append(r.pairs, [2]int{p, q})
				}
			}
		}
		return r
	})
	for _, r := range counts {
		fail += r.fail
		large += r.large
		nRelaxed += r.relaxed
		if pairs != nil {
			*pairs = append(*pairs, r.pairs...)
		}
		for j, in := range r.inRelaxed {
			if in {
				relaxed[j] = true
			}
		}
	}
	return fail, large, nRelaxed
}

// parallelTriangle calls f on ranges [a0, a1) of the rows of the strict
// upper triangle of an n×n matrix, row a holding n−1−a entries, split over
// the cores so that each holds an equal share of the triangle's entries
// (rows [0, r) hold r·(2n−1−r)/2 of them), and returns the results in the
// order of the ranges. Small triangles run on the calling goroutine.
func parallelTriangle[T any](n int, f func(a0, a1 int) T) []T {
	parts := runtime.GOMAXPROCS(0)
	if n*n < 1<<15 || parts == 1 {
		return []T{f(0, n)}
	}
	parts = min(parts, n)
	cut := func(i int) int {
		if i == parts {
			return n
		}
		return int(float64(n) * (1 - math.Sqrt(1-float64(i)/float64(parts))))
	}
	res := make([]T, parts)
	var wg sync.WaitGroup
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = f(cut(i), cut(i+1))
		}()
	}
	wg.Wait()
	return res
}

// checkFinite is a last guard, O(m·n): no path of svdTall is known to
// produce a NaN or ±Inf from finite input (FuzzTruncatedSVD), but if one
// did, the caller must get an error, not the numbers.
func checkFinite(u, v blas64.General, s []float64) (blas64.General, blas64.General, []float64, bool) {
	if !allFinite(s) || !allFinite(u.Data) || !allFinite(v.Data) {
		return u, v, nil, false
	}
	return u, v, s, true
}

// finishColumns turns the refined columns x (p×n, overwritten) and the
// rotated v (n×n, permuted in place) into the factors: σ_j = ‖x_j‖ from the
// diagonal of their Gram matrix c, sorted non-increasing with the active
// columns first, u_j = x_j/σ_j for the active columns and an orthonormal
// completion for the others (completeBasis). It returns U (x's storage)
// and σ.
func finishColumns(x, v, c blas64.General, active []int) (blas64.General, []float64) {
	n := x.Cols
	s := make([]float64, n)
	isActive := make([]bool, n)
	for _, j := range active {
		isActive[j] = true
	}
	perm := make([]int, n)
	for j := range n {
		s[j] = math.Sqrt(c.Data[j*c.Stride+j])
		perm[j] = j
	}
	sort.SliceStable(perm, func(a, b int) bool {
		pa, pb := perm[a], perm[b]
		if isActive[pa] != isActive[pb] {
			return isActive[pa]
		}
		return s[pa] > s[pb]
	})
	sorted := make([]float64, n)
	good := len(active)
	for jj, j := range perm {
		sorted[jj] = s[j]
	}
	inv := make([]float64, n)
	for jj, j := range perm[:good] {
		inv[jj] = 1 / s[j]
	}
	// U overwrites x and V is permuted in place, a row at a time.
	permuteScaleRows(x, perm, inv)
	for jj := range inv {
		inv[jj] = 1
	}
	permuteScaleRows(v, perm, inv)
	if good < n {
		completeBasis(x, good)
	}
	return x, sorted
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

// activeColumns returns the columns of W, in order, whose norm √c_jj
// exceeds √n·ε·max_k √c_kk, the rounding noise of w_j = a·v̂_j (a
// length-n dot product per element, statistically). The others are null
// columns: their direction is rounding noise, so they are left out of the
// refinement and given left singular vectors completing an orthonormal
// basis, which moves the factorization by at most 2·‖w_j‖ per column and
// their singular values (‖w_j‖ ≤ √n·ε·σ₁) by as much — within the
// O(n·ε·σ₁) backward error of any stable SVD. TruncatedSVD scales
// max|a_ij| into [1, 2), so the floor is far above underflow.
func activeColumns(c blas64.General, floor float64) []int {
	n := c.Cols
	var act []int
	for j := range n {
		if s := math.Sqrt(c.Data[j*c.Stride+j]); s > floor && s > 0 {
			act = append(act, j)
		}
	}
	return act
}

// nullFloor returns √n·ε·max_j √c_jj for the n×n Gram matrix c (see
// activeColumns).
func nullFloor(c blas64.General) float64 {
	n := c.Cols
	var smax float64
	for j := range n {
		smax = max(smax, c.Data[j*c.Stride+j])
	}
	return math.Sqrt(float64(n)) * 0x1p-52 * math.Sqrt(smax)
}

// Refinement parameters. maxRefineRounds bounds the rounds of
// refineColumns (measured at 4096×1024: 0 for Gaussian, 3 for the
// activation-like power law, 7 for a spectrum graded down to 1e-14);
// smallAngle is the largest Jacobi angle applied
// simultaneously with the others: rotations by angles ≤ θ commute up to
// O(θ²), so a simultaneous step leaves cosines O(θ²) that the next round
// removes (quadratic convergence).
const (
	maxRefineRounds = 30
	smallAngle      = 1e-4
)

// refineColumns makes the active columns of w (m×n, see activeColumns)
// mutually orthogonal, to a cosine ≤ tol, by orthogonal transformations
// applied to w and v alike, so that a·v = w is preserved; c holds wᵀw on
// entry and on return. It returns the active columns of the result, and
// false if the rounds did not converge.
//
// Each round takes the pairs of active columns whose cosine exceeds tol and
// their Jacobi angles θ (tan 2θ = 2c_pq/(c_qq − c_pp)), and
//   - first rotates the small-angle pairs (|θ| ≤ smallAngle) all at once,
//     except those within one of the clusters below: x[:, S] ←
//     x[:, S]·orth(I + K) for the columns S they involve, K the skew matrix
//     of the angles (one GEMM; rotations by angles ≤ θ commute up to O(θ²),
//     so the next round sees cosines O(θ²): quadratic convergence). This
//     removes from small columns their components along larger ones,
//     which can dominate them;
//   - then splits the columns L of the pairs with |θ| > smallAngle
//     (columns the Gram eigensolver could not separate) into clusters, the
//     connected components of those pairs (clusterComponents), and rotates
//     each cluster's columns among themselves, from their Gram matrix
//     recomputed after the first step: by its eigenvectors (eigSym at the
//     cluster's own scale, which resolves it to O(ε·‖c_LL‖) instead of
//     O(ε·σ₁²)) followed by the same refinement on the gathered columns
//     (refineCluster) when ℓ ≥ clusterEigMin, else by cyclic Jacobi to
//     convergence (O(ℓ) per rotation).
//
// Then c is recomputed from w, so the test is always on the actual columns.
// With upper, w is square and upper triangular (the R of svdViaR), which
// its first rotation, when it moves every column, multiplies as a triangle
// (tri.MulUpper: half the flops).
//
// A pair whose coupling is at most coupling (scanPairs) is relaxed: it is
// not rotated, and the columns of the relaxed pairs of the last round are
// returned, in order, for orthonormalizeColumns; coupling = 0 relaxes
// none.
func refineColumns(w, v, c blas64.General, tol, coupling, floor float64, depth int, upper bool, tr *trace.Trace) (active, relaxed []int, ok bool) {
	n := w.Cols
	inRelaxed := make([]bool, n)
	comp := make([]int, n)     // the cluster of each column of L, −1 outside (clusterComponents)
	var pairs [][2]int         // the large-angle pairs of a round
	kt := make([]float64, n*n) // angles t of the small-angle pairs, kt[p*n+q] for p < q; zero between rounds
	eigRounds := 0
	var moved []int // the columns the last round rotated, in order
	for round := 0; ; round++ {
		if round > 0 {
			updateGram(c, w, moved)
			tr.Markf("gram WᵀW (%d columns moved)", len(moved))
		}
		active = activeColumns(c, floor)
		tr.Markf("depth %d round %d: %d active columns", depth, round, len(active))
		pairs = pairs[:0]
		clear(inRelaxed)
		fail, _, _ := scanPairs(c, active, tol, coupling, kt, &pairs, inRelaxed)
		if fail == 0 {
			for j, in := range inRelaxed {
				if in {
					relaxed = append(relaxed, j)
				}
			}
			return active, relaxed, true
		}
		if round == maxRefineRounds {
			return active, nil, false
		}
		// The columns L of the large-angle pairs, in order, in clusters:
		// the connected components of those pairs (a spectrum of
		// plateaus has one a plateau).
		comps, large := clusterComponents(pairs, comp)
		// Simultaneous small-angle rotations, except within a cluster.
		// They go first: they remove from the columns of L their
		// components along larger columns, which can dominate them and
		// must be gone before each cluster is resolved at its own scale.
		cols := smallPairColumns(kt, n, active, comp)
		moved = append(moved[:0], cols...)
		if len(large) > 0 {
			moved = mergeSorted(moved, large)
		}
		if len(cols) > 0 {
			z := nearIdentity(kt, n, cols)
			sl := len(cols)
			orthNearIdentity(z, sl)
			if upper && round == 0 && sl == n { // nothing has moved w yet
				rotateUpper(w, z)
			} else {
				rotateColumns(w, cols, z)
			}
			rotateColumns(v, cols, z)
			tr.Markf("simultaneous rotations on %d columns", sl)
		}
		// Each cluster among its own columns, which no other cluster's
		// rotations touch. A round counts once against
		// maxClusterEigRounds however many of its clusters it
		// eigen-decomposes.
		usedEig := false
		for _, cluster := range comps {
			// The cluster's Gram matrix, fresh: the small-angle step moved it.
			l := len(cluster)
			cl := make([]float64, l*l)
			gemm.Gram(blas64.General{Rows: l, Cols: l, Stride: l, Data: cl}, gatherColumns(w, cluster))
			if l >= clusterEigMin && eigRounds < maxClusterEigRounds {
				usedEig = true
				if !refineCluster(w, v, cluster, cl, tol, coupling, floor, depth, l < len(active), tr) {
					return active, nil, false
				}
			} else {
				rots := jacobiGram(l, cl, tol, nil)
				for k := range rots {
					rots[k].p, rots[k].q = cluster[rots[k].p], cluster[rots[k].q]
				}
				applyRotations(w, v, rots)
				tr.Markf("jacobi on %d cluster columns, %d rotations", l, len(rots))
			}
		}
		if usedEig {
			eigRounds++
		}
	}
}

// clusterComponents returns the clusters of a round's large-angle pairs
// (scanPairs): the connected components of the graph whose edges are the
// pairs, each a list of increasing columns, in the order of their first
// columns, and the columns L of all of them, increasing. It sets comp[j]
// to the index of column j's cluster, and −1 for the columns outside L
// (comp has length n). A pair of columns of two different clusters has a
// small angle or passes, so the simultaneous rotation handles it, and each
// cluster is resolved by itself (an eigen-decomposition at its own scale:
// a spectrum of plateaus, each a set of nearly equal singular values far
// apart from the next, gives one cluster a plateau instead of one cluster
// of all of them, which the recursion would peel a plateau at a time).
func clusterComponents(pairs [][2]int, comp []int) (clusters [][]int, large []int) {
	for j := range comp {
		comp[j] = -1
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	// Union–find over the columns, by the smaller root; comp holds the
	// parents meanwhile (−1: not in L).
	find := func(i int) int {
		for comp[i] != i {
			comp[i] = comp[comp[i]]
			i = comp[i]
		}
		return i
	}
	for _, pq := range pairs {
		for _, j := range pq {
			if comp[j] < 0 {
				comp[j] = j
			}
		}
		if rp, rq := find(pq[0]), find(pq[1]); rp != rq {
			comp[max(rp, rq)] = min(rp, rq)
		}
	}
	// The roots are the clusters' first columns, so a scan in increasing
	// order meets each cluster's root before its other columns.
	index := make([]int, len(comp)) // at each root, its cluster
	for j := range comp {
		if comp[j] < 0 {
			continue
		}
		r := find(j)
		if r == j {
			index[j] = len(clusters)
			clusters = append(clusters, nil)
		}
		k := index[r]
		clusters[k] = append(clusters[k], j)
		large = append(large, j)
	}
	for k, cl := range clusters {
		for _, j := range cl {
			comp[j] = k
		}
	}
	return clusters, large
}

// mergeSorted returns the union of the increasing lists a and b, in
// increasing order (a's storage is not reused).
func mergeSorted(a, b []int) []int {
	out := make([]int, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default: // equal
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// updateGram recomputes the Gram matrix c = wᵀw after a round that moved
// the columns moved (in order) of w: all of it by gemm.Gram when they are
// more than half of w's columns, else only their rows and columns, as
// w[:, moved]ᵀ·w (2·m·|moved|·n flops against Gram's 1.25·m·n²). The other
// entries are dot products of columns that did not change, so they are
// what a new Gram product would compute, up to its order of summation. Each
// entry of the rows and columns recomputed is written once, from the row of
// the lower-numbered moved column, and mirrored: c stays symmetric bit for
// bit.
func updateGram(c, w blas64.General, moved []int) {
	n := w.Cols
	s := len(moved)
	if 2*s > n {
		gemm.Gram(c, w)
		return
	}
	if s == 0 {
		return
	}
	t := blas64.General{Rows: s, Cols: n, Stride: n, Data: make([]float64, s*n)}
	gemm.General(true, false, 1, gatherColumns(w, moved), w, 0, t)
	isMoved := make([]bool, n)
	for _, p := range moved {
		isMoved[p] = true
	}
	for a, p := range moved {
		row := t.Data[a*n : (a+1)*n]
		for q, x := range row {
			if !isMoved[q] || q >= p {
				c.Data[p*c.Stride+q] = x
				c.Data[q*c.Stride+p] = x
			}
		}
	}
}

// smallPairColumns drops from kt (see refineColumns) the small-angle pairs
// whose columns are both in one cluster (comp, from clusterComponents), and
// returns, in order, the columns of the pairs left: the columns S of the
// simultaneous rotation.
func smallPairColumns(kt []float64, n int, active []int, comp []int) []int {
	parts := parallelTriangle(len(active), func(a0, a1 int) []bool {
		inS := make([]bool, n)
		for ai := a0; ai < a1; ai++ {
			p := active[ai]
			row := kt[p*n : (p+1)*n]
			for _, q := range active[ai+1:] {
				switch {
				case row[q] == 0:
				case comp[p] >= 0 && comp[p] == comp[q]:
					row[q] = 0
				default:
					inS[p], inS[q] = true, true
				}
			}
		}
		return inS
	})
	var cols []int
	for j := range n {
		for _, inS := range parts {
			if inS[j] {
				cols = append(cols, j)
				break
			}
		}
	}
	return cols
}

// nearIdentity returns z = I + K on the columns cols (ℓ×ℓ, row-major):
// Z_ab = t and Z_ba = −t for the tangent t = kt[p·n+q] of the pair
// p = cols[a] < q = cols[b] (see rotation), and clears those entries of
// kt. Rows are split over the cores; each entry is written by one.
func nearIdentity(kt []float64, n int, cols []int) []float64 {
	sl := len(cols)
	z := make([]float64, sl*sl)
	parallelTriangle(sl, func(a0, a1 int) struct{} {
		for a := a0; a < a1; a++ {
			p := cols[a]
			z[a*sl+a] = 1
			row := kt[p*n : (p+1)*n]
			for b := a + 1; b < sl; b++ {
				if t := row[cols[b]]; t != 0 {
					z[a*sl+b] = t
					z[b*sl+a] = -t
					row[cols[b]] = 0
				}
			}
		}
		return struct{}{}
	})
	return z
}

// maxRefineDepth bounds the nesting of refineCluster.
const maxRefineDepth = 8

// refineCluster rotates the columns cols of w and v (cl = their Gram
// matrix, destroyed) by the eigenvectors of cl — Gram preconditioning at the
// cluster's own scale — and then, if recurse (the cluster is a proper
// subset of the active columns) and the nesting allows, refines them among
// themselves to convergence with refineColumns on the gathered m×ℓ block, so
// that the sub-clusters inside are resolved at O(m·ℓ²) a round instead of
// O(m·n²).
func refineCluster(w, v blas64.General, cols []int, cl []float64, tol, coupling, floor float64, depth int, recurse bool, tr *trace.Trace) bool {
	l := len(cols)
	z := make([]float64, l*l)
	if !eig.Sym(l, cl, make([]float64, l), z) {
		return false
	}
	wl, vl := gatherColumns(w, cols), gatherColumns(v, cols)
	zg := blas64.General{Rows: l, Cols: l, Stride: l, Data: z}
	wz := blas64.General{Rows: w.Rows, Cols: l, Stride: l, Data: make([]float64, w.Rows*l)}
	vz := blas64.General{Rows: v.Rows, Cols: l, Stride: l, Data: make([]float64, v.Rows*l)}
	gemm.General(false, false, 1, wl, zg, 0, wz)
	gemm.General(false, false, 1, vl, zg, 0, vz)
	tr.Markf("depth %d: eig on %d cluster columns", depth, l)
	if recurse && depth < maxRefineDepth {
		c := blas64.General{Rows: l, Cols: l, Stride: l, Data: cl}
		gemm.Gram(c, wz)
		// The sub-clusters' relaxed pairs are the caller's: its last
		// round's scan of all the columns finds them again.
		if _, _, ok := refineColumns(wz, vz, c, tol, coupling, floor, depth+1, false, tr); !ok {
			return false
		}
	}
	scatterColumns(w, cols, wz)
	scatterColumns(v, cols, vz)
	return true
}

// gatherColumns returns a contiguous copy of the columns cols of x.
func gatherColumns(x blas64.General, cols []int) blas64.General {
	l := len(cols)
	g := blas64.General{Rows: x.Rows, Cols: l, Stride: l, Data: make([]float64, x.Rows*l)}
	parallelRows(x.Rows, x.Rows*l, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			row, dst := x.Data[i*x.Stride:], g.Data[i*l:(i+1)*l]
			for k, j := range cols {
				dst[k] = row[j]
			}
		}
	})
	return g
}

// scatterColumns writes the columns of g into the columns cols of x.
func scatterColumns(x blas64.General, cols []int, g blas64.General) {
	parallelRows(x.Rows, x.Rows*len(cols), func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			row, src := x.Data[i*x.Stride:], g.Data[i*g.Stride:]
			for k, j := range cols {
				row[j] = src[k]
			}
		}
	})
}

// clusterEigMin is the smallest cluster that refineColumns preconditions
// with eigSym rather than sweeps cyclic Jacobi through: below it the O(ℓ³)
// sweeps are cheaper than an eigen-decomposition plus two m×ℓ×ℓ GEMMs.
const clusterEigMin = 48

// maxClusterEigRounds bounds the eigSym preconditionings of clusters in
// refineColumns, after which cyclic Jacobi (always convergent) takes over;
// measured: ≤ 3 are used by spectra graded down to 1e-14.
const maxClusterEigRounds = 8

// orthNearIdentity replaces z = I + K (l×l row-major, K skew-symmetric:
// the simultaneous small-angle rotations) by an orthogonal matrix close to
// it: P = K + A with A a truncation of the series of √(I − S), S = KᵀK.
// K commutes with S (S = −K²) and so with A, hence
// PᵀP = (A − K)(A + K) = A² − K² = A² + S, which is I for the whole
// series; truncated after S^j, A = I − S/2 − S²/8 − … leaves
// PᵀP − I = S²/4 (j = 1) and S³/8 + S⁴/64 (j = 2), at most ‖K‖_F^{2(j+1)}
// in norm (‖S‖₂ ≤ ‖K‖_F²), and P = I + K + O(‖K‖²), all that the
// quadratic convergence of the simultaneous rotations needs. The least
// j ≥ 0 with ‖K‖_F^{2(j+1)} ≤ ε (2⁻⁵²) is taken — so the truncation errs
// less than one rounding, and P is orthonormal to the rounding of its
// products, O(l·ε), as the Householder LQ's Q is — and for a K too large
// for j ≤ 2 (‖K‖_F > 2.4·10⁻³) the Householder LQ of z instead. A costs
// j − 1 symmetric products after S, and P no product by z (the polar
// factor z·(I + S)^{−1/2} of the previous version took one more l³
// product). The rounds of a graded spectrum's refinement measured ‖K‖_F
// from 10⁻¹⁴ to 1.1·10⁻³ (4096×1024, docs/exact-svd.md), where the LQ
// took 0.19 s at l = 1024 and one or two symmetric products take less.
func orthNearIdentity(z []float64, l int) {
	var kf2 float64 // ‖K‖_F²
	for a := range l {
		for b := range l {
			if a != b {
				kf2 += z[a*l+b] * z[a*l+b]
			}
		}
	}
	const eps = 0x1p-52
	terms := 0
	switch {
	case kf2 <= eps:
		return // PᵀP − I = S: z itself
	case kf2*kf2 <= eps:
		terms = 1
	case kf2*kf2*kf2 <= eps:
		terms = 2
	default:
		householder.LQ(blas64.General{Rows: l, Cols: l, Stride: l, Data: z}, blas64.General{})
		return
	}
	gen := func(d []float64) blas64.General { return blas64.General{Rows: l, Cols: l, Stride: l, Data: d} }
	k := slices.Clone(z)
	for a := range l {
		k[a*l+a] = 0
	}
	sm := make([]float64, l*l)
	gemm.Gram(gen(sm), gen(k)) // S = KᵀK, both triangles
	if terms == 1 {
		for i := range z {
			z[i] -= sm[i] / 2 // the halving is exact
		}
		return
	}
	s2 := k                     // K is no longer needed
	gemm.Gram(gen(s2), gen(sm)) // S² = SᵀS: S is symmetric bit for bit
	for i := range z {
		z[i] -= sm[i]/2 + s2[i]/8
	}
}

// rotateColumns replaces the columns cols of x (in that order) by their
// products with the ℓ×ℓ orthogonal z: x[:, cols] ← x[:, cols]·z. A
// contiguous run of columns (all of them, in a round that moves every
// column) is read in place; otherwise the columns are gathered first. The
// copies are split over the cores.
func rotateColumns(x blas64.General, cols []int, z []float64) {
	l := len(cols)
	r := x.Rows
	c0 := cols[0]
	run := true
	for k := 1; run && k < l; k++ {
		run = cols[k] == c0+k
	}
	yl := blas64.General{Rows: r, Cols: l, Stride: l, Data: make([]float64, r*l)}
	zl := blas64.General{Rows: l, Cols: l, Stride: l, Data: z}
	if run {
		xc := colsView(x, c0, c0+l)
		gemm.General(false, false, 1, xc, zl, 0, yl)
		copyGeneral(xc, yl)
		return
	}
	gemm.General(false, false, 1, gatherColumns(x, cols), zl, 0, yl)
	scatterColumns(x, cols, yl)
}

// rotateUpper replaces the n×n upper triangular x by x·z (z n×n).
func rotateUpper(x blas64.General, z []float64) {
	n := x.Cols
	y := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	tri.MulUpper(y, x, blas64.General{Rows: n, Cols: n, Stride: n, Data: z}, false)
	copyGeneral(x, y)
}

// colsView returns the view of columns [j0, j1) of x (j1 > j0).
func colsView(x blas64.General, j0, j1 int) blas64.General {
	return blas64.General{Rows: x.Rows, Cols: j1 - j0, Stride: x.Stride, Data: x.Data[j0 : (x.Rows-1)*x.Stride+j1]}
}

// jacobiTan returns t = tan θ of the Jacobi rotation that annihilates apq
// in [app apq; apq aqq] (Golub & Van Loan, Algorithm 8.5.1); |t| ≤ 1, and
// t = 0 for apq = 0.
func jacobiTan(app, apq, aqq float64) float64 {
	if apq == 0 {
		return 0
	}
	theta := (aqq - app) / (2 * apq)
	if math.Abs(theta) > 1e150 {
		return 0.5 / theta
	}
	return math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(1+theta*theta))
}

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
				// The diagonal of c is updated by the rotations below and
				// can be driven to zero or below by their rounding in a
				// numerically rank-deficient cluster: such a column is
				// below the cluster's rounding level and is not rotated
				// (its √ would be NaN, and a NaN test must not rotate).
				if !(app > 0 && aqq > 0 && math.Abs(apq) > tol*math.Sqrt(app)*math.Sqrt(aqq)) {
					continue
				}
				rotated = true
				// Symmetric Schur decomposition of [app apq; apq aqq]
				// (Golub & Van Loan, Algorithm 8.5.1).
				t := jacobiTan(app, apq, aqq)
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
// (p×n: the n×n V, or the rows of V of a gathered cluster, p ≥ n). Few
// rotations are applied row by row (each row of w is contiguous, the rows
// are split over the cores): 6 flops per rotation and row. Many rotations
// are first accumulated into J (n×n) and applied by GEMM, w ← w·J,
// v ← v·J, when that is cheaper: 6·r·(m+p) > 6·r·n + 2·(m+p)·n².
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
	gemm.General(false, false, 1, w, j, 0, tmp)
	copyGeneral(w, tmp)
	if v.Rows > m {
		tmp.Data = make([]float64, v.Rows*n)
	}
	tv := blas64.General{Rows: v.Rows, Cols: n, Stride: n, Data: tmp.Data[:v.Rows*n]}
	gemm.General(false, false, 1, v, j, 0, tv)
	copyGeneral(v, tv)
}

// copyGeneral copies src into dst (of src's shape), rows split over the
// cores.
func copyGeneral(dst, src blas64.General) {
	parallelRows(src.Rows, src.Rows*src.Cols, func(i0, i1 int) {
		for i := i0; i < i1; i++ {
			copy(dst.Data[i*dst.Stride:i*dst.Stride+src.Cols], src.Data[i*src.Stride:i*src.Stride+src.Cols])
		}
	})
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
// QR of u[:, 0:g] (orthonormal to O(m·ε) unconditionally; householder,
// not gonum's Dgeqrf/Dorgqr, whose blocks come from the defective Dlarft).
func completeBasis(u blas64.General, g int) {
	m, n := u.Rows, u.Cols
	q := make([]float64, m*n)
	for i := range m {
		copy(q[i*n:i*n+g], u.Data[i*u.Stride:i*u.Stride+g])
	}
	tau := make([]float64, g)
	qg := blas64.General{Rows: m, Cols: n, Stride: n, Data: q}
	householder.Geqrf(blas64.General{Rows: m, Cols: g, Stride: n, Data: q}, tau)
	householder.Orgqr(qg, g, tau)
	for i := range m {
		copy(u.Data[i*u.Stride+g:i*u.Stride+n], q[i*n+g:i*n+n])
	}
}

// allFinite reports whether x holds no NaN or ±Inf.
func allFinite(x []float64) bool {
	var s float64
	for _, v := range x {
		s += v * 0 // NaN for NaN and ±Inf, 0 otherwise
	}
	return s == 0
}
