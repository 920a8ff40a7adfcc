package gpu

import (
	"math"
	"unsafe"
)

// The subspace route of a truncated ExactSVD (k ≪ q): the k largest
// eigenpairs of the float64 Gram matrix G = op(A)ᵀ·op(A) by subspace
// iteration with Rayleigh–Ritz (Saad, Numerical Methods for Large
// Eigenvalue Problems, 2011, §5.2) instead of cuSOLVER's dsyevdx, whose
// reduction of all of G to tridiagonal form costs what q, not k, implies
// (docs/gpu.md, "Exact SVD"). It keeps an ℓ = 2k column basis V:
// V ← orth((G − μ·I)·V), one float64 product of q²·ℓ multiply–adds and
// one Cholesky QR pass per step (μ = 0 for the first subspaceFirst
// steps, then a Chebyshev cycle of shifts that subspacePredict reads off
// the Cholesky factor),
// and checks where that factor predicts convergence (and, should the
// check fail, where the observed residuals predict it): Rayleigh–Ritz on
// the basis with the unshifted G (an ℓ×ℓ dsyevd), and the residual of
// every kept Ritz pair, ‖G·v_j − λ_j·v_j‖₂. It accepts when each residual
// is at most q·2⁻⁵³·λ₁, the size of the Gram matrix's own rounding error
// (ExactSVD's doc):
// each λ_j is then within that distance of an eigenvalue of G (for a
// symmetric matrix, |λ − θ| ≤ ‖G·v − θ·v‖ for some eigenvalue λ and any
// unit v), the accuracy the dsyevdx route is documented with; and the
// Ritz values do not exceed the leading eigenvalues (θ_j ≤ λ_j, Cauchy
// interlacing). What a residual cannot show is an eigenvector missing
// from the basis altogether: the Gaussian start makes that an event of
// probability zero, and each step's rounding brings every direction
// back. Spectra
// without a gap after λ_k converge slowly (the error shrinks by
// λ_{ℓ+1}/λ_k a step); where the prediction exceeds subspaceMax steps, a
// factorisation breaks down (G of rank below ℓ), or a check fails
// subspaceChecks times, the route gives up and ExactSVD falls back to
// dsyevdx on the unchanged upper triangle of G.
const (
	subspaceMinQ   = 512 // smallest q that tries the route
	subspaceFirst  = 4   // steps before the first check
	subspaceMax    = 60  // steps in all before falling back
	subspaceChecks = 3   // Rayleigh–Ritz checks before falling back
	subspaceMargin = 1   // steps beyond the first check's prediction
)

// subspaceRun describes the last subspace route: its steps, its checks,
// its largest residual ÷ λ₁ at the last check, and whether it was used.
type subspaceRun struct {
	Steps, Checks int
	Residual      float64
	Used, Split   bool
}

// subspaceRoute reports whether ExactSVD of q columns to rank k tries
// the subspace route first.
func (b *Backend) subspaceRoute(q, k int) bool {
	return !b.noSubspace && q >= subspaceMinQ && 8*k <= q
}

