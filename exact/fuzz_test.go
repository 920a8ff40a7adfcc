package exact_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/exact"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// fuzzMaxDim bounds the shape of the fuzzed matrices: small enough for
// thousands of executions a second, and below every blocked crossover of
// gonum's LAPACK (128), so that gonum's mat.SVD is a reliable reference.
const fuzzMaxDim = 24

// fuzzInput is a decoded fuzz input.
type fuzzInput struct {
	a      mat.Matrix // what TruncatedSVD is given
	dense  *mat.Dense // the same values, for the checks
	k      int
	finite bool
}

// decodeFuzz decodes data into a matrix and a rank:
//
//	byte 0, 1   m = 1 + b%24, n = 1 + b%24
//	byte 2      k = b % (min(m,n) + 2): 0 and min(m,n)+1 are out of range
//	byte 3      flags: bit 0 pass the transpose view of an n×m matrix
//	            (mat.Transpose, the At path), bit 1 pass a *lowrank.Dense32
//	            (values rounded to float32), bits 2–3 repeat the first
//	            1..3 columns across the matrix (rank deficiency)
//	byte 4, 5   E, int16 little-endian clamped to ±1100: every element is
//	            multiplied by 2^E (exact, or rounded to subnormal, or Inf)
//	then per element, row-major, a tag byte t and its payload:
//	            t%4 = 0: 0
//	            t%4 = 1: int8(next byte)
//	            t%4 = 2: int8(next)·2^(int8(next)·9), exponents to ±1152
//	            t%4 = 3: the float64 of the next 8 bytes (NaN and ±Inf too)
//
// Missing bytes read as zero.
func decodeFuzz(data []byte) fuzzInput {
	pos := 0
	next := func() byte {
		if pos >= len(data) {
			return 0
		}
		pos++
		return data[pos-1]
	}
	m, n := 1+int(next())%fuzzMaxDim, 1+int(next())%fuzzMaxDim
	k := int(next()) % (min(m, n) + 2)
	flags := next()
	e := int(int16(binary.LittleEndian.Uint16([]byte{next(), next()})))
	e = max(-1100, min(1100, e))
	r, c := m, n
	if flags&1 != 0 {
		r, c = n, m
	}
	d := mat.NewDense(r, c, nil)
	rep := int(flags>>2) & 3
	for i := range r {
		for j := range c {
			var x float64
			switch t := next(); t % 4 {
			case 1:
				x = float64(int8(next()))
			case 2:
				mant := float64(int8(next()))
				x = math.Ldexp(mant, int(int8(next()))*9)
			case 3:
				var b [8]byte
				for l := range b {
					b[l] = next()
				}
				x = math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
			}
			d.Set(i, j, math.Ldexp(x, e))
		}
	}
	if rep > 0 {
		for j := rep; j < c; j++ {
			for i := range r {
				d.Set(i, j, d.At(i, j%rep))
			}
		}
	}
	in := fuzzInput{k: k}
	if flags&2 != 0 {
		f32 := make([]float32, r*c)
		for i := range r {
			for j := range c {
				f32[i*c+j] = float32(d.At(i, j))
				d.Set(i, j, float64(f32[i*c+j]))
			}
		}
		in.a = lowrank.NewDense32(r, c, f32)
	} else {
		in.a = d
	}
	in.dense = d
	if flags&1 != 0 {
		in.a = mat.Transpose{Matrix: in.a}
		in.dense = mat.DenseCopyOf(d.T())
	}
	in.finite = true
	for _, x := range in.dense.RawMatrix().Data {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			in.finite = false
		}
	}
	return in
}

// sameBits reports whether a and b hold bit-identical elements (NaN too).
func sameBits(a, b mat.Matrix) bool {
	m, n := a.Dims()
	for i := range m {
		for j := range n {
			if math.Float64bits(a.At(i, j)) != math.Float64bits(b.At(i, j)) {
				return false
			}
		}
	}
	return true
}

