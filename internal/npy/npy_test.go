package npy

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// golden is the matrix NumPy 1.24 saved into testdata (see testdata/README).
var golden = [][]float64{{1.5, -2.25, 3e-8}, {math.Pi, math.Copysign(0, -1), 1e30}}

func goldenDense() *mat.Dense {
	d := mat.NewDense(2, 3, nil)
	for i, r := range golden {
		d.SetRow(i, r)
	}
	return d
}

func golden32() *lowrank.Dense32 {
	d := lowrank.NewDense32(2, 3, nil)
	for i, r := range golden {
		for j, v := range r {
			d.Data[i*3+j] = float32(v)
		}
	}
	return d
}

// TestWriteMatchesNumPy checks that Write produces byte for byte the file
// NumPy's np.save writes for the same array.
func TestWriteMatchesNumPy(t *testing.T) {
	for _, c := range []struct {
		file string
		a    mat.Matrix
	}{{"f8.npy", goldenDense()}, {"f4.npy", golden32()}} {
		want, err := os.ReadFile(filepath.Join("testdata", c.file))
		require.NoError(t, err)
		var buf bytes.Buffer
		require.NoError(t, Write(&buf, c.a))
		assert.Equal(t, want, buf.Bytes(), c.file)
	}
}

func TestReadNumPyFiles(t *testing.T) {
	for _, c := range []struct {
		file string
		want mat.Matrix
	}{
		{"f8.npy", goldenDense()},
		{"f4.npy", golden32()},
		{"f4be.npy", golden32()},
		{"f8vec.npy", mat.NewDense(1, 3, golden[0])},
	} {
		got, err := ReadFile(filepath.Join("testdata", c.file))
		require.NoError(t, err, c.file)
		assert.IsType(t, c.want, got, c.file)
		r, cc := c.want.Dims()
		gr, gc := got.Dims()
		require.Equal(t, []int{r, cc}, []int{gr, gc}, c.file)
		for i := range r {
			for j := range cc {
				// Bit-identical, including the sign of −0.
				assert.Equal(t, math.Float64bits(c.want.At(i, j)), math.Float64bits(got.At(i, j)), "%s (%d,%d)", c.file, i, j)
			}
		}
	}
}

func TestReadRejects(t *testing.T) {
	for _, file := range []string{"f8fortran.npy", "i4.npy"} {
		_, err := ReadFile(filepath.Join("testdata", file))
		assert.ErrorIs(t, err, ErrFormat, file)
	}
	_, err := Read(bytes.NewReader([]byte("not an npy file at all")))
	assert.ErrorIs(t, err, ErrFormat)

	// A truncated body is an unexpected EOF, not a short matrix.
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, goldenDense()))
	_, err = Read(bytes.NewReader(buf.Bytes()[:buf.Len()-3]))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// TestRoundTrip writes random matrices of many shapes (chunk boundaries
// included) and reads them back bit-identically, leaving the input intact.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for _, sh := range [][2]int{{1, 1}, {1, chunk + 3}, {chunk + 1, 1}, {7, 5}, {300, 129}} {
		m, n := sh[0], sh[1]
		a := mat.NewDense(m, n, nil)
		a32 := lowrank.NewDense32(m, n, nil)
		for i := range m {
			for j := range n {
				v := rng.NormFloat64() * math.Exp(40*rng.Float64()-20)
				a.Set(i, j, v)
				a32.Data[i*n+j] = float32(v)
			}
		}
		before := mat.DenseCopyOf(a)
		before32 := append([]float32(nil), a32.Data...)
		name := filepath.Join(dir, "a.npy")

		require.NoError(t, WriteFile(name, a))
		got, err := ReadFile(name)
		require.NoError(t, err)
		require.IsType(t, &mat.Dense{}, got)
		assert.True(t, mat.Equal(a, got), "float64 %d×%d", m, n)
		assert.True(t, mat.Equal(before, a), "input modified")

		require.NoError(t, WriteFile(name, a32))
		got, err = ReadFile(name)
		require.NoError(t, err)
		require.IsType(t, &lowrank.Dense32{}, got)
		assert.Equal(t, a32.Data, got.(*lowrank.Dense32).Data, "float32 %d×%d", m, n)
		assert.Equal(t, before32, a32.Data, "input modified")

		// A generic mat.Matrix (a transpose view) is written as float64.
		require.NoError(t, WriteFile(name, a.T()))
		got, err = ReadFile(name)
		require.NoError(t, err)
		assert.True(t, mat.Equal(a.T(), got), "transpose %d×%d", m, n)
	}
}

// TestStridedDense32 checks that a Dense32 view with Stride > Cols is
// written by rows, not as its backing slice.
func TestStridedDense32(t *testing.T) {
	full := lowrank.NewDense32(4, 6, nil)
	for i := range full.Data {
		full.Data[i] = float32(i)
	}
	v := full.Slice(1, 3, 2, 5)
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, v))
	got, err := Read(&buf)
	require.NoError(t, err)
	assert.Equal(t, []float32{8, 9, 10, 14, 15, 16}, got.(*lowrank.Dense32).Data)
	assert.False(t, errors.Is(err, ErrFormat))
}

// TestHugeHeaderShortBody: a header claiming 2³³ elements in front of a
// few bytes is a truncation error, found without allocating the claimed
// 64 GiB (the allocation grows with the bytes that arrive).
func TestHugeHeaderShortBody(t *testing.T) {
	hdr := "{'descr': '<f8', 'fortran_order': False, 'shape': (65536, 131072), }"
	hdr += strings.Repeat(" ", 64-(10+len(hdr)+1)%64) + "\n"
	data := append([]byte("\x93NUMPY\x01\x00"), byte(len(hdr)), byte(len(hdr)>>8))
	data = append(append(data, hdr...), make([]byte, 80)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Read(bytes.NewReader(data))
	runtime.ReadMemStats(&after)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8<<20), "allocation bounded by the body, not the header")
}