// subspaceEig writes the k largest eigenpairs of the q×q float64 g (its
// upper triangle as dsyrk wrote it; the lower triangle is overwritten
// with it) as σ_j = √λ_j, descending, into sdev and the eigenvectors into
// vk (q×k, leading dimension q), using x (q×k float64) as scratch. It
// reports false, with g's upper triangle unchanged, where the route gives
// up (see above).
func (b *Backend) subspaceEig(g uintptr, q, k int, sdev, vk, x uintptr) (bool, error) {
	l := min(2*k, q)
	// Two devInfos a split step, one a check's pass and one its dsyevd.
	nInfo := 2*subspaceMax + 2*subspaceChecks + 2
	bytes := 8*(2*q*l+2*l*l+l+l*k+k) + 4*nInfo
	base, err := b.buf(&b.sc.exactS, bytes)
	if err != nil {
		return false, err
	}
	v, z := base, base+uintptr(8*q*l)
	h := z + uintptr(8*q*l)
	rinv := h + uintptr(8*l*l)
	wk := rinv + uintptr(8*l*l)
	// The residuals, the Ritz values and the devInfos, consecutive: one
	// download per check.
	res := wk + uintptr(8*l*k)
	theta := res + uintptr(8*k)
	infos := theta + uintptr(8*l)
	if err := b.api.check(b.api.cuMemsetD8Async(infos, 0, uintptr(4*nInfo), b.stream), "cuMemsetD8Async"); err != nil {
		return false, err
	}
	if err := b.symmetrize(g, q); err != nil {
		return false, err
	}
	// A Gaussian start (float32 normals widened), orthonormalised.
	if err := b.normal(z, q, q, l, 0x5eed); err != nil {
		return false, err
	}
	if err := b.copy2D(v, codeF64, 1, q, z, codeF32, 1, q, q, l, false); err != nil {
		return false, err
	}
	w, lw, err := b.potrfWork(h, l)
	if err != nil {
		return false, err
	}
	st := subspaceState{q: q, l: l, k: k, g: g, h: h, rinv: rinv, wk: wk, sdev: sdev, vk: vk, x: x, res: res, theta: theta, infos: infos,
		potrfW: w, potrfLW: lw, nInfo: nInfo}
	if err := b.subspaceOrth(&st, v); err != nil {
		return false, err
	}
	var sp *subspaceSplit
	if b.splitSteps(l) {
		if sp, err = b.newSubspaceSplit(&st); err != nil {
			return false, err
		}
		defer sp.close(b)
	}
	run := subspaceRun{Split: sp != nil}
	defer func() { b.lastSubspace = run }()
	var cycle []float64 // the shifts, set from the first prediction: step i after it takes cycle[i mod len]
	step := func(n int) error {
		shifts := make([]float64, n)
		if len(cycle) > 0 {
			for j := range shifts {
				shifts[j] = cycle[(run.Steps-subspaceFirst+j)%len(cycle)]
			}
		}
		if sp != nil {
			if err := b.subspaceStepsSplit(&st, sp, v, z, shifts); err != nil {
				return err
			}
			run.Steps += n
			return nil
		}
		for _, shift := range shifts {
			if err := b.subspaceMulG(&st, z, v, shift); err != nil {
				return err
			}
			if b.trsmOrth || l > maxTrInvRows {
				if err := b.subspaceOrth(&st, z); err != nil {
					return err
				}
				v, z = z, v
			} else if err := b.subspaceOrthInto(&st, v, z); err != nil {
				return err
			}
			run.Steps++
		}
		return nil
	}
	if err := step(subspaceFirst); err != nil {
		return false, err
	}
	steps, cycle, err := b.subspacePredict(&st, sp != nil)
	if err != nil {
		return false, err
	}
	if steps < 0 {
		return false, nil
	}
	for run.Checks < subspaceChecks {
		if err := step(steps); err != nil {
			return false, err
		}
		resid, rate, err := b.ritzCheck(&st, v, z)
		if err != nil {
			return false, err
		}
		run.Checks++
		run.Residual = resid
		if resid <= float64(q)*0x1p-53 {
			run.Used = true
			return true, nil
		}
		// The residuals shrink by about rate a step: predict the steps to
		// the tolerance, and give up where that is too many (or NaN).
		// Two steps of margin: the rate from an early check is
		// optimistic (θ_ℓ is still below λ_ℓ), and a failed check costs
		// more than a few steps.
		need := math.Ceil(math.Log(float64(q)*0x1p-53/resid)/math.Log(rate)) + 2
		if !(rate < 1) || !(need > 0) || run.Steps+int(need) > subspaceMax {
			break
		}
		steps = int(need)
	}
	// dsyevdx reads the upper triangle only, which nothing here wrote.
	return false, nil
}

