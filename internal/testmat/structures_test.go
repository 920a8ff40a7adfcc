package testmat

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// singularValues returns the singular values of a, non-increasing.
func singularValues(t *testing.T, a mat.Matrix) ([]float64, *mat.SVD) {
	var sv mat.SVD
	require.True(t, sv.Factorize(a, mat.SVDThin))
	return sv.Values(nil), &sv
}

func TestStructuresExactSpectrum(t *testing.T) {
	sigma := PowerLaw(40, 1, 0)
	for _, sh := range []struct{ m, n int }{{60, 40}, {40, 60}, {40, 40}} {
		r := min(sh.m, sh.n)
		s := sigma[:r]
		orow, rows := OutlierRows(sh.m, sh.n, s, 3, 1)
		ocol, cols := OutlierCols(sh.m, sh.n, s, 3, 2)
		for name, a := range map[string]*mat.Dense{"outlier rows": orow, "outlier cols": ocol,
			"haar": Haar(sh.m, sh.n, s, 3)} {
			got, _ := singularValues(t, a)
			for j := range s {
				// The bases are orthogonal to rounding and the SVD is
				// backward stable, so by Weyl's inequality the singular
				// values agree to about ε·(m+n)·σ₁.
				assert.InDelta(t, s[j], got[j], 0x1p-52*float64(sh.m+sh.n)*s[0], "%s %d×%d σ_%d", name, sh.m, sh.n, j)
			}
		}
		// The 3 leading left singular vectors of orow live on rows only:
		// all the energy of the rank-3 part sits on the outlier rows.
		_, sv := singularValues(t, orow)
		var u mat.Dense
		sv.UTo(&u)
		var on float64
		for _, i := range rows {
			for j := 0; j < 3; j++ {
				on += u.At(i, j) * u.At(i, j)
			}
		}
		assert.InDelta(t, 3, on, 1e-12, "outlier rows carry U₁ (%d×%d)", sh.m, sh.n)
		var v mat.Dense
		_, sv = singularValues(t, ocol)
		sv.VTo(&v)
		on = 0
		for _, i := range cols {
			for j := 0; j < 3; j++ {
				on += v.At(i, j) * v.At(i, j)
			}
		}
		assert.InDelta(t, 3, on, 1e-12, "outlier cols carry V₁ (%d×%d)", sh.m, sh.n)
		assert.Len(t, rows, 3)
		assert.True(t, rows[0] < rows[1] && rows[1] < rows[2])
	}
}

func TestHaarIncoherent(t *testing.T) {
	// For a Haar basis of size p, the squared norm of a row of its k
	// leading columns is Beta(k/2, (p−k)/2): mean k/p = 0.1, standard
	// deviation ≈ √(2k)/p ≈ 0.032. μ < 4 (a row norm² below 0.4) allows the
	// largest of the 200 rows to sit 9 standard deviations above the mean;
	// a coherent basis would give μ = p/k = 10.
	a := Haar(200, 100, Flat(100)[:20], 7)
	var sv mat.SVD
	require.True(t, sv.Factorize(a, mat.SVDThin))
	var u mat.Dense
	sv.UTo(&u)
	var mx float64
	for i := 0; i < 200; i++ {
		var s float64
		for j := 0; j < 20; j++ {
			s += u.At(i, j) * u.At(i, j)
		}
		mx = math.Max(mx, s)
	}
	mu := 200.0 / 20 * mx
	assert.Less(t, mu, 4.0, "coherence of a Haar basis")
}
