// Package npy reads and writes two-dimensional float32 and float64 arrays
// in NumPy's .npy format (format versions 1.0–3.0, C order), the exchange
// format between loract and its Python peers in package bench.
//
// A float64 array is a *mat.Dense and a float32 array a *lowrank.Dense32;
// both are written in row-major (C) order, little-endian, as NumPy itself
// writes them ('<f8' and '<f4'). Reading accepts either byte order and a
// one-dimensional array (as a 1×n matrix); Fortran-order files, empty
// arrays and other element types are reported as errors wrapping ErrFormat.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/lowrank"
)

// ErrFormat is wrapped by every error reporting a file that is not a
// supported .npy array.
var ErrFormat = errors.New("npy: unsupported or malformed .npy data")

const magic = "\x93NUMPY"

// chunk is the number of elements converted per buffered write or read.
const chunk = 1 << 14

// maxElems bounds the elements of an array read, so that a corrupt header
// cannot ask for an absurd allocation: 2³⁴ elements (64 GiB of float32).
const maxElems = 1 << 34

// Write writes a as a .npy version 1.0 array to w: a *lowrank.Dense32 as
// '<f4', every other matrix as '<f8' (read through At unless it is a
// *mat.Dense). It is not modified.
func Write(w io.Writer, a mat.Matrix) error {
	m, n := a.Dims()
	descr := "<f8"
	if _, ok := a.(*lowrank.Dense32); ok {
		descr = "<f4"
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }", descr, m, n)
	// The preamble (magic, version, length, header, '\n') is padded with
	// spaces to a multiple of 64 bytes, as NumPy does.
	pre := len(magic) + 2 + 2
	pad := 64 - (pre+len(header)+1)%64
	if pad == 64 {
		pad = 0
	}
	header += strings.Repeat(" ", pad) + "\n"
	if len(header) > math.MaxUint16 {
		return fmt.Errorf("npy: header of %d bytes is too long", len(header))
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var lenb [2]byte
	binary.LittleEndian.PutUint16(lenb[:], uint16(len(header)))
	bw.WriteString(magic)
	bw.Write([]byte{1, 0})
	bw.Write(lenb[:])
	bw.WriteString(header)
	switch a := a.(type) {
	case *lowrank.Dense32:
		buf := make([]byte, 0, 4*chunk)
		for i := 0; i < m; i++ {
			row := a.Row(i)
			for len(row) > 0 {
				c := min(len(row), chunk)
				buf = buf[:0]
				for _, v := range row[:c] {
					buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
				}
				if _, err := bw.Write(buf); err != nil {
					return err
				}
				row = row[c:]
			}
		}
	default:
		buf := make([]byte, 0, 8*chunk)
		row := make([]float64, n)
		for i := 0; i < m; i++ {
			if d, ok := a.(*mat.Dense); ok {
				row = d.RawRowView(i)
			} else {
				for j := range row {
					row[j] = a.At(i, j)
				}
			}
			for r := row; len(r) > 0; {
				c := min(len(r), chunk)
				buf = buf[:0]
				for _, v := range r[:c] {
					buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
				}
				if _, err := bw.Write(buf); err != nil {
					return err
				}
				r = r[c:]
			}
		}
	}
	return bw.Flush()
}

// WriteFile writes a to the named file as Write does, creating or
// truncating it.
func WriteFile(name string, a mat.Matrix) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := Write(f, a); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Read reads one .npy array from r: a float64 array ('<f8' or '>f8') is
// returned as a *mat.Dense, a float32 array ('<f4' or '>f4') as a
// *lowrank.Dense32. A one-dimensional array of length n is returned as a
// 1×n matrix. Errors wrap ErrFormat for data that is not such an array,
// and io.ErrUnexpectedEOF for a truncated one.
func Read(r io.Reader) (mat.Matrix, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	h, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	m, n := h.rows, h.cols
	var order binary.ByteOrder = binary.LittleEndian
	if h.big {
		order = binary.BigEndian
	}
	// The elements are read a chunk at a time into slices that grow with
	// what actually arrives: a header claiming a huge array in front of a
	// short body costs what the body holds, not what the header claims.
	if h.size == 4 {
		data, err := readElems(br, m*n, 4, func(b []byte) float32 { return math.Float32frombits(order.Uint32(b)) })
		if err != nil {
			return nil, err
		}
		return &lowrank.Dense32{Rows: m, Cols: n, Stride: n, Data: data}, nil
	}
	data, err := readElems(br, m*n, 8, func(b []byte) float64 { return math.Float64frombits(order.Uint64(b)) })
	if err != nil {
		return nil, err
	}
	return mat.NewDense(m, n, data), nil
}

// readElems reads n elements of size bytes each, decoded by dec.
func readElems[T float32 | float64](br *bufio.Reader, n, size int, dec func([]byte) T) ([]T, error) {
	data := make([]T, 0, min(n, chunk))
	buf := make([]byte, size*chunk)
	for len(data) < n {
		c := min(chunk, n-len(data))
		if _, err := io.ReadFull(br, buf[:size*c]); err != nil {
			return nil, truncated(err)
		}
		for j := range c {
			data = append(data, dec(buf[size*j:]))
		}
	}
	return data, nil
}

func truncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadFile reads the named .npy file as Read does.
func ReadFile(name string) (mat.Matrix, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return a, nil
}

type header struct {
	rows, cols int
	size       int // bytes per element: 4 or 8
	big        bool
}

func readHeader(br *bufio.Reader) (header, error) {
	var h header
	var pre [8]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil {
		return h, fmt.Errorf("%w: short preamble: %v", ErrFormat, err)
	}
	if string(pre[:6]) != magic {
		return h, fmt.Errorf("%w: bad magic %q", ErrFormat, pre[:6])
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return h, fmt.Errorf("%w: short header length", ErrFormat)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return h, fmt.Errorf("%w: short header length", ErrFormat)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return h, fmt.Errorf("%w: format version %d.%d", ErrFormat, pre[6], pre[7])
	}
	if hlen > 1<<20 {
		return h, fmt.Errorf("%w: header of %d bytes", ErrFormat, hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(br, hb); err != nil {
		return h, fmt.Errorf("%w: short header", ErrFormat)
	}
	dict := string(bytes.TrimSpace(hb))
	descr, err := dictValue(dict, "descr")
	if err != nil {
		return h, err
	}
	switch strings.Trim(descr, `'"`) {
	case "<f4":
		h.size = 4
	case ">f4":
		h.size, h.big = 4, true
	case "<f8":
		h.size = 8
	case ">f8":
		h.size, h.big = 8, true
	default:
		return h, fmt.Errorf("%w: element type %s (want float32 or float64)", ErrFormat, descr)
	}
	fo, err := dictValue(dict, "fortran_order")
	if err != nil {
		return h, err
	}
	if fo != "False" {
		return h, fmt.Errorf("%w: fortran_order %s (only C order is read)", ErrFormat, fo)
	}
	shape, err := dictValue(dict, "shape")
	if err != nil {
		return h, err
	}
	var dims []int
	for _, f := range strings.Split(strings.Trim(shape, "()"), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return h, fmt.Errorf("%w: shape %s", ErrFormat, shape)
		}
		dims = append(dims, v)
	}
	switch len(dims) {
	case 1:
		h.rows, h.cols = 1, dims[0]
	case 2:
		h.rows, h.cols = dims[0], dims[1]
	default:
		return h, fmt.Errorf("%w: %d-dimensional shape %s (want 1 or 2)", ErrFormat, len(dims), shape)
	}
	if h.rows == 0 || h.cols == 0 {
		return h, fmt.Errorf("%w: empty array of shape %s", ErrFormat, shape)
	}
	if h.cols > maxElems/h.rows {
		return h, fmt.Errorf("%w: shape %s has more than %d elements", ErrFormat, shape, maxElems)
	}
	return h, nil
}

// dictValue returns the literal value of key in the Python dict literal
// of a .npy header: a quoted string, True/False, or a parenthesised tuple.
func dictValue(dict, key string) (string, error) {
	for _, q := range []string{"'", `"`} {
		i := strings.Index(dict, q+key+q)
		if i < 0 {
			continue
		}
		rest := strings.TrimSpace(dict[i+len(key)+2:])
		if !strings.HasPrefix(rest, ":") {
			break
		}
		rest = strings.TrimSpace(rest[1:])
		var end int
		switch {
		case strings.HasPrefix(rest, "("):
			end = strings.Index(rest, ")") + 1
		case strings.HasPrefix(rest, "'"), strings.HasPrefix(rest, `"`):
			end = strings.Index(rest[1:], rest[:1]) + 2
		default:
			end = strings.IndexAny(rest, ",}")
		}
		if end <= 0 {
			break
		}
		return strings.TrimSpace(rest[:end]), nil
	}
	return "", fmt.Errorf("%w: header has no %q: %s", ErrFormat, key, dict)
}