// subspacePredict returns the steps still to go before the first
// Rayleigh–Ritz check and the shifts μ of the steps from here on (a cycle:
// step i takes shifts[i mod len(shifts)]), predicted from the diagonal d
// of the last Cholesky factor R (G·V = V'·R). In subspace iteration R's
// diagonal tends to the leading eigenvalues in order, and already after
// subspaceFirst steps d_ℓ/d_k estimates the rate λ_{ℓ+1}/λ_k (from above:
// the trailing columns still mix in larger eigenvalues) better than the
// early Ritz values do (from below; docs/gpu.md). The eigenvalues the
// basis must damp, λ_{ℓ+1} … λ_q, then lie in [0, β], β = chebWiden·d_ℓ
// (d_ℓ itself can fall below λ_{ℓ+1}: see chebWiden). The steps
// after it iterate with G − μ_i·I, the shifts μ_i the roots of the
// Chebyshev polynomial T_D of [0, β] (β/2·(1 + cos((2i − 1)π/(2D))),
// i = 1 … D = chebDegree, in an order that alternates the ends): a cycle
// of D steps multiplies the basis by T_D((2G − β)/β) up to a scale, which
// is at most 1 in magnitude on [0, β] and T_D(y_k), y_k = (2d_k − β)/β,
// at λ_k, the least that any polynomial of degree D bounded by 1 there
// reaches at λ_k (Chebyshev's extremal property). So the rate per step is
// ρ_T = T_D(y_k)^(−1/D): ≈ 0.115 on the benchmark's spectrum, where the one
// shift β/2 of the previous version (its optimum among constant shifts:
// ρ_μ = max(β − μ, μ)/(d_k − μ)) gave ≈ 0.16 and no shift ≈ 0.28. Every
// μ_i < β < d_k keeps the k wanted eigenvalues the largest of |λ − μ_i|,
// the constant shift's condition. The kept pairs' residual ÷ λ₁ after s
// steps is modelled as (d_k/d_1)·ρ^subspaceFirst·ρ_T^(s − subspaceFirst)
// (partial cycles as if at the average rate); the prediction is the first
// s where that meets the tolerance, plus subspaceMargin. With the test
// switch constShift the cycle is the one shift β/2 and the rate ρ_μ.
// Steps −1 means give up (dsyevdx): a factorisation broke down, a
// diagonal is not positive, ρ ≥ 1, or the prediction exceeds subspaceMax
// steps. One download of ℓ values and the devInfos, one host
// synchronisation. A wrong prediction or shift costs time only: the
// check, on the unshifted G, decides.
func (b *Backend) subspacePredict(st *subspaceState, split bool) (steps int, shifts []float64, err error) {
	l, k := st.l, st.k
	// The diagonal of h (stride ℓ + 1) into theta, beside the devInfos;
	// after split steps, the diagonals of the halves' factors R_A and R_B
	// (stride ℓ/2 + 1), which are those of the whole basis's R.
	if split {
		hl := l / 2
		for i := range 2 {
			if err := b.copy2D(st.theta+uintptr(8*hl*i), codeF64, 1, 1, st.h+uintptr(8*hl*hl*i), codeF64, hl+1, 0, hl, 1, false); err != nil {
				return 0, nil, err
			}
		}
	} else if err := b.copy2D(st.theta, codeF64, 1, 1, st.h, codeF64, l+1, 0, l, 1, false); err != nil {
		return 0, nil, err
	}
	d, ok, err := b.subspaceFetch(st, st.theta, l)
	if err != nil {
		return 0, nil, err
	}
	if !ok || !(d[0] > 0 && d[k-1] > 0 && d[l-1] > 0) {
		return -1, nil, nil
	}
	rate := d[l-1] / d[k-1]
	if !(rate < 1) {
		return -1, nil, nil
	}
	beta := d[l-1]
	var logRate float64 // log of the rate per step
	if b.constShift {
		mu := beta / 2
		shifts = []float64{mu}
		logRate = math.Log(max(beta-mu, mu) / (d[k-1] - mu))
	} else {
		beta *= chebWiden
		if !(beta < d[k-1]) {
			// λ_k inside the interval: ρ ≥ 1/chebWiden ≈ 0.87, where
			// the constant shift's rate ρ_μ ≥ 0.77 needed more than
			// subspaceMax steps unless d_1/d_k > 6·10⁵ (q = 4096);
			// dsyevdx takes over. (acosh would give NaN, and the same
			// answer below.)
			return -1, nil, nil
		}
		shifts = chebShifts(beta, chebDegree)
		logRate = -logChebT(chebDegree, (2*d[k-1]-beta)/beta) / chebDegree
	}
	// log(tol) = log(d_k/d_1) + first·log ρ + (s − first)·log ρ_T.
	after := math.Log(float64(st.q)*0x1p-53*d[0]/d[k-1]) - subspaceFirst*math.Log(rate)
	more := math.Ceil(after/logRate) + subspaceMargin
	if !(more <= subspaceMax-subspaceFirst) {
		return -1, nil, nil
	}
	return max(int(more), 0), shifts, nil
}

