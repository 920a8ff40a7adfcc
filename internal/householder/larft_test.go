package householder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/gonum"
)

const eps = 0x1p-52 // machine epsilon of float64

// reflectors holds k reflectors of order n in column-wise storage (n×k,
// stride ld), the unit diagonal and the zeros above it stored explicitly
// so that the same array serves both Larft (which ignores them) and the
// unblocked product.
type reflectors struct {
	n, k, ld int
	v, tau   []float64
}

// explicitH returns the n×n product H(0)·H(1)···H(k−1) of the reflectors,
// formed unblocked: starting from I, each H(i) = I − τ_i·v_i·v_iᵀ is
// applied from the right, one rank-1 update at a time.
func (r reflectors) explicitH() []float64 {
	n := r.n
	h := make([]float64, n*n)
	for i := range n {
		h[i*n+i] = 1
	}
	hv := make([]float64, n)
	for i := range r.k {
		// h ← h·(I − τ·v·vᵀ) = h − τ·(h·v)·vᵀ.
		for a := range n {
			var s float64
			for b := range n {
				s += h[a*n+b] * r.v[b*r.ld+i]
			}
			hv[a] = s
		}
		for a := range n {
			for b := range n {
				h[a*n+b] -= r.tau[i] * hv[a] * r.v[b*r.ld+i]
			}
		}
	}
	return h
}

// blockH returns I − V·T·Vᵀ for the n×n identity and t (k×k, upper).
func (r reflectors) blockH(t []float64) []float64 {
	n, k := r.n, r.k
	vt := make([]float64, n*k) // V·T
	for a := range n {
		for j := range k {
			var s float64
			for l := 0; l <= j; l++ {
				s += r.v[a*r.ld+l] * t[l*k+j]
			}
			vt[a*k+j] = s
		}
	}
	h := make([]float64, n*n)
	for a := range n {
		for b := range n {
			var s float64
			for j := range k {
				s += vt[a*k+j] * r.v[b*r.ld+j]
			}
			h[a*n+b] = -s
		}
		h[a*n+a]++
	}
	return h
}

// rowWise returns the reflectors in row-wise storage (k×n).
func (r reflectors) rowWise() []float64 {
	vr := make([]float64, r.k*r.n)
	for i := range r.k {
		for c := range r.n {
			vr[i*r.n+c] = r.v[c*r.ld+i]
		}
	}
	return vr
}

// randomReflectors returns k reflectors of order n whose vectors end at
// random rows (v_i[lastv+1:] = 0, lastv ≥ i), so that any reflector may
// have more trailing zeros than its predecessor, with τ_i = 2/‖v_i‖² (an
// orthogonal H(i)) or, with probability 1/8, τ_i = 0. The stored unit
// diagonal and zeros above it are exact.
func randomReflectors(rng *rand.Rand, n, k, ld int) reflectors {
	r := reflectors{n: n, k: k, ld: ld, v: make([]float64, n*ld), tau: make([]float64, k)}
	for i := range k {
		last := i + rng.IntN(n-i)
		if rng.IntN(3) == 0 {
			last = n - 1
		}
		r.v[i*ld+i] = 1
		nrm := 1.0
		for a := i + 1; a <= last; a++ {
			x := rng.NormFloat64()
			if rng.IntN(5) == 0 {
				x = 0 // interior zeros too
			}
			r.v[a*ld+i] = x
			nrm += x * x
		}
		if rng.IntN(8) != 0 {
			r.tau[i] = 2 / nrm
		}
	}
	return r
}

func maxAbsDiff(a, b []float64) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// TestLarftMatchesProduct checks I − V·T·Vᵀ against the unblocked product
// H(0)···H(k−1), for both storages, on reflectors with random trailing
// zeros (the pattern gonum's Dlarft gets wrong) and zero τ.
func TestLarftMatchesProduct(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for it := range 300 {
		n := 1 + rng.IntN(40)
		k := 1 + rng.IntN(n)
		ld := k + rng.IntN(3)
		r := randomReflectors(rng, n, k, ld)
		want := r.explicitH()

		tc := make([]float64, k*k)
		for i := range tc {
			tc[i] = math.NaN() // every element must be written
		}
		Larft(lapack.ColumnWise, n, k, r.v, ld, r.tau, tc, k)
		// Both sides are products of k orthogonal reflectors (‖H(i)‖₂ = 1),
		// evaluated in different association orders; each of the k factors
		// contributes a rounding error ≤ γ_n·‖·‖ per element in either
		// evaluation, so the results agree to 2·k·n·ε (plus the n of the
		// final sums): 4·(k+1)·n·ε.
		tol := 4 * float64((k+1)*n) * eps
		got := r.blockH(tc)
		require.LessOrEqual(t, maxAbsDiff(want, got), tol, "column-wise, case %d: n=%d k=%d", it, n, k)
		for i := range k {
			for j := range i {
				require.Zero(t, tc[i*k+j], "T lower triangle (%d,%d)", i, j)
			}
		}

		tr := make([]float64, k*k)
		Larft(lapack.RowWise, n, k, r.rowWise(), n, r.tau, tr, k)
		// The same T in exact arithmetic, computed by dot products of rows
		// instead of accumulation over rows: equal to rounding.
		assert.LessOrEqual(t, maxAbsDiff(tc, tr), tol, "row-wise vs column-wise, case %d", it)
	}
}

