package npy

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// FuzzRead feeds arbitrary bytes to Read: it must return a matrix or an
// error wrapping ErrFormat or io.ErrUnexpectedEOF, never panic or
// allocate without bound, and a matrix it returns must survive a
// Write/Read round trip bit for bit. Seeds: valid files of both dtypes and
// layouts, and truncations. Campaigns: go test -run '^$' -fuzz FuzzRead
// ./internal/npy.
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, mat.NewDense(2, 3, []float64{1, -2, 3.5, math.Inf(1), 0, 1e-310})); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()-5])
	f.Add(buf.Bytes()[:12])
	f.Add([]byte("\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }          \n\x00\x00\x80\x3f\x00\x00\x00\x40"))
	f.Add([]byte("\x93NUMPY\x01\x00\x46\x00{'descr': '<f8', 'fortran_order': False, 'shape': (99999999, 99999999), }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Read(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := Write(&out, a); err != nil {
			t.Fatal(err)
		}
		b, err := Read(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		r, c := a.Dims()
		br, bc := b.Dims()
		if r != br || c != bc {
			t.Fatalf("round trip changed the shape %d×%d to %d×%d", r, c, br, bc)
		}
		for i := range r {
			for j := range c {
				if x, y := a.At(i, j), b.At(i, j); math.Float64bits(x) != math.Float64bits(y) && !(x != x && y != y) {
					t.Fatalf("(%d, %d): %v became %v", i, j, x, y)
				}
			}
		}
	})
}
