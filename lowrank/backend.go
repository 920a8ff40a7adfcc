package lowrank

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Matrix is a dense matrix owned by a Backend. Its element type, layout and
// location (host or device memory) are the backend's; the algorithms only
// ask for its shape and hand it back to the backend's operations.
//
// The CPU backend's matrices are *mat.Dense (working precision float64) and
// *Dense32 (read-only float32 input).
type Matrix interface {
	Dims() (r, c int)
}

// Backend holds exactly the operations the randomized algorithms of
// packages sampling and rsvd need. An implementation works on its own
// Matrix values; passing another backend's matrix is a programming error.
// Shape mismatches panic with ErrShape; every failure that depends on data
// or the environment (out of memory, a device error) is returned.
//
// Package lowrank/backendtest checks an implementation against this
// contract.
type Backend interface {
	// Name identifies the backend, e.g. "cpu" or "cuda:0".
	Name() string

	// New returns a zeroed r×c matrix in the backend's working precision.
	New(r, c int) (Matrix, error)
	// Free releases a matrix returned by New. Using it afterwards is a
	// programming error. Free of a view or an input is a no-op.
	Free(m Matrix)
	// Cols returns a view of columns [j0, j1) of m sharing its storage.
	Cols(m Matrix, j0, j1 int) Matrix

	// Mul computes c = alpha·op(a)·op(b) + beta·c, where op(x) is xᵀ if the
	// corresponding flag is true and x otherwise. a or b may be a read-only
	// input matrix of another element type (the CPU backend's *Dense32);
	// c is never an input matrix.
	Mul(c Matrix, alpha float64, a Matrix, ta bool, b Matrix, tb bool, beta float64) error

	// Gather sets column j of dst to row idx[j] of op(a), where op(a) is aᵀ
	// if trans and a otherwise: dst = op(a)[idx, :]ᵀ. For a p×q op(a), dst
	// is q×len(idx). This forms the LoRAct test matrix Ω = A_Sᵀ.
	Gather(dst Matrix, a Matrix, trans bool, idx []int) error

	// Normal fills m with independent standard normal samples drawn from a
	// stream determined by seed alone.
	Normal(m Matrix, seed uint64) error

	// QR replaces a (p×l, p ≥ l) by the factor Q of a thin QR
	// factorisation a = Q·R, whose l columns are orthonormal even when a is
	// rank deficient, and, if r is not nil, writes the upper triangular R
	// (l×l) into r.
	QR(a, r Matrix) error

	// LU replaces a (p×l, p ≥ l) by the unit lower trapezoidal factor L of
	// the partially pivoted a = P·L·U, used to normalise power iterations.
	LU(a Matrix) error

	// SVD writes the singular value decomposition a = u·diag(s)·vᵀ of a
	// small square l×l matrix: u and v are l×l, s has length l and is
	// non-increasing.
	SVD(u Matrix, s []float64, v Matrix, a Matrix) error

	// RowNorms2 writes the squared Euclidean norms of the rows of op(a)
	// (op(a) = aᵀ if trans) into dst, whose length must be the number of
	// rows of op(a).
	RowNorms2(dst []float64, a Matrix, trans bool) error

	// Norm2 returns ‖m‖_F², accumulated in float64.
	Norm2(m Matrix) (float64, error)
	// FindNonFinite returns the first NaN or ±Inf element of m in row-major
	// order, and found = false if there is none.
	FindNonFinite(m Matrix) (i, j int, v float64, found bool, err error)

	// Copy copies src into dst of the same shape.
	Copy(dst, src Matrix) error
	// Download copies m into dst, which is resized if empty.
	Download(dst *mat.Dense, m Matrix) error
	// Upload copies src into m, which must have its shape.
	Upload(m Matrix, src mat.Matrix) error
}

// CheckInput validates a matrix before an algorithm uses it: it returns an
// error wrapping ErrEmpty for an empty matrix, and a *NotFiniteError for the
// first NaN or ±Inf element. It returns ‖a‖_F² for later use. On the CPU
// it costs one read of a.
func CheckInput(b Backend, a Matrix) (norm2 float64, err error) {
	m, n := a.Dims()
	if m == 0 || n == 0 {
		return 0, fmt.Errorf("%w: %d×%d", ErrEmpty, m, n)
	}
	norm2, err = b.Norm2(a)
	if err != nil {
		return 0, err
	}
	if norm2-norm2 == 0 { // finite
		return norm2, nil
	}
	i, j, v, found, err := b.FindNonFinite(a)
	if err != nil {
		return 0, err
	}
	if found {
		return 0, &NotFiniteError{Row: i, Col: j, Value: v}
	}
	return 0, fmt.Errorf("%w: ‖A‖_F² overflows float64", ErrNotFinite)
}

// Workspace caches a backend's matrices by name, so that repeated calls of
// an algorithm with the same shapes allocate nothing. It is not safe for
// concurrent use; use one Workspace per goroutine.
type Workspace struct {
	b    Backend
	bufs map[string]Matrix
}

// NewWorkspace returns an empty workspace on b.
func NewWorkspace(b Backend) *Workspace {
	return &Workspace{b: b, bufs: make(map[string]Matrix)}
}

// Backend returns the workspace's backend.
func (w *Workspace) Backend() Backend { return w.b }

// Get returns the matrix cached under name, reallocated if its shape is not
// r×c. Its contents are whatever the last user left.
func (w *Workspace) Get(name string, r, c int) (Matrix, error) {
	if m, ok := w.bufs[name]; ok {
		if mr, mc := m.Dims(); mr == r && mc == c {
			return m, nil
		}
		w.b.Free(m)
		delete(w.bufs, name)
	}
	m, err := w.b.New(r, c)
	if err != nil {
		return nil, err
	}
	w.bufs[name] = m
	return m, nil
}

// Take removes the matrix cached under name from the workspace and
// returns it (nil if there is none): the caller owns it from then on, and
// the next Get of that name allocates afresh. Results handed to a caller
// are taken, so that a later call cannot overwrite them.
func (w *Workspace) Take(name string) Matrix {
	m := w.bufs[name]
	delete(w.bufs, name)
	return m
}

// Close frees every cached matrix. The workspace stays usable.
func (w *Workspace) Close() {
	for name, m := range w.bufs {
		w.b.Free(m)
		delete(w.bufs, name)
	}
}
