package householder

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"
)

// BenchmarkGeqrf times the blocked QR factorization against gonum's
// Dgeqrf (the defective blocked path, on Gaussian input where it happens
// to be right), and ApplyQ of the n reflectors to an m×n matrix, the
// back-transformation U = Q·[U_R; 0] of a QR-preconditioned SVD.
func BenchmarkGeqrf(b *testing.B) {
	for _, s := range [][2]int{{4096, 1024}, {1024, 1024}} {
		m, n := s[0], s[1]
		rng := rand.New(rand.NewPCG(1, 1))
		a0 := newGeneral(m, n, n)
		gaussianFill(rng, a0)
		a := copyOf(a0)
		tau := make([]float64, n)
		b.Run(fmt.Sprintf("method=householder/m=%d/n=%d", m, n), func(b *testing.B) {
			for b.Loop() {
				copy(a.Data, a0.Data)
				Geqrf(a, tau)
			}
		})
		b.Run(fmt.Sprintf("method=gonum/m=%d/n=%d", m, n), func(b *testing.B) {
			var impl gonum.Implementation
			work := make([]float64, 64*n)
			for b.Loop() {
				copy(a.Data, a0.Data)
				impl.Dgeqrf(m, n, a.Data, n, tau, work, len(work))
			}
		})
		copy(a.Data, a0.Data)
		Geqrf(a, tau)
		c := blas64.General{Rows: m, Cols: n, Stride: n, Data: make([]float64, m*n)}
		b.Run(fmt.Sprintf("stage=apply-Q/m=%d/n=%d", m, n), func(b *testing.B) {
			for b.Loop() {
				clear(c.Data)
				for i := range n {
					c.Data[i*n+i] = 1
				}
				ApplyQ(false, a, tau, c)
			}
		})
	}
}
