package cpu_test

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
)

// BenchmarkRowsQBPieces times, one by one, the pieces of the float32 rows
// QB of a 4096×1024 activation at k = 64 (the core table's shape, op(A) =
// Aᵀ): the fused gather of Ω with the input check, Y = Aᵀ·Ω, the QR of Y
// (to working precision, and to 2⁻²⁴ as the QB does) and B = Qᵀ·Aᵀ, on the operands the QB gives them (float32 A, float64 Ω,
// Y and B). bench/cpu/qb_pieces.py times NumPy's same pieces
// (docs/gemm.md).
func BenchmarkRowsQBPieces(b *testing.B) {
	const m, n, l = 4096, 1024, 64
	a := testmat.To32(testmat.Gaussian(m, n, 1))
	idx := rand.New(rand.NewPCG(1, 2)).Perm(n)[:l] // rows of op(A) = Aᵀ: columns of A
	be := cpu.Backend{}
	om := mat.NewDense(m, l, nil)
	y := mat.NewDense(n, l, nil)
	bb := mat.NewDense(l, m, nil)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	_, _, err := be.GatherNorm(om, a, true, idx)
	must(err)
	// Y before any piece, so that the QR pieces factor the real sketch
	// when run alone (-bench 'piece=QR').
	must(be.Mul(y, 1, a, true, om, false, 0))
	b.Run("piece=gathernorm", func(b *testing.B) {
		for b.Loop() {
			_, _, err := be.GatherNorm(om, a, true, idx)
			must(err)
		}
	})
	b.Run("piece=Y", func(b *testing.B) {
		for b.Loop() {
			must(be.Mul(y, 1, a, true, om, false, 0))
		}
	})
	q := mat.NewDense(n, l, nil)
	b.Run("piece=QR", func(b *testing.B) {
		for b.Loop() {
			q.Copy(y)
			must(be.QR(q, nil))
		}
	})
	// The QR the QB runs for float32 input (skeleton.SketchQR).
	b.Run("piece=QRtol", func(b *testing.B) {
		for b.Loop() {
			q.Copy(y)
			must(be.QRTol(q, nil, 0x1p-24))
		}
	})
	b.Run("piece=B", func(b *testing.B) {
		for b.Loop() {
			must(be.Mul(bb, 1, q, true, a, true, 0))
		}
	})
}
