package eig

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loract/loract/internal/gemm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

const epsilon = 0x1p-52

func gaussianData(r, c int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	d := make([]float64, r*c)
	for i := range d {
		d[i] = rng.NormFloat64()
	}
	return d
}

// symFromSpectrum returns Q·diag(lam)·Qᵀ for a random orthogonal Q.
func symFromSpectrum(lam []float64, seed uint64) []float64 {
	n := len(lam)
	var qr mat.QR
	qr.Factorize(mat.NewDense(n, n, gaussianData(n, n, seed)))
	var q mat.Dense
	qr.QTo(&q)
	var ql mat.Dense
	ql.Scale(1, &q)
	for j := range n {
		for i := range n {
			ql.Set(i, j, q.At(i, j)*lam[j])
		}
	}
	var g mat.Dense
	g.Mul(&ql, q.T())
	// Symmetrize exactly.
	d := g.RawMatrix().Data
	for i := range n {
		for j := range i {
			d[i*n+j] = d[j*n+i]
		}
	}
	return d
}

func TestEigSym(t *testing.T) {
	gram := func(m, n int, seed uint64) []float64 {
		a := blas64.General{Rows: m, Cols: n, Stride: n, Data: gaussianData(m, n, seed)}
		g := make([]float64, n*n)
		gemm.Gram(blas64.General{Rows: n, Cols: n, Stride: n, Data: g}, a)
		return g
	}
	cluster := make([]float64, 60)
	for i := range cluster {
		cluster[i] = 1 + float64(i%3)*1e-13 // three tight clusters of 20
	}
	graded := make([]float64, 50)
	for i := range graded {
		graded[i] = math.Pow(10, -28*float64(i)/49) // σ² of a 1 … 1e-14 spectrum
	}
	cases := []struct {
		name string
		n    int
		g    []float64
	}{
		{"gram/300x100", 100, gram(300, 100, 1)},
		{"gram/200x200", 200, gram(200, 200, 2)}, // eigenvalues down to ~0
		{"identity/40", 40, symFromSpectrum(make1(40), 3)},
		{"clusters/60", 60, symFromSpectrum(cluster, 4)},
		{"graded/50", 50, symFromSpectrum(graded, 5)},
		{"zero/10", 10, make([]float64, 100)},
		{"1", 1, []float64{-2}},
		{"2", 2, []float64{2, 1, 1, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := c.n
			g0 := append([]float64(nil), c.g...)
			w := make([]float64, n)
			v := make([]float64, n*n)
			require.True(t, Sym(n, append([]float64(nil), c.g...), w, v))

			var ref mat.EigenSym
			require.True(t, ref.Factorize(mat.NewSymDense(n, append([]float64(nil), g0...)), false))
			want := ref.Values(nil) // ascending
			norm := math.Max(math.Abs(want[0]), math.Abs(want[n-1]))
			// Both are backward stable eigensolvers: eigenvalues within
			// c·n·ε·‖G‖ of each other (Weyl); c = 4.
			for j := range n {
				assert.InDelta(t, want[n-1-j], w[j], 4*float64(n)*epsilon*norm+1e-300, "λ_%d", j)
			}
			vm := mat.NewDense(n, n, v)
			// Orthonormal to the Newton–Schulz/LQ tolerance (√n·ε) plus
			// the rounding of the back-transformation, O(n·ε).
			var vtv mat.Dense
			vtv.Mul(vm.T(), vm)
			for i := range n {
				for j := range n {
					d := vtv.At(i, j)
					if i == j {
						d--
					}
					assert.LessOrEqual(t, math.Abs(d), 4*float64(n)*epsilon, "VᵀV(%d,%d)", i, j)
				}
			}
			// Residual ‖G·V − V·Λ‖_max ≤ c·n·ε·‖G‖ (backward stability).
			var gv mat.Dense
			gv.Mul(mat.NewDense(n, n, g0), vm)
			for i := range n {
				for j := range n {
					r := gv.At(i, j) - vm.At(i, j)*w[j]
					assert.LessOrEqual(t, math.Abs(r), 4*float64(n)*epsilon*norm+1e-300, "residual (%d,%d)", i, j)
				}
			}
		})
	}
}

func make1(n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = 1
	}
	return x
}

// TestApplyQLeftMatchesDormqr checks the blocked compact-WY application
// against gonum's Dormqr on a QR factorization with k not a multiple of
// the block.
func TestApplyQLeftMatchesDormqr(t *testing.T) {
	var impl gonum.Implementation
	r, k, c := 150, 97, 40
	a := gaussianData(r, k, 9)
	tau := make([]float64, k)
	work := make([]float64, 64*k)
	impl.Dgeqrf(r, k, a, k, tau, work, len(work))
	z := gaussianData(r, c, 10)
	want := append([]float64(nil), z...)
	work = make([]float64, 64*c)
	impl.Dormqr(blas.Left, blas.NoTrans, r, c, k, a, k, tau, want, c, work, len(work))
	applyQLeft(r, k, a, k, tau, blas64.General{Rows: r, Cols: c, Stride: c, Data: z})
	for i := range z {
		// Both apply k reflectors in a different association order: the
		// results differ by rounding, O(k·ε·‖z‖) elementwise.
		assert.InDelta(t, want[i], z[i], 4*float64(k)*epsilon*10)
	}
}