// chebWiden widens the Chebyshev interval [0, d_ℓ] to [0, chebWiden·d_ℓ]:
// after subspaceFirst steps d_ℓ measured 0.91–1.14·λ_{ℓ+1} (a NumPy
// simulation of the route, bench/subspace/chebshift_sim.py: the benchmark's
// spectrum, k = 32 … 512, eight starts each), and an eigenvalue just
// above the interval escapes the damping (T_4 is 6 at 1.1 times the
// interval's end), which the device met at k = 32: its first check
// failed. With 1.15 the interval holds λ_{ℓ+1} wherever d_ℓ ≥ 0.87·λ_{ℓ+1},
// and the rate per step on the benchmark's spectrum goes from 0.098 to
// 0.115.
const chebWiden = 1.15

// chebDegree is the degree D of the Chebyshev cycle of the subspace
// route's shifts (subspacePredict): on the benchmark's spectrum (d_k ≈
// 3.6·d_ℓ, a rate λ_{ℓ+1}/λ_k ≈ 0.28), on [0, d_ℓ], its rate per step is
// 0.116 for D = 2, 0.098 for 4 and 0.089 for 8, against 0.082 in the
// limit; 4 takes most of that, and a first check seldom falls inside a
// long cycle.
const chebDegree = 4

// logChebT returns log T_d(y) for y ≥ 1, T_d(y) = cosh(d·acosh y), as
// x + log1p(e^(−2x)) − log 2 with x = d·acosh y, finite for every finite y.
func logChebT(d int, y float64) float64 {
	x := float64(d) * math.Acosh(y)
	return x + math.Log1p(math.Exp(-2*x)) - math.Ln2
}

// chebShifts returns the d roots of the Chebyshev polynomial T_d of the
// interval [0, beta], β/2·(1 + cos((2i − 1)π/(2d))), from the ends
// inwards, alternating (largest, smallest, second largest, …): a cycle cut
// short by a check has then damped both ends of the interval.
func chebShifts(beta float64, d int) []float64 {
	roots := make([]float64, d)
	for i := range d {
		roots[i] = beta / 2 * (1 + math.Cos(float64(2*i+1)*math.Pi/float64(2*d)))
	}
	out := make([]float64, 0, d)
	for lo, hi := d-1, 0; lo >= hi; lo, hi = lo-1, hi+1 {
		out = append(out, roots[hi])
		if lo != hi {
			out = append(out, roots[lo])
		}
	}
	return out
}