// gonumDefectReflectors is the smallest input on which gonum v0.17.0's
// Dlarft (forward) is wrong: three reflectors of order 4, the second with
// a trailing zero that the first and third do not have. With τ_i = 2/‖v_i‖²
// every number is a small dyadic rational, so the right T is exact:
//
//	v₀ = (1, 1, 1, 1), τ₀ = ½     T = [ ½  −1   0 ]
//	v₁ = (0, 1, 1, 0), τ₁ = 1         [ 0   1  −1 ]
//	v₂ = (0, 0, 1, 1), τ₂ = 1         [ 0   0   1 ]
//
// T[0, 2] = −τ₂·(T[0,0]·v₀ᵀv₂ + T[0,1]·v₁ᵀv₂) = −(½·2 − 1·1) = 0. gonum,
// having reset its running bound to lastv₁ = 2 at the second reflector,
// sums v₀ᵀv₂ over rows ≤ 2 only (1 instead of 2) and returns T[0, 2] = ½.
func gonumDefectReflectors() reflectors {
	return reflectors{n: 4, k: 3, ld: 3,
		v: []float64{
			1, 0, 0,
			1, 1, 0,
			1, 1, 1,
			1, 0, 1,
		},
		tau: []float64{0.5, 1, 1},
	}
}

// TestGonumDlarftDefect is the reproducer of docs/reliability.md ("gonum
// Dlarft defect"): gonum's Dlarft differs from the product of the
// reflectors, ours equals it. If it fails on the gonum side after a gonum
// upgrade, the defect is fixed upstream: keep Larft (it is used for its
// block application too) but update the doc.
func TestGonumDlarftDefect(t *testing.T) {
	r := gonumDefectReflectors()
	want := r.explicitH()
	wantT := []float64{
		0.5, -1, 0,
		0, 1, -1,
		0, 0, 1,
	}
	ours := make([]float64, 9)
	Larft(lapack.ColumnWise, r.n, r.k, r.v, r.ld, r.tau, ours, 3)
	// Dyadic rationals with few bits: every operation is exact.
	assert.Equal(t, wantT, ours, "Larft T")
	assert.Equal(t, want, r.blockH(ours), "I − V·T·Vᵀ from Larft vs H(0)·H(1)·H(2)")

	for _, store := range []lapack.StoreV{lapack.ColumnWise, lapack.RowWise} {
		t.Run(fmt.Sprintf("gonum/store=%c", store), func(t *testing.T) {
			v, ldv := r.v, r.ld
			if store == lapack.RowWise {
				v, ldv = r.rowWise(), r.n
			}
			g := make([]float64, 9)
			var impl gonum.Implementation
			impl.Dlarft(lapack.Forward, store, r.n, r.k, v, ldv, r.tau, g, 3)
			for i := range 3 {
				for j := range i {
					g[i*3+j] = 0 // gonum leaves the lower triangle unset
				}
			}
			assert.Equal(t, 0.5, g[0*3+2], "gonum's T[0,2] (defect: 0.5, right: 0)")
			// The block reflector gonum's T defines is not the product: it
			// differs by −V·(½·e₀e₂ᵀ)·Vᵀ = −½·v₀·v₂ᵀ, whose largest element
			// is ½.
			hg := r.blockH(g)
			assert.Equal(t, 0.5, maxAbsDiff(want, hg), "‖H_gonum − H(0)·H(1)·H(2)‖_max")
		})
	}
}

// TestLarftGramMatchesLarft checks the T of the blocked routines (from the
// GEMM Gram matrix of the explicit V) against Larft on the reflectors of
// TestLarftMatchesProduct: the same recurrence, the inner products summed
// in another order, so equal to rounding.
func TestLarftGramMatchesLarft(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for it := range 200 {
		n := 1 + rng.IntN(60)
		k := 1 + rng.IntN(min(n, blockSize))
		r := randomReflectors(rng, n, k, k)
		want := make([]float64, k*k)
		Larft(lapack.ColumnWise, n, k, r.v, k, r.tau, want, k)
		got := make([]float64, k*k)
		larftGram(blas64.General{Rows: n, Cols: k, Stride: k, Data: r.v}, r.tau,
			blas64.General{Rows: k, Cols: k, Stride: k, Data: got}, make([]float64, k*k))
		// The entries of T are O(1) here (τ_i = 2/‖v_i‖² ≤ 2 on the
		// diagonal; max|t_ij| = 2 over these inputs), and the two differ
		// by the rounding of k inner products of length n, re-associated,
		// propagated through the k-step recurrence: 4·(k+1)·n·ε as in
		// TestLarftMatchesProduct.
		require.LessOrEqual(t, maxAbsDiff(want, got), 4*float64((k+1)*n)*eps, "case %d: n=%d k=%d", it, n, k)
	}
}