// BenchmarkEigSym compares the eigensolver with gonum's EigenSym (Dsytrd,
// Dorgtr, implicit QL/QR Dsteqr with vectors) on the Gram matrix of a
// Gaussian 4n×n matrix, the matrix TruncatedSVD decomposes.
func BenchmarkEigSym(b *testing.B) {
	for _, n := range []int{256, 1024} {
		a := blas64.General{Rows: 4 * n, Cols: n, Stride: n, Data: gaussianData(4*n, n, 1)}
		g := make([]float64, n*n)
		gemm.Gram(blas64.General{Rows: n, Cols: n, Stride: n, Data: g}, a)
		b.Run(fmt.Sprintf("method=inverse-iteration/n=%d", n), func(b *testing.B) {
			w, v := make([]float64, n), make([]float64, n*n)
			gc := make([]float64, n*n)
			for b.Loop() {
				copy(gc, g)
				Sym(n, gc, w, v)
			}
		})
		b.Run(fmt.Sprintf("method=gonum/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				var e mat.EigenSym
				e.Factorize(mat.NewSymDense(n, append([]float64(nil), g...)), true)
			}
		})
	}
}

// BenchmarkEigStages times each replaced stage against the gonum routine
// it replaces, n = 1024 (Gram of a Gaussian 4096×1024 matrix).
func BenchmarkEigStages(b *testing.B) {
	const n = 1024
	var impl gonum.Implementation
	a := blas64.General{Rows: 4 * n, Cols: n, Stride: n, Data: gaussianData(4*n, n, 1)}
	g := make([]float64, n*n)
	gemm.Gram(blas64.General{Rows: n, Cols: n, Stride: n, Data: g}, a)
	d, e, tau := make([]float64, n), make([]float64, n-1), make([]float64, n-1)
	gc := make([]float64, n*n)
	b.Run("stage=tridiag/method=own", func(b *testing.B) {
		for b.Loop() {
			copy(gc, g)
			tridiag(n, gc, d, e, tau)
		}
	})
	b.Run("stage=tridiag/method=gonum-Dsytrd", func(b *testing.B) {
		work := make([]float64, 64*n)
		for b.Loop() {
			copy(gc, g)
			impl.Dsytrd(blas.Lower, n, gc, n, d, e, tau, work, len(work))
		}
	})
	copy(gc, g)
	tridiag(n, gc, d, e, tau)
	refl := append([]float64(nil), gc...)
	w := make([]float64, n)
	lam := append([]float64(nil), d...)
	impl.Dsterf(n, lam, append([]float64(nil), e...))
	for i := range n {
		w[i] = lam[n-1-i]
	}
	zt := make([]float64, n*n)
	b.Run("stage=tridiag-vectors/method=inverse-iteration", func(b *testing.B) {
		for b.Loop() {
			inverseIteration(n, d, e, w, zt)
		}
	})
	b.Run("stage=tridiag-vectors/method=gonum-Dsteqr", func(b *testing.B) {
		z := make([]float64, n*n)
		work := make([]float64, 2*n)
		for b.Loop() {
			dd, ee := append([]float64(nil), d...), append([]float64(nil), e...)
			impl.Dsteqr(lapack.EVTridiag, n, dd, ee, z, n, work)
		}
	})
	inverseIteration(n, d, e, w, zt)
	x := make([]float64, n*n)
	b.Run("stage=orthonormalize/method=newton-schulz", func(b *testing.B) {
		for b.Loop() {
			copy(x, zt)
			OrthonormalizeRows(n, n, x)
		}
	})
	b.Run("stage=orthonormalize/method=gonum-LQ", func(b *testing.B) {
		for b.Loop() {
			copy(x, zt)
			householderLQ(n, n, x)
		}
	})
	b.Run("stage=back-transform/method=compact-WY-gemm64", func(b *testing.B) {
		for b.Loop() {
			copy(x, zt)
			applyTridiagQ(n, refl, tau, x)
		}
	})
	b.Run("stage=back-transform/method=gonum-Dormqr", func(b *testing.B) {
		work := make([]float64, 64*n)
		for b.Loop() {
			copy(x, zt)
			impl.Dormqr(blas.Left, blas.NoTrans, n-1, n, n-1, refl[n:], n, tau, x[n:], n, work, len(work))
		}
	})
}

// BenchmarkQRFirstLowerBound times what a QR-first SVD of a 4096×1024
// matrix must at least do on top of an n×n SVD: apply the 1024 Householder
// reflectors of A = Q·R once (U = Q·[U_R; 0]); the factorization itself
// applies the same reflectors to the trailing columns, another
// 2mn² − 2n³/3 flops. Compare with the m-level work of svdTall (two Gram
// products and W = A·V̂).
func BenchmarkQRFirstLowerBound(b *testing.B) {
	const m, n = 4096, 1024
	var impl gonum.Implementation
	a := gaussianData(m, n, 3)
	tau := make([]float64, n)
	work := make([]float64, 64*n)
	impl.Dgeqrf(m, n, a, n, tau, work, len(work))
	z := make([]float64, m*n)
	b.Run("stage=apply-Q/m=4096/n=1024", func(b *testing.B) {
		for b.Loop() {
			clear(z)
			for i := range n {
				z[i*n+i] = 1
			}
			applyQLeft(m, n, a, n, tau, blas64.General{Rows: m, Cols: n, Stride: n, Data: z})
		}
	})
	ag := blas64.General{Rows: m, Cols: n, Stride: n, Data: gaussianData(m, n, 4)}
	c := blas64.General{Rows: n, Cols: n, Stride: n, Data: make([]float64, n*n)}
	v := blas64.General{Rows: n, Cols: n, Stride: n, Data: gaussianData(n, n, 5)}
	wg := blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
	b.Run("stage=gram+AV+gram/m=4096/n=1024", func(b *testing.B) {
		for b.Loop() {
			gemm.Gram(c, ag)
			gemm.General(false, false, 1, ag, v, 0, wg)
			gemm.Gram(c, wg)
		}
	})
}