// subspaceState is the scratch of one subspace route: the Gram matrix g,
// the ℓ×ℓ h, the ℓ×k leading Ritz vectors wk, the outputs sdev and vk, the
// q×k x, dpotrf's workspace for h, and res (k), theta (ℓ) and infos
// (nInfo int32 devInfos, used so far) consecutive.
type subspaceState struct {
	q, l, k                                        int
	g, h, rinv, wk, sdev, vk, x, res, theta, infos uintptr
	potrfW                                         uintptr
	potrfLW                                        int32
	nInfo, used                                    int
}

// slot returns the next devInfo slot.
func (st *subspaceState) slot() uintptr {
	if st.used == st.nInfo {
		panic("gpu: subspace route out of devInfo slots")
	}
	st.used++
	return st.infos + uintptr(4*(st.used-1))
}

// subspaceMulG writes dst = (G − shift·I)·src for q×ℓ float64 bases.
func (b *Backend) subspaceMulG(st *subspaceState, dst, src uintptr, shift float64) error {
	return b.mulShifted(st.g, st.q, dst, src, st.l, shift)
}

// mulShifted writes dst = (G − shift·I)·src for the q×q float64 g and
// q×n float64 bases (leading dimension q), on b's stream.
func (b *Backend) mulShifted(g uintptr, q int, dst, src uintptr, n int, shift float64) error {
	if shift == 0 {
		return b.dgemm(false, false, q, n, q, g, q, src, q, dst, q)
	}
	if err := b.api.check(b.api.cuMemcpyDtoDAsync(dst, src, uintptr(8*q*n), b.stream), "cuMemcpyDtoDAsync"); err != nil {
		return err
	}
	return b.dgemmBeta(false, false, q, n, q, g, q, src, q, -shift, dst, q)
}

// subspaceFetch downloads the n float64 values that end where st's
// devInfos start (src = st.infos − 8n) together with the devInfos used so
// far, in one transfer (one host synchronisation), and reports whether
// every factorisation so far succeeded (all devInfos 0).
func (b *Backend) subspaceFetch(st *subspaceState, src uintptr, n int) (vals []float64, ok bool, err error) {
	if src+uintptr(8*n) != st.infos {
		panic("gpu: subspaceFetch of values not beside the devInfos")
	}
	host := make([]float64, n+(st.used+1)/2)
	if err := b.download(unsafe.Pointer(&host[0]), src, 8*n+4*st.used); err != nil {
		return nil, false, err
	}
	for _, s := range unsafe.Slice((*int32)(unsafe.Pointer(&host[n])), st.used) {
		if s != 0 {
			return host[:n], false, nil
		}
	}
	return host[:n], true, nil
}

// subspaceOrth orthonormalises the q×ℓ basis y by one Cholesky QR pass,
// its devInfo into the next slot.
func (b *Backend) subspaceOrth(st *subspaceState, y uintptr) error {
	return b.orth64(y, st.q, st.l, st.h, st.slot(), st.potrfW, st.potrfLW)
}

// subspaceOrthInto writes into dst the q×ℓ float64 basis src·R⁻¹ with
// RᵀR = srcᵀ·src: the Cholesky QR pass of subspaceOrth with dtrsm's
// triangular solve replaced by the inverse (trinv64d) and one product,
// which cost less than dtrsm for ℓ ≤ maxTrInvRows (docs/gpu.md, "Exact
// SVD"). The explicit inverse makes the columns' error κ(R)·u instead of
// the solve's, which is immaterial here: the steps need a
// well-conditioned basis of the same span, and the check orthonormalises
// its basis once more (by subspaceOrth) before Rayleigh–Ritz. Its devInfo
// goes into the next slot.
func (b *Backend) subspaceOrthInto(st *subspaceState, dst, src uintptr) error {
	q, l := st.q, st.l
	if err := b.cholGram64(src, q, l, st.h, st.slot(), st.potrfW, st.potrfLW); err != nil {
		return err
	}
	if err := b.trInv64D(st.rinv, l, st.h, l, l); err != nil {
		return err
	}
	return b.dgemm(false, false, q, l, l, src, q, st.rinv, l, dst, q)
}

