package lowrank

import (
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
	// Slice returns a view of rows [i0, i1) and columns [j0, j1) of m
	// sharing its storage. It panics with ErrShape for a range outside m.
	Slice(m Matrix, i0, i1, j0, j1 int) Matrix

	// Mul computes c = alpha·op(a)·op(b) + beta·c, where op(x) is xᵀ if the
	// corresponding flag is true and x otherwise. a or b may be a read-only
	// input matrix of another element type (the CPU backend's *Dense32);
	// c is never an input matrix and must not share memory with a or b.
	// With beta = 0, c is not read.
	Mul(c Matrix, alpha float64, a Matrix, ta bool, b Matrix, tb bool, beta float64) error
	// Scale multiplies every element of the working matrix m by alpha.
	Scale(m Matrix, alpha float64) error

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

	// SquaredRowNorms writes the squared Euclidean norms of the rows of
	// scale·op(a) (op(a) = aᵀ if trans), accumulated in float64, into dst,
	// whose length must be the number of rows of op(a).
	SquaredRowNorms(dst []float64, a Matrix, trans bool, scale float64) error

	// SquaredNorm returns, in one read of m, the squared Frobenius norm of
	// scale·m, Σ (scale·m_ij)², accumulated in float64, and max |m_ij|
	// (unscaled). A NaN or ±Inf element makes both non-finite or NaN.
	SquaredNorm(m Matrix, scale float64) (sumSq, maxAbs float64, err error)
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

// GatherNormer is an optional capability of a Backend: Gather and
// SquaredNorm(a, 1) in one read of a. The randomized algorithms check for
// it with a type assertion and otherwise call the two separately, so the
// algorithms stay backend-neutral while a device backend saves a pass over
// its largest operand.
type GatherNormer interface {
	// GatherNorm sets column j of dst to row idx[j] of op(a), as Gather
	// does, and returns what SquaredNorm(a, 1) returns: Σ a_ij²,
	// accumulated in float64 in an order fixed by the shapes (so the
	// result is deterministic), and max |a_ij|. A NaN or ±Inf element
	// makes both non-finite or NaN (dst's contents are then unspecified).
	// Shape mismatches and out-of-range indices panic as in Gather.
	GatherNorm(dst Matrix, a Matrix, trans bool, idx []int) (sumSq, maxAbs float64, err error)
}

// SymEigener is an optional capability of a Backend: the eigenvalue
// decomposition of a small symmetric matrix by a method faster than its
// SVD. The truncation of an oversampled QB (the ℓ×ℓ Gram matrix of B)
// checks for it with a type assertion and otherwise calls SVD, which for
// a symmetric positive semidefinite matrix gives the same decomposition.
type SymEigener interface {
	// SymEig writes g = w·diag(lam)·wᵀ for the symmetric l×l g (read
	// from both triangles or one, as the backend documents; g is not
	// modified): w is l×l and orthonormal, lam has length l and is
	// non-increasing, eigenvalues below zero (rounding, for a
	// semidefinite g) reported as 0.
	SymEig(w Matrix, lam []float64, g Matrix) error
}

// Batcher is an optional capability of a Backend: the steps of several
// decompositions in one call each. A device backend then
// makes one host synchronisation per call instead of one per matrix and
// runs the QRs as batched products and factorisations, so that many small
// compressions cost about what one does (sampling.Decomposer.QBBatchTo).
// The algorithms check for it with a type assertion and otherwise loop
// over the single operations, with the same results.
type Batcher interface {
	// GatherNormBatch is GatherNorm(dst[i], a[i], trans, idx[i]) for
	// every i, the results in sumSq[i] and maxAbs[i]. The slices have
	// one length (panic with ErrShape otherwise).
	GatherNormBatch(dst, a []Matrix, trans bool, idx [][]int, sumSq, maxAbs []float64) error
	// QRBatch is QR(a[i], nil) for every i; the matrices have one width
	// (panic with ErrShape otherwise), any heights, and do not overlap.
	QRBatch(a []Matrix) error
	// SquaredNormBatch is SquaredNorm(m[i], scale) for every i.
	SquaredNormBatch(m []Matrix, scale float64, sumSq, maxAbs []float64) error
	// MulBatch is Mul(c[i], alpha, a[i], ta, b[i], tb, beta) for every i
	// (a backend may batch the products of one shape together).
	MulBatch(c []Matrix, alpha float64, a []Matrix, ta bool, b []Matrix, tb bool, beta float64) error
	// CopyBatch is Copy(dst[i], src[i]) for every i.
	CopyBatch(dst, src []Matrix) error
}

// Deferrer is implemented by a Batcher that can leave the host results of
// a batch's calls where they were computed until one Collect: a device
// backend then makes one host synchronisation for a whole batch of QBs
// where the Batcher's calls make one each (the GPU backend: three a batch
// become one). Each deferred call is its Batcher call with the same
// arguments, except that its results reach the caller's slices only at
// Collect: until then the slices must stay untouched and unread.
// sampling.Decomposer.QBBatchTo defers where it can and checks every
// result after Collect, redoing the items whose speculation failed.
type Deferrer interface {
	// SketchBatchDeferred is GatherNormBatch of omega, or with seeds not
	// nil SeededBatcher's GatherNormBatchSeeded, whose sumSq and maxAbs
	// are written by the next Collect, followed by the sketches
	// MulBatch(y, 1, a, trans, omega, false, 0). After it omega's
	// contents are unspecified: a backend may gather the sampled rows for
	// the products in another precision where that changes nothing (the
	// GPU's: bf16 rows of bf16 activations, as the bf16 products would
	// read them).
	SketchBatchDeferred(y, omega, a []Matrix, trans bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64) error
	// QRBatchDeferred replaces every a[i] as QRBatch does where the
	// backend's fast route succeeds, which Collect reports: failed[i]
	// (len(failed) = len(a)) is then true where it did not, a[i]'s
	// contents are unspecified, and the caller must orthogonalise that
	// item again from its input; where failed[i] is false a[i] holds
	// QRBatch's result.
	QRBatchDeferred(a []Matrix, failed []bool) error
	// SquaredNormBatchDeferred is SquaredNormBatch whose sumSq and maxAbs
	// are written by the next Collect.
	SquaredNormBatchDeferred(m []Matrix, scale float64, sumSq, maxAbs []float64) error
	// Collect waits for the deferred calls made since the last Collect
	// and writes their results. A caller that defers must call it, also
	// after an error of a later call, before it defers again.
	Collect() error
}

// TolerantQRer is an optional capability of a Backend: a QR whose Q need
// be orthonormal only to a given tolerance, cheaper than QR's
// working-precision orthonormality. The randomized algorithms use it for
// the sketch of an input stored in a coarser precision than the backend's
// working one (the CPU backend's *Dense32), whose products round Q to that
// precision anyway (skeleton.SketchQR), and otherwise call QR.
type TolerantQRer interface {
	// QRTol is QR(a, r) with Q satisfying ‖QᵀQ − I‖_F ≤ tol plus the
	// rounding of the backend's check (which it documents); tol = 0 is
	// QR.
	QRTol(a, r Matrix, tol float64) error
}

// Transposer is implemented by a Backend whose matrices can present their
// transpose as a view that shares their storage (the GPU backend, whose
// matrices are stored either way: gpu.Matrix.T). A batch may then hold
// inputs of both orientations: sampling's QBBatchTo decomposes an input
// whose orientation differs from the batch's through the view of its
// transpose, in the same batched calls, instead of on its own.
type Transposer interface {
	// Transpose returns aᵀ as a view of a's storage, or false (and nil)
	// where the backend has no such view of a.
	Transpose(a Matrix) (Matrix, bool)
}

// SeededGatherNormer is implemented by a GatherNormer that can draw the
// uniform sampler's indices itself (see SeededBatcher).
type SeededGatherNormer interface {
	// GatherNormSeeded is GatherNorm for indices that are the uniform
	// sampler's draw from seed (as for GatherNormBatchSeeded).
	GatherNormSeeded(dst, a Matrix, trans bool, idx []int, seed uint64) (sumSq, maxAbs float64, err error)
}

// SeededBatcher is implemented by a Batcher that can draw the uniform
// sampler's indices itself, where the data lives, instead of receiving
// them (the GPU backend: no host-to-device copy of the sampled indices).
type SeededBatcher interface {
	// GatherNormBatchSeeded is GatherNormBatch for indices that are,
	// item by item, the uniform sampler's draw from seeds[i]
	// (sampling.Uniform: math/rand/v2's rand.New(rand.NewPCG(seed, seed))
	// and a partial Fisher–Yates shuffle, j = i + IntN(p − i), of
	// len(idx[i]) of the p rows of op(a[i])); the caller passes both, and
	// the backend may use either. The slices have one length (panic with
	// ErrShape otherwise).
	GatherNormBatchSeeded(dst, a []Matrix, trans bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64) error
}
