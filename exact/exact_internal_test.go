package exact

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/loract/loract/internal/gemm"
	"github.com/loract/loract/internal/testmat"
)

// BenchmarkTallOperand times the scaled copy TruncatedSVD makes of a
// Gaussian 4096×1024 *mat.Dense (max|a_ij| ≈ 5, so it is scaled by 2⁻²),
// and of the same numbers as a *lowrank.Dense32 (widened in the copy).
func BenchmarkTallOperand(b *testing.B) {
	a := testmat.Gaussian(4096, 1024, 1)
	b.Run("dtype=f64", func(b *testing.B) {
		for b.Loop() {
			tallOperand(a, false)
		}
	})
	a32 := testmat.To32(a)
	b.Run("dtype=f32", func(b *testing.B) {
		for b.Loop() {
			tallOperand(a32, false)
		}
	})
}

// BenchmarkRefineRoute times TruncatedSVD of the 4096×1024 spectra that
// need refinement with it on W itself (route=W) and on the R factor of
// W = Q·R (route=R, svdViaR): the measurement behind qrRoute. cpu-ms/op
// is the CPU time of all threads per call.
func BenchmarkRefineRoute(b *testing.B) {
	const m, n = 4096, 1024
	for _, sp := range []struct {
		name  string
		sigma []float64
	}{
		{"activation", testmat.ActivationLike(n)},
		{"graded", testmat.Exponential(n, 14*math.Ln10/float64(n-1))},
		{"rank100", testmat.RankPlusNoise(n, 100, 0)},
	} {
		a := testmat.Incoherent(m, n, sp.sigma, 1)
		for _, route := range []string{"W", "R"} {
			b.Run(fmt.Sprintf("route=%s/spectrum=%s/m=%d/n=%d", route, sp.name, m, n), func(b *testing.B) {
				old := qrRoute
				qrRoute = route == "R"
				defer func() { qrRoute = old }()
				c0 := cpuSeconds()
				for b.Loop() {
					if _, err := TruncatedSVD(a, n); err != nil {
						b.Fatal(err)
					}
				}
				// CPU time of all threads: robust to other programs on a
				// shared machine, unlike ns/op.
				b.ReportMetric((cpuSeconds()-c0)*1e3/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// TestOrthNearIdentity: for z = I + K with K skew at ‖K‖_F from 10⁻¹⁰
// (z kept) through the series of one and two terms to 10⁻² (the
// Householder LQ), the result is orthogonal within 4·l·ε in the max norm
// (the rounding of its l-term products) and within 2·‖K‖_F² of z (the
// series differs from z by S/2 + S²/8, at most ‖K‖_F² in norm; the LQ's Q
// by as much to first order).
func TestOrthNearIdentity(t *testing.T) {
	const l = 96
	eps := 0x1p-52
	rng := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct {
		size   float64
		oneRot bool
	}{
		{1e-10, false}, {1e-6, false}, {1e-4, false}, {1e-3, false}, {1e-2, false},
		// One rotation: ‖K‖₂ = ‖K‖_F/√2, so S's norm is ‖K‖_F²/2 rather than
		// spread over l dimensions, and a wrong term of the series shows
		// (at the top of each series' range, 1.2·10⁻⁴ and 2.4·10⁻³).
		{1.2e-4, true}, {2e-3, true},
	} {
		size := c.size
		k := make([]float64, l*l)
		var f float64
		for a := range l {
			for b := a + 1; b < l; b++ {
				v := rng.NormFloat64()
				if c.oneRot && (a != 3 || b != 70) {
					v = 0
				}
				k[a*l+b], k[b*l+a] = v, -v
				f += 2 * v * v
			}
		}
		z := make([]float64, l*l)
		for i := range k {
			z[i] = k[i] * size / math.Sqrt(f)
		}
		for a := range l {
			z[a*l+a] = 1
		}
		z0 := slices.Clone(z)
		orthNearIdentity(z, l)
		var orth, dist float64
		for a := range l {
			for b := range l {
				var d float64
				for c := range l {
					d += z[c*l+a] * z[c*l+b] // (zᵀz)_ab
				}
				if a == b {
					d--
				}
				orth = math.Max(orth, math.Abs(d))
				dist = math.Max(dist, math.Abs(z[a*l+b]-z0[a*l+b]))
			}
		}
		assert.LessOrEqual(t, orth, 4*l*eps, "‖K‖_F = %g: orthogonality", size)
		assert.LessOrEqual(t, dist, 2*size*size+4*eps, "‖K‖_F = %g: distance to I + K", size)
		if size*size <= eps {
			assert.Equal(t, z0, z, "‖K‖_F² ≤ ε: z is kept")
		}
	}
}

// TestScanPairs checks the parallel pair test of a refinement round
// (scanPairs, smallPairColumns, nearIdentity) against the serial loops
// it replaced, written out here, on 1, 2 and 3 cores: a 400×400 Gram-like
// matrix whose off-diagonal entries are a mix of passing, small-angle and
// large-angle pairs, with some columns inactive and some whose pairs
// all pass. The counts, the tangents,
// the large columns, the rotation's columns and z must agree exactly.
func TestScanPairs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	const n = 400
	rnd := rand.New(rand.NewPCG(5, 6))
	c := make([]float64, n*n)
	inactive := 0
	for j := range n {
		c[j*n+j] = math.Pow(10, -6*rnd.Float64())
		if j%17 == 3 {
			c[j*n+j] = 1e-40 // below the floor: inactive
			inactive++
		}
	}
	for p := range n {
		for q := p + 1; q < n; q++ {
			s := math.Sqrt(c[p*n+p] * c[q*n+q])
			var x float64
			switch r := rnd.Float64(); {
			case r < 0.3 || p%23 == 5 || q%23 == 5: // passes (columns 5, 28, … always)
				x = 1e-15 * s * (rnd.Float64() - 0.5)
			case r < 0.995: // a small angle unless the norms are close
				x = 1e-9 * s * (rnd.Float64() - 0.5)
			default: // a large angle
				x = 0.3 * s * (rnd.Float64() - 0.5)
			}
			c[p*n+q], c[q*n+p] = x, x
		}
	}
	// The coupling floor relaxes many of the small-angle pairs whose
	// smaller column is below about 10⁻², and some large-angle ones.
	const tol, floor, coupling = 1e-13, 1e-15, 1e-12
	g := blas64.General{Rows: n, Cols: n, Stride: n, Data: c}
	active := activeColumns(g, floor)
	require.Len(t, active, n-inactive)
	// The serial reference.
	wantLarge := make([]bool, n)
	wantKt := make([]float64, n*n)
	wantFail, wantLargePairs, wantRelaxedPairs := 0, 0, 0
	wantRelaxed := make([]bool, n)
	type pair struct {
		p, q int
		t    float64
	}
	var small []pair
	adj := make([][]int, n) // the large-angle pairs
	for ai, p := range active {
		for _, q := range active[ai+1:] {
			apq, app, aqq := c[p*n+q], c[p*n+p], c[q*n+q]
			if math.Abs(apq) <= tol*math.Sqrt(app)*math.Sqrt(aqq) {
				continue
			}
			if math.Abs(apq)/max(math.Sqrt(app), math.Sqrt(aqq)) <= coupling {
				wantRelaxedPairs++
				wantRelaxed[p], wantRelaxed[q] = true, true
				continue
			}
			wantFail++
			tn := jacobiTan(app, apq, aqq)
			if math.Abs(tn) <= smallAngle {
				small = append(small, pair{p, q, tn})
				continue
			}
			wantLargePairs++
			wantLarge[p], wantLarge[q] = true, true
			adj[p] = append(adj[p], q)
			adj[q] = append(adj[q], p)
		}
	}
	// The clusters: connected components of the large-angle pairs, by a
	// search from each column of L in order.
	wantComp := make([]int, n)
	for j := range wantComp {
		wantComp[j] = -1
	}
	var wantComps [][]int
	for j := range n {
		if !wantLarge[j] || wantComp[j] >= 0 {
			continue
		}
		k := len(wantComps)
		members := []int{j}
		wantComp[j] = k
		for i := 0; i < len(members); i++ {
			for _, q := range adj[members[i]] {
				if wantComp[q] < 0 {
					wantComp[q] = k
					members = append(members, q)
				}
			}
		}
		slices.Sort(members)
		wantComps = append(wantComps, members)
	}
	inS := make([]bool, n)
	for _, pr := range small {
		if !(wantComp[pr.p] >= 0 && wantComp[pr.p] == wantComp[pr.q]) {
			inS[pr.p], inS[pr.q] = true, true
			wantKt[pr.p*n+pr.q] = pr.t
		}
	}
	var wantCols []int
	for j := range n {
		if inS[j] {
			wantCols = append(wantCols, j)
		}
	}
	sl := len(wantCols)
	wantZ := make([]float64, sl*sl)
	for a, p := range wantCols {
		wantZ[a*sl+a] = 1
		for b := a + 1; b < sl; b++ {
			if tn := wantKt[p*n+wantCols[b]]; tn != 0 {
				wantZ[a*sl+b], wantZ[b*sl+a] = tn, -tn
			}
		}
	}
	require.Greater(t, wantLargePairs, 10)
	require.Greater(t, wantRelaxedPairs, 1000)
	require.Greater(t, len(wantComps), 1) // more than one cluster
	require.Greater(t, len(small), 10000)
	require.Less(t, sl, len(active)) // some columns take no part
	for _, procs := range []int{1, 2, 3} {
		runtime.GOMAXPROCS(procs)
		fail, nLarge := failingPairs(g, tol, coupling, floor)
		require.Equal(t, wantFail, fail, "%d cores: failing pairs", procs)
		require.Equal(t, wantLargePairs, nLarge, "%d cores: large pairs", procs)
		kt := make([]float64, n*n)
		var pairs [][2]int
		relaxed := make([]bool, n)
		fail, nLarge, nRelaxed := scanPairs(g, active, tol, coupling, kt, &pairs, relaxed)
		require.Equal(t, []int{wantFail, wantLargePairs, wantRelaxedPairs}, []int{fail, nLarge, nRelaxed}, "%d cores: counts", procs)
		require.Equal(t, wantRelaxed, relaxed, "%d cores: the relaxed pairs' columns", procs)
		require.Len(t, pairs, wantLargePairs, "%d cores: large pairs listed", procs)
		comp := make([]int, n)
		comps, large := clusterComponents(pairs, comp)
		var wantL []int
		for j, l := range wantLarge {
			if l {
				wantL = append(wantL, j)
			}
		}
		require.Equal(t, wantL, large, "%d cores: large columns", procs)
		require.Equal(t, wantComps, comps, "%d cores: clusters", procs)
		require.Equal(t, wantComp, comp, "%d cores: the columns' clusters", procs)
		cols := smallPairColumns(kt, n, active, comp)
		require.Equal(t, wantCols, cols, "%d cores: rotated columns", procs)
		require.Equal(t, wantKt, kt, "%d cores: tangents", procs)
		require.Equal(t, wantZ, nearIdentity(kt, n, cols), "%d cores: z", procs)
		require.Equal(t, make([]float64, n*n), kt, "%d cores: kt is cleared for the next round", procs)
	}
}

// TestUpdateGram checks the partial recomputation of a round's Gram matrix:
// after columns moved of w change, updateGram(c, w, moved) leaves the
// entries between unmoved columns bit for bit as they were, makes every
// entry involving a moved column the dot product of the new columns within
// γ_m·Σ_k |w_kp·w_kq| (any order of summation), keeps c symmetric bit for
// bit, and with more than half the columns moved is gemm.Gram exactly.
func TestUpdateGram(t *testing.T) {
	const m, n = 300, 40
	gamma := float64(m) * 0x1p-53 / (1 - float64(m)*0x1p-53)
	rng := rand.New(rand.NewPCG(31, 32))
	for _, moved := range [][]int{{}, {0}, {3, 17, 39}, {1, 2, 5, 8, 13, 21, 34}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}} {
		w := testmat.Gaussian(m, n, uint64(len(moved))).RawMatrix()
		c := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
		gemm.Gram(c, w)
		c0 := slices.Clone(c.Data)
		for _, p := range moved {
			for k := range m {
				w.Data[k*n+p] = rng.NormFloat64()
			}
		}
		updateGram(c, w, moved)
		if 2*len(moved) > n {
			want := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
			gemm.Gram(want, w)
			require.Equal(t, want.Data, c.Data, "%d moved: the whole Gram product", len(moved))
			continue
		}
		isMoved := make([]bool, n)
		for _, p := range moved {
			isMoved[p] = true
		}
		for p := range n {
			for q := range n {
				require.Equal(t, c.Data[p*n+q], c.Data[q*n+p], "%d moved: (%d, %d) symmetric", len(moved), p, q)
				if !isMoved[p] && !isMoved[q] {
					require.Equal(t, c0[p*n+q], c.Data[p*n+q], "%d moved: (%d, %d) unchanged", len(moved), p, q)
					continue
				}
				var s, abs float64
				for k := range m {
					s += w.Data[k*n+p] * w.Data[k*n+q]
					abs += math.Abs(w.Data[k*n+p] * w.Data[k*n+q])
				}
				require.InDelta(t, s, c.Data[p*n+q], gamma*abs, "%d moved: (%d, %d)", len(moved), p, q)
			}
		}
	}
}