// maxTrInvRows is the largest ℓ whose steps take subspaceOrthInto:
// measured on an H200, at ℓ = 256 a step costs 0.05 ms less than with
// dtrsm (k = 128: 12.0 against 12.5 ms), at ℓ = 64 the same, at ℓ = 1024
// far more (trinv64d's column sweeps grow with ℓ: k = 512 67.3 against
// 53.9 ms); ℓ = 512 was not measured. trinv64d itself serves ℓ ≤ 1024.
const maxTrInvRows = 256

// ritzCheck orthonormalises the basis v once more, forms the Rayleigh
// quotient H = vᵀ·G·v (ℓ×ℓ), its eigenpairs (dsyevd), the k leading Ritz
// pairs (σ into sdev, vectors into vk) and their residuals, and returns
// the largest residual ÷ λ₁ and the rate θ_ℓ/θ_k, the ratio of the
// smallest Ritz value to the k-th largest; a breakdown of any step so far
// (a devInfo ≠ 0) or a NaN returns NaN. It synchronises with the host
// once.
func (b *Backend) ritzCheck(st *subspaceState, v, z uintptr) (resid, rate float64, err error) {
	q, l, k := st.q, st.l, st.k
	if err := b.subspaceOrth(st, v); err != nil {
		return 0, 0, err
	}
	if err := b.subspaceMulG(st, z, v, 0); err != nil {
		return 0, 0, err
	}
	if err := b.dgemm(true, false, l, l, q, v, q, z, q, st.h, l); err != nil {
		return 0, 0, err
	}
	if err := b.dsyevd(st.h, l, st.theta, st.slot()); err != nil {
		return 0, 0, err
	}
	if err := b.svdEig(st.sdev, st.wk, l, st.theta, st.h, l, l, k, l); err != nil {
		return 0, 0, err
	}
	// V_k = V·W_k and G·V_k = Z·W_k.
	if err := b.dgemm(false, false, q, k, l, v, q, st.wk, l, st.vk, q); err != nil {
		return 0, 0, err
	}
	if err := b.dgemm(false, false, q, k, l, z, q, st.wk, l, st.x, q); err != nil {
		return 0, 0, err
	}
	if err := b.eigResid(st.res, st.x, st.vk, q, st.sdev, q, k); err != nil {
		return 0, 0, err
	}
	host, ok, err := b.subspaceFetch(st, st.res, k+l)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return math.NaN(), math.NaN(), nil
	}
	th := host[k : k+l]
	lam1 := th[l-1]
	for _, r2 := range host[:k] {
		if math.IsNaN(r2) {
			return math.NaN(), math.NaN(), nil
		}
		resid = max(resid, math.Sqrt(r2)/lam1)
	}
	return resid, th[0] / th[l-k], nil
}

// orth64 replaces the q×l float64 y by y·R⁻¹ with RᵀR = yᵀy: one Cholesky
// QR pass (cholGram64, then dtrsm), devInfo into info. It does not wait
// for the stream.
func (b *Backend) orth64(y uintptr, q, l int, h, info, w uintptr, lw int32) error {
	if err := b.cholGram64(y, q, l, h, info, w, lw); err != nil {
		return err
	}
	b.sc64[0] = 1
	return checkBLAS(b.api.cublasDtrsm(b.blas, cublasSideRight, cublasFillUpper, cublasOpN, cublasDiagNonUnit, int32(q), int32(l),
		unsafe.Pointer(&b.sc64[0]), h, int32(l), y, int32(q)), "cublasDtrsm_v2")
}

