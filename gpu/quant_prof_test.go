package gpu

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQuantizeProfile times Quantize and Dequantize at the shapes of the
// GPU demo's int8 factors (P 12544×231 per column, R 231×384 per row: the
// checkpointed block inputs at ratio 0.6), of the step benchmark's
// (16384×256) and of a 4-bit residual (12544×384, blocks of 64), one
// JSON line each: median of 20 calls, CUDA events. It uses only the
// exported API, so that the same file times an older backend. Behind
// -gpu.prof.
func TestQuantizeProfile(t *testing.T) {
	if !*profFlag {
		t.Skip("pass -gpu.prof")
	}
	b := open(t, nil)
	tm := newTimer(t, b)
	const reps = 20
	for _, tc := range []struct {
		name            string
		r, c, bits, blk int
		perCol, rowMaj  bool
		dt              DType
	}{
		{"P per column", 12544, 231, 8, 0, true, false, BFloat16},
		{"P per column", 12544, 231, 8, 0, true, true, BFloat16},
		{"P per column", 16384, 256, 8, 0, true, false, BFloat16},
		{"R per row", 231, 384, 8, 384, false, false, BFloat16},
		{"R per row", 256, 4096, 8, 4096, false, false, BFloat16},
		{"residual 4-bit", 12544, 384, 4, 64, false, true, Float32},
		{"residual 4-bit", 12544, 1536, 4, 64, false, true, Float32},
	} {
		alloc, err := b.NewMatrix(tc.r, tc.c, tc.dt)
		if tc.rowMaj { // column-major c×r storage is the row-major r×c matrix
			alloc, err = b.NewMatrix(tc.c, tc.r, tc.dt)
		}
		require.NoError(t, err)
		ar, ac := alloc.Dims()
		f, err := b.NewMatrix(ar, ac, Float32)
		require.NoError(t, err)
		require.NoError(t, b.Normal(f, 3))
		require.NoError(t, b.Copy(alloc, f))
		b.Free(f)
		x := alloc
		if tc.rowMaj {
			x = RowMajor(alloc.ptr, tc.r, tc.c, tc.c, tc.dt)
		}
		q, err := b.NewQuantized(tc.r, tc.c, tc.bits, tc.blk, tc.perCol)
		require.NoError(t, err)
		d, err := b.NewMatrix(tc.r, tc.c, Float32)
		require.NoError(t, err)
		layout := "column-major"
		if tc.rowMaj {
			layout = "row-major"
		}
		med, lo := tm.median(t, reps, func(int) error { return b.Quantize(q, 0, x, nil) })
		emit(map[string]any{"piece": "Quantize " + tc.name, "shape": fmt.Sprintf("%d×%d", tc.r, tc.c), "layout": layout,
			"dtype": dtName(tc.dt), "bits": tc.bits, "ms": med, "ms_min": lo})
		med, lo = tm.median(t, reps, func(int) error { return b.Dequantize(d, q, 0, false) })
		emit(map[string]any{"piece": "Dequantize " + tc.name, "shape": fmt.Sprintf("%d×%d", tc.r, tc.c), "layout": "column-major",
			"dtype": "fp32", "bits": tc.bits, "ms": med, "ms_min": lo})
		b.FreeQuantized(q)
		b.Free(d)
		b.Free(alloc)
	}
}