// FuzzTruncatedSVD checks TruncatedSVD on arbitrary small matrices with
// elements of any exponent: the documented errors and nothing else (no
// panic), and for finite input finite, orthonormal factors, singular
// values matching gonum's, the Frobenius identity ‖A‖_F² = Σσ², the
// reconstruction, and the Eckart–Young bounds of a truncation. The checks
// run on the input scaled by the power of two 2^s that brings max|a_ij|
// into [1, 2) — TruncatedSVD is equivariant under it (see
// TestTruncatedSVDScaleInvariance) — so that they do not overflow or
// underflow themselves.
//
// The seed corpus is in testdata/fuzz/FuzzTruncatedSVD (the audit's
// reproducers among them) and runs in every go test; long runs:
// go test -run '^$' -fuzz FuzzTruncatedSVD -fuzztime 30m -parallel 1 ./exact/.
func FuzzTruncatedSVD(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		in := decodeFuzz(data)
		m, n := in.dense.Dims()
		p := min(m, n)
		before := mat.DenseCopyOf(in.dense)
		fac, err := exact.TruncatedSVD(in.a, in.k)
		require.True(t, sameBits(before, in.a), "input modified")
		switch {
		case in.k < 1 || in.k > p:
			require.ErrorIs(t, err, lowrank.ErrRank)
			return
		case !in.finite:
			require.ErrorIs(t, err, lowrank.ErrNotFinite)
			return
		}

		// Â = A·2^s with max|â_ij| ∈ [1, 2); all-zero A has s = 0.
		var amax float64
		for _, x := range before.RawMatrix().Data {
			amax = max(amax, math.Abs(x))
		}
		s := 0
		if amax > 0 {
			_, ea := math.Frexp(amax)
			s = 1 - ea
		}
		ah := mat.NewDense(m, n, nil)
		ah.Apply(func(_, _ int, x float64) float64 { return math.Ldexp(x, s) }, before)
		nah := frob(ah)
		if err != nil {
			// The only other error of a finite input: σ₁ > MaxFloat64,
			// which needs ‖A‖_F = ‖Â‖_F·2^−s > MaxFloat64.
			require.True(t, errors.Is(err, exact.ErrOverflow), "%v", err)
			require.Greater(t, math.Log2(nah)-float64(s), 1023.99, "ErrOverflow for ‖A‖_F = %g·2^%d", nah, -s)
			return
		}
		r, c := fac.Dims()
		require.Equal(t, [3]int{m, n, in.k}, [3]int{r, c, fac.Rank()}, "dims and rank")
		sig := fac.Values(nil)
		require.Len(t, sig, in.k)
		u, v := fac.UView(), fac.VView()
		ur, uc := u.Dims()
		vr, vc := v.Dims()
		require.Equal(t, [4]int{m, in.k, n, in.k}, [4]int{ur, uc, vr, vc}, "factor shapes")
		for _, x := range mat.DenseCopyOf(u).RawMatrix().Data {
			require.False(t, math.IsNaN(x) || math.IsInf(x, 0), "U has %v", x)
		}
		for _, x := range mat.DenseCopyOf(v).RawMatrix().Data {
			require.False(t, math.IsNaN(x) || math.IsInf(x, 0), "V has %v", x)
		}
		sh := make([]float64, in.k) // σ of Â
		for j, x := range sig {
			require.False(t, math.IsNaN(x) || math.IsInf(x, 0), "σ_%d = %v", j, x)
			require.GreaterOrEqual(t, x, 0.0, "σ_%d", j)
			if j > 0 {
				require.LessOrEqual(t, x, sig[j-1], "σ not non-increasing at %d", j)
			}
			sh[j] = math.Ldexp(x, s)
		}
		d := float64(max(m, n))
		// Orthonormality as in TestTruncatedSVDProperties, 4·max(m,n)·ε,
		// plus 4ε for the normalization u_j = w_j/σ_j of tiny shapes.
		require.LessOrEqual(t, testmat.OrthError(u), 4*(d+1)*eps, "‖UᵀU − I‖")
		require.LessOrEqual(t, testmat.OrthError(v), 4*(d+1)*eps, "‖VᵀV − I‖")

		// σ returned subnormal are rounded to the grid 2⁻¹⁰⁷⁴, i.e.
		// 2^(s−1074) for σ of Â.
		grid := math.Ldexp(1, s-1074)
		// The backward-error budget of TestTruncatedSVDProperties,
		// 16·max(m,n)·ε·‖Â‖_F (σ₁ ≤ ‖Â‖_F).
		tol := 16*d*eps*nah + grid
		var ref mat.SVD
		refOK := ref.Factorize(ah, mat.SVDNone)
		var want []float64
		if refOK {
			want = ref.Values(nil)
			for j := range in.k {
				// Weyl on two backward-stable SVDs.
				require.InDelta(t, want[j], sh[j], tol, "σ_%d of Â against gonum", j)
			}
		}
		sv := mat.NewDense(m, in.k, nil)
		sv.Apply(func(_, j int, x float64) float64 { return x * sh[j] }, u)
		var rec, diff mat.Dense
		rec.Mul(sv, v.T())
		diff.Sub(ah, &rec)
		ek := frob(&diff)
		if in.k == p {
			var ss float64
			for _, x := range sh {
				ss += x * x
			}
			require.InDelta(t, nah, math.Sqrt(ss), tol*math.Sqrt(float64(p)), "√Σσ² against ‖Â‖_F")
			require.LessOrEqual(t, ek, tol, "‖Â − UΣVᵀ‖_F")
			return
		}
		if refOK {
			// Eckart–Young: √(Σ_{j≥k} σ_j²) ≤ ‖Â − Â_k‖_F for every rank-k
			// matrix, attained by the truncated SVD. gonum's σ_j are each
			// within the budget tol of the exact ones, so the optimum is
			// known to √p·tol; forming Â_k and the difference adds ≤ tol.
			var opt float64
			for _, x := range want[in.k:] {
				opt += x * x
			}
			opt = math.Sqrt(opt)
			slack := (math.Sqrt(float64(p)) + 1) * tol
			require.GreaterOrEqual(t, ek, opt-slack, "rank-%d error below the Eckart–Young optimum", in.k)
			require.LessOrEqual(t, ek, opt+slack, "rank-%d error above the optimum", in.k)
		}
	})
}