// cholGram64 writes into the upper triangle of the l×l h the Cholesky
// factor R of yᵀy for the q×l float64 y (dsyrk, then potrfOne: chol64 or
// dpotrf with the workspace w of lw elements from potrfWork), devInfo
// into info.
func (b *Backend) cholGram64(y uintptr, q, l int, h, info, w uintptr, lw int32) error {
	b.sc64[0], b.sc64[1] = 1, 0
	if err := checkBLAS(b.api.cublasDsyrk(b.blas, cublasFillUpper, cublasOpT, int32(l), int32(q),
		unsafe.Pointer(&b.sc64[0]), y, int32(q), unsafe.Pointer(&b.sc64[1]), h, int32(l)), "cublasDsyrk_v2"); err != nil {
		return err
	}
	return b.potrfOne(h, l, w, lw, info)
}

// The split steps. A step V ← orth((G − μ·I)·V) costs one product and a
// Cholesky QR pass whose dpotrf is latency: ≈ 0.17 of a step's 0.45 ms
// at ℓ = 256 on an H200, with the multiprocessors idle. The split steps
// cut the basis into halves V = [V_A V_B] of h = ℓ/2 columns and
// orthonormalise them by block Gram–Schmidt, on two streams:
//
//	the backend's: W_A = (G − μ·I)·V_A, R_AᵀR_A = W_AᵀW_A, V_A ← W_A·R_A⁻¹;
//	the side's:    W_B = (G − μ·I)·V_B, then, once V_A is new,
//	               W_B ← W_B − V_A·(V_AᵀW_B), R_BᵀR_B = W_BᵀW_B, V_B ← W_B·R_B⁻¹,
//
// so that each half's product runs while the other's small factorisation
// waits on latency, and the backend's next product starts as soon as its
// half is done. In exact arithmetic this is the step above: [V_A V_B]
// spans (G − μ·I)·V, and R = [R_A V_AᵀW_B; 0 R_B] is the Cholesky factor
// of the whole WᵀW, so R's diagonal (which subspacePredict reads) is the
// halves' diagonals. The one projection, without reorthogonalisation,
// leaves V_B orthogonal to V_A to about the pass's own κ(W)²·u, which the
// steps tolerate as they tolerate the pass's (subspaceOrthInto); the
// check orthonormalises the whole basis again. Events order the streams:
// evA (V_A new, on the backend's stream), evP (the side has read V_A:
// the backend's next write of V_A waits for it) and evB (the side's half
// done: the backend joins it after the steps).
type subspaceSplit struct {
	s             *Backend // the side stream's sibling
	wA, wB        uintptr  // dpotrf workspaces of the halves
	lwA, lwB      int32
	evA, evP, evB uintptr
}

// splitMinRows and splitMaxRows bound the ℓ whose steps are split: the
// halves take trinv64d's R⁻¹ (ℓ/2 ≤ maxTrInvRows). Measured on an H200
// (8192×4096 power law, docs/gpu.md): ℓ = 256 10.6 against 11.8 ms one
// stream, ℓ = 512 18.7 against 22.2, ℓ = 128 level (8.3 against 8.4),
// ℓ = 64 slower (6.65 against 5.97: the halves' products are too small
// to hide anything).
const (
	splitMinRows = 128
	splitMaxRows = 2 * maxTrInvRows
)

// splitSteps reports whether the subspace route splits its steps at
// sketch width l.
func (b *Backend) splitSteps(l int) bool {
	return !b.noSplit && !b.trsmOrth && l%2 == 0 && l >= splitMinRows && l <= splitMaxRows
}

// newSubspaceSplit returns the split steps' state for st: the side
// sibling (made on first use), the halves' workspaces and three events.
func (b *Backend) newSubspaceSplit(st *subspaceState) (*subspaceSplit, error) {
	if b.side == nil {
		s, err := b.Fork()
		if err != nil {
			return nil, err
		}
		b.side = s
	}
	hl := st.l / 2
	sp := &subspaceSplit{s: b.side}
	var err error
	// b's workspace is st.potrfW's buffer (the same slot, at least ℓ's).
	if sp.wA, sp.lwA, err = b.potrfWork(st.h, hl); err != nil {
		return nil, err
	}
	if sp.wB, sp.lwB, err = sp.s.potrfWork(st.h+uintptr(8*hl*hl), hl); err != nil {
		return nil, err
	}
	for _, e := range []*uintptr{&sp.evA, &sp.evP, &sp.evB} {
		if err := b.api.check(b.api.cuEventCreate(e, cuEventDisableTiming), "cuEventCreate"); err != nil {
			sp.close(b)
			return nil, err
		}
	}
	return sp, nil
}

