// Package lowrank is the vocabulary of loract: low-rank factor types, the
// float32 activation matrix type, error measures, the backend interface the
// randomized algorithms are written against, the CPU backend, and the exact
// (truncated) SVD that every other method is judged by.
//
// # Factors
//
// A QB approximation of an m×n matrix A is A ≈ Q·B with Q (m×k) having
// orthonormal columns and B = QᵀA (k×n). When it is cheaper to put the
// orthonormal factor in the other dimension, a QB may be transposed:
// A ≈ (Q·B)ᵀ = Bᵀ·Qᵀ with Q (n×k) and B (k×m). Trans reports which.
// Either way the factors hold k·(m+n) numbers instead of m·n.
//
// An SVD approximation is A ≈ U·diag(S)·Vᵀ with U (m×k), V (n×k) orthonormal
// and S non-increasing and non-negative.
//
// # Backends
//
// The algorithms in packages sampling and rsvd are written once against the
// Backend interface, which holds exactly the operations they need: products
// with transposes, thin QR, row gather, random normals, norms and a small
// SVD. CPU is the gonum-based implementation in this package; package gpu
// provides a CUDA one. Package lowrank/backendtest is the conformance suite
// that every backend passes.
//
// # Errors and panics
//
// Following gonum, shape mismatches between arguments that the caller
// controls are programming errors and panic with ErrShape. Conditions that
// depend on data or environment — NaN or Inf in the input, a rank out of
// range, an empty matrix — are reported as errors that name the cause.
package lowrank
