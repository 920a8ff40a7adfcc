package cpu_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
)

// TestCholQR checks the orthogonality of Q, A = Q·R and the shape of R for
// inputs from orthonormal to rank deficient, and which path each takes.
//
// Tolerances (u = 2⁻⁵³): orthogonality ‖QᵀQ − I‖_F ≤ 6·(p·l + l(l+1))·u,
// the CholeskyQR2 bound of Yamamoto et al. (2015, Thm 3.3), which shifted
// CholeskyQR3 meets too (Fukaya et al. 2020, §4) and Householder QR well
// within; the max-entry error is at most the Frobenius one. Residual
// ‖A − Q·R‖_F ≤ 10·p·l·u·‖A‖₂, the backward-stability constant the
// backend conformance suite uses for QR (Householder's is O(p·l·u);
// CholeskyQR2's 5·l²·√l·u·‖A‖₂ is smaller for these shapes).
func TestCholQR(t *testing.T) {
	const p, l = 3000, 40
	const u = 0x1p-53
	kappa := func(c float64) []float64 { return testmat.Exponential(l, math.Log(c)/float64(l-1)) }
	rankDef := testmat.Incoherent(p, l, testmat.RankPlusNoise(l, 10, 0), 4)
	zeroCol := testmat.Gaussian(p, l, 5)
	for i := 0; i < p; i++ {
		zeroCol.Set(i, 7, 0)
	}
	cases := []struct {
		name string
		a    *mat.Dense
		how  string
	}{
		{"gaussian", testmat.Gaussian(p, l, 1), "cholqr/passes=2"},
		{"strided", testmat.Strided(testmat.Gaussian(p, l, 2)), "cholqr/passes=2"},
		{"kappa=1e3", testmat.Incoherent(p, l, kappa(1e3), 3), "cholqr/passes=2"},
		{"kappa=1e8", testmat.Incoherent(p, l, kappa(1e8), 3), "scholqr/passes=3"},
		{"kappa=1e13", testmat.Incoherent(p, l, kappa(1e13), 3), "scholqr/passes=4"},
		{"rank=10", rankDef, ""}, // either a shifted CholeskyQR or Householder
		{"zero column", zeroCol, "householder"},
		{"zero", mat.NewDense(p, l, nil), "householder"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := mat.DenseCopyOf(tc.a)
			if tc.name == "strided" {
				q = testmat.Strided(tc.a)
			}
			r := mat.NewDense(l, l, nil)
			for i := range r.RawMatrix().Data {
				r.RawMatrix().Data[i] = math.NaN() // r is write-only
			}
			how := cpu.CholQRForTest(q.RawMatrix(), r.RawMatrix(), 0)
			if tc.how != "" {
				assert.Equal(t, tc.how, how)
			}
			t.Log(how)
			assert.LessOrEqual(t, testmat.OrthError(q), 6*float64(p*l+l*(l+1))*u, "‖QᵀQ − I‖")
			checkR(t, tc.a, q, r)
		})
	}
}

// checkR checks that the l×l r is upper triangular and that ‖A − Q·R‖_F
// ≤ 10·p·l·u·‖A‖₂ (u = 2⁻⁵³; TestCholQR says why).
func checkR(t *testing.T, a, q, r *mat.Dense) {
	t.Helper()
	p, l := a.Dims()
	for i := 0; i < l; i++ {
		for j := 0; j < i; j++ {
			require.Equal(t, 0.0, r.At(i, j), "R[%d,%d] below the diagonal", i, j)
		}
	}
	var qr mat.Dense
	qr.Mul(q, r)
	qr.Sub(&qr, a)
	assert.LessOrEqual(t, mat.Norm(&qr, 2), 10*float64(p*l)*0x1p-53*mat.Norm(a, 2), "‖A − QR‖_F")
}

