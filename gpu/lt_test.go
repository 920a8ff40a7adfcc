package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// TestMulBias checks MulBias on a layer's shapes (bf16, 1000×96 times
// 96×136, and times 136×96 into a row-major c, all row-major): the bias
// float32 and bf16, without the residual and with it, against the float64
// sum of the bf16 operands' values. Bound
// per element: the float32 accumulation of k products and two additions,
// (k+2)·u32 relative to Σ|a_il·w_lj| + |bias_j| + |add_ij|, then c's one
// bf16 rounding, 2⁻⁸·|value|. It also checks the cases MulBias declines
// (in place, add = c; a column-major w or c; noLt) leave c untouched, that an
// output sharing memory with an operand panics, and reports which of the
// cases cuBLASLt offered no algorithm for.
func TestMulBias(t *testing.T) {
	b := open(t, nil)
	if !b.LtAvailable() {
		t.Skip("cuBLASLt not loaded")
	}
	rng := rand.New(rand.NewPCG(9, 1))
	randDense := func(r, c int) *mat.Dense {
		d := mat.NewDense(r, c, nil)
		for i := range r {
			for j := range c {
				d.Set(i, j, rng.NormFloat64())
			}
		}
		return d
	}
	up := func(d *mat.Dense, dt DType) *Matrix {
		m, err := b.UploadDense32(testmat.To32(d), dt)
		require.NoError(t, err)
		t.Cleanup(func() { b.Free(m) })
		return m
	}
	down := func(m lowrank.Matrix) *mat.Dense {
		var d mat.Dense
		require.NoError(t, b.Download(&d, m))
		return &d
	}
	const m = 1000
	ran := 0 // cases cuBLASLt took
	for _, kn := range [][2]int{{96, 136}, {136, 96}} {
		k, n := kn[0], kn[1]
		a := up(randDense(m, k), BFloat16)
		ah := down(a)
		for _, wRow := range []bool{true, false} {
			var w *Matrix
			if wRow {
				w = up(randDense(k, n), BFloat16)
			} else {
				wt := up(randDense(n, k), BFloat16) // wᵀ row-major: w column-major
				tw, ok := b.Transpose(wt)
				require.True(t, ok)
				w = tw.(*Matrix)
			}
			wh := down(w)
			for _, bt := range []DType{Float32, BFloat16} {
				bias := up(randDense(1, n), bt)
				bh := down(bias)
				for _, mode := range []string{"none", "residual", "in place"} {
					name := fmt.Sprintf("k=%d/n=%d/w row-major=%v/bias %v/%s", k, n, wRow, bt, mode)
					c := up(randDense(m, n), BFloat16)
					var add *Matrix
					var addh *mat.Dense
					switch mode {
					case "residual":
						add = up(randDense(m, n), BFloat16)
						addh = down(add)
					case "in place":
						add = c
						addh = down(c)
					}
					before := down(c)
					ok, err := b.MulBias(c, a, w, bias, add)
					require.NoError(t, err, name)
					if mode == "in place" || !wRow {
						assert.False(t, ok, "%s: in place and a column-major w are declined", name)
						assert.True(t, mat.Equal(before, down(c)), "%s: a declined MulBias writes nothing", name)
						continue
					}
					if !ok {
						t.Logf("%s: declined (no cuBLASLt algorithm)", name)
						continue
					}
					ran++
					got := down(c)
					for i := range m {
						for j := range n {
							var v, mag float64
							for l := range k {
								p := ah.At(i, l) * wh.At(l, j)
								v, mag = v+p, mag+math.Abs(p)
							}
							v, mag = v+bh.At(0, j), mag+math.Abs(bh.At(0, j))
							if addh != nil {
								v, mag = v+addh.At(i, j), mag+math.Abs(addh.At(i, j))
							}
							tol := float64(k+2)*u32*mag + 0x1p-8*math.Abs(v)
							if d := math.Abs(got.At(i, j) - v); d > tol {
								t.Fatalf("%s: c(%d,%d) = %g, want %g (tolerance %.3g)", name, i, j, got.At(i, j), v, tol)
							}
						}
					}
				}
			}
		}
	}
	require.Positive(t, ran, "cuBLASLt declined every case")
	// Declined: nothing is written.
	a := up(randDense(m, 96), BFloat16)
	w := up(randDense(96, 136), BFloat16)
	bias := up(randDense(1, 136), Float32)
	cc, err := b.NewMatrix(m, 136, BFloat16) // column-major
	require.NoError(t, err)
	defer b.Free(cc)
	before := down(cc)
	ok, err := b.MulBias(cc, a, w, bias, nil)
	require.NoError(t, err)
	assert.False(t, ok, "a column-major c")
	assert.True(t, mat.Equal(before, down(cc)), "a declined MulBias writes nothing")
	c := up(randDense(m, 136), BFloat16)
	before = down(c)
	b.noLt = true
	ok, err = b.MulBias(c, a, w, bias, nil)
	b.noLt = false
	require.NoError(t, err)
	assert.False(t, ok, "noLt")
	assert.True(t, mat.Equal(before, down(c)), "a declined MulBias writes nothing")
	assert.Panics(t, func() { _, _ = b.MulBias(c, a, bias, bias, nil) }, "a shape mismatch")
	assert.PanicsWithValue(t, lowrank.ErrAlias, func() { _, _ = b.MulBias(a, a, up(randDense(96, 96), BFloat16), up(randDense(1, 96), Float32), nil) }, "c = a")
}