// close releases the split steps' events (the side sibling stays).
func (sp *subspaceSplit) close(b *Backend) {
	for _, e := range []*uintptr{&sp.evA, &sp.evP, &sp.evB} {
		if *e != 0 {
			b.api.cuEventDestroy(*e)
			*e = 0
		}
	}
}

// subspaceStepsSplit runs len(shifts) split steps on the basis v (q×ℓ
// float64, overwritten), with z as the products' scratch, step i with the
// shift shifts[i]: the side stream waits for the backend's work so far,
// and the backend's stream for the side's at the end, so that the caller
// sees the steps done in stream order. The halves' factors are left in st.h (R_A, then R_B,
// each h×h) and the R⁻¹ in st.rinv; each step takes two devInfo slots.
func (b *Backend) subspaceStepsSplit(st *subspaceState, sp *subspaceSplit, v, z uintptr, shifts []float64) error {
	q, hl := st.q, st.l/2
	s := sp.s
	half := uintptr(8 * q * hl)
	va, vb, za, zb := v, v+half, z, z+half
	sq := uintptr(8 * hl * hl)
	ha, hb := st.h, st.h+sq
	ra, rb, c := st.rinv, st.rinv+sq, st.rinv+2*sq
	record := func(x *Backend, ev uintptr) error {
		return b.api.check(b.api.cuEventRecord(ev, x.stream), "cuEventRecord")
	}
	wait := func(x *Backend, ev uintptr) error {
		return b.api.check(b.api.cuStreamWaitEvent(x.stream, ev, 0), "cuStreamWaitEvent")
	}
	// The side starts after the backend's work so far (G, V).
	if err := record(b, sp.evA); err != nil {
		return err
	}
	if err := wait(s, sp.evA); err != nil {
		return err
	}
	for _, shift := range shifts {
		// The backend's half.
		if err := b.mulShifted(st.g, q, za, va, hl, shift); err != nil {
			return err
		}
		if err := b.cholGram64(za, q, hl, ha, st.slot(), sp.wA, sp.lwA); err != nil {
			return err
		}
		if err := b.trInv64D(ra, hl, ha, hl, hl); err != nil {
			return err
		}
		if err := wait(b, sp.evP); err != nil { // the side's last read of V_A
			return err
		}
		if err := b.dgemm(false, false, q, hl, hl, za, q, ra, hl, va, q); err != nil {
			return err
		}
		if err := record(b, sp.evA); err != nil {
			return err
		}
		// The side's half.
		if err := s.mulShifted(st.g, q, zb, vb, hl, shift); err != nil {
			return err
		}
		if err := wait(s, sp.evA); err != nil {
			return err
		}
		if err := s.dgemm(true, false, hl, hl, q, va, q, zb, q, c, hl); err != nil {
			return err
		}
		if err := s.dgemmScaled(false, false, q, hl, hl, -1, va, q, c, hl, 1, zb, q); err != nil {
			return err
		}
		if err := record(s, sp.evP); err != nil {
			return err
		}
		if err := s.cholGram64(zb, q, hl, hb, st.slot(), sp.wB, sp.lwB); err != nil {
			return err
		}
		if err := s.trInv64D(rb, hl, hb, hl, hl); err != nil {
			return err
		}
		if err := s.dgemm(false, false, q, hl, hl, zb, q, rb, hl, vb, q); err != nil {
			return err
		}
	}
	if err := record(s, sp.evB); err != nil {
		return err
	}
	return wait(b, sp.evB)
}