// TestCholQRTol checks CholeskyQR with an orthogonality tolerance: it
// stops before the pass that would refine Q below tol (one pass instead of
// two for a well-conditioned input, which is the point of it), never takes
// more passes than without it, and its Q and R meet the tolerance and the
// residual bound.
//
// Tolerances: ‖QᵀQ − I‖_F ≤ tol + γ_p·l, QRTol's guarantee (γ_p the
// rounding of the Gram matrix it checks, u = 2⁻⁵³), recomputed here in
// float64 (gonum's product, whose rounding is another γ_p·l); the residual
// bound is TestCholQR's, which one CholeskyQR pass meets too (its backward
// error is O(l²·√l·u·‖A‖₂), Yamamoto et al. 2015, below 10·p·l·u·‖A‖₂ for
// these shapes).
func TestCholQRTol(t *testing.T) {
	const p, l = 3000, 40
	const u = 0x1p-53
	const tol = 0x1p-24
	gamma := float64(p) * u / (1 - float64(p)*u)
	kappa := func(c float64) []float64 { return testmat.Exponential(l, math.Log(c)/float64(l-1)) }
	cases := []struct {
		name string
		a    *mat.Dense
		how  string // with tol, where it is known
	}{
		{"gaussian", testmat.Gaussian(p, l, 1), "cholqr/passes=1"},
		{"kappa=1e3", testmat.Incoherent(p, l, kappa(1e3), 3), ""},
		{"kappa=1e8", testmat.Incoherent(p, l, kappa(1e8), 3), ""},
		{"kappa=1e13", testmat.Incoherent(p, l, kappa(1e13), 3), ""},
		{"zero", mat.NewDense(p, l, nil), "householder"},
	}
	passes := func(how string) int {
		var n int
		if _, err := fmt.Sscanf(how[strings.Index(how, "=")+1:], "%d", &n); err != nil {
			return 0
		}
		return n
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			full := mat.DenseCopyOf(tc.a)
			howFull := cpu.CholQRForTest(full.RawMatrix(), blas64.General{}, 0)
			q := mat.DenseCopyOf(tc.a)
			r := mat.NewDense(l, l, nil)
			for i := range r.RawMatrix().Data {
				r.RawMatrix().Data[i] = math.NaN() // r is write-only
			}
			how := cpu.CholQRForTest(q.RawMatrix(), r.RawMatrix(), tol)
			t.Log(how, "without tol:", howFull)
			if tc.how != "" {
				assert.Equal(t, tc.how, how)
			}
			if strings.Contains(howFull, "=") {
				assert.LessOrEqual(t, passes(how), passes(howFull), "passes with tol against without")
			}
			var g mat.Dense
			g.Mul(q.T(), q)
			for i := 0; i < l; i++ {
				g.Set(i, i, g.At(i, i)-1)
			}
			assert.LessOrEqual(t, mat.Norm(&g, 2), tol+2*gamma*l, "‖QᵀQ − I‖_F")
			checkR(t, tc.a, q, r)
		})
	}
	// WideFloat32 keeps QR's orthonormality: QRTol is QR bit for bit.
	a := testmat.Gaussian(p, l, 1)
	want, got := mat.DenseCopyOf(a), mat.DenseCopyOf(a)
	require.NoError(t, cpu.Backend{}.QR(want, nil))
	require.NoError(t, cpu.Backend{WideFloat32: true}.QRTol(got, nil, tol))
	assert.True(t, mat.Equal(want, got), "WideFloat32: QRTol is QR")
	assert.Panics(t, func() { _ = cpu.Backend{}.QRTol(mat.NewDense(4, 2, nil), nil, -1) }, "negative tol")
	assert.Panics(t, func() { _ = cpu.Backend{}.QRTol(mat.NewDense(4, 2, nil), nil, math.NaN()) }, "NaN tol")
}

// TestCPUQRPaths runs CPU.QR on a small and a large input so both the
// Householder and the CholeskyQR branches are taken through the method.
func TestCPUQRPaths(t *testing.T) {
	for _, s := range [][2]int{{50, 8}, {2000, 48}} {
		a := testmat.Gaussian(s[0], s[1], 9)
		q := mat.DenseCopyOf(a)
		r := mat.NewDense(s[1], s[1], nil)
		require.NoError(t, cpu.Backend{}.QR(q, r))
		const u = 0x1p-53
		assert.LessOrEqual(t, testmat.OrthError(q), 6*float64(s[0]*s[1]+s[1]*(s[1]+1))*u)
		var qr mat.Dense
		qr.Mul(q, r)
		qr.Sub(&qr, a)
		assert.LessOrEqual(t, mat.Norm(&qr, 2), 10*float64(s[0]*s[1])*u*mat.Norm(a, 2))
	}
}

// BenchmarkQR compares the thin QR of a tall p×l sketch by Householder
// (gonum lapack64) and by CholeskyQR on internal/gemm.
func BenchmarkQR(b *testing.B) {
	for _, s := range [][2]int{{8192, 128}, {4096, 64}, {4096, 32}, {2000, 32}} {
		for _, method := range []string{"householder", "cholqr"} {
			b.Run(fmt.Sprintf("method=%s/p=%d/l=%d", method, s[0], s[1]), func(b *testing.B) {
				a := testmat.Gaussian(s[0], s[1], 1)
				y := mat.NewDense(s[0], s[1], nil)
				r := blas64.General{Rows: s[1], Cols: s[1], Stride: s[1], Data: make([]float64, s[1]*s[1])}
				for b.Loop() {
					b.StopTimer()
					y.Copy(a)
					b.StartTimer()
					if method == "householder" {
						cpu.HouseholderQRForTest(y.RawMatrix(), r, nil)
					} else {
						cpu.CholQRForTest(y.RawMatrix(), r, 0)
					}
				}
				b.ReportMetric(testmat.OrthError(y)/0x1p-53, "orth-err/u")
			})
		}
	}
}
