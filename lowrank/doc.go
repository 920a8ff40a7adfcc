// Package lowrank is the vocabulary of loract: the low-rank factor types,
// the float32 matrix activations arrive in, storage precisions, error
// measures, the sentinel errors, and the Backend interface that every
// randomized algorithm is written against. It holds no algorithm: the CPU
// backend is package cpu, the CUDA backend package gpu, the exact SVD
// package exact, the LoRAct decomposition package sampling and the
// Gaussian randomized SVD package rsvd.
//
// # Factors
//
// A QB approximation of an m×n matrix A is A ≈ L·R with L m×k and R k×n,
// k(m+n) numbers instead of mn. One of the two factors is orthonormal: the
// algorithms put the orthonormal factor Q in the smaller dimension, so for
// m ≤ n, L = Q (orthonormal columns) and R = QᵀA, and for m > n, R = Qᵀ
// (orthonormal rows) and L = A·Q. QB.LeftOrthonormal says which; Left and
// Right are the factors to multiply, whatever the orientation. The
// identity ‖A − QQᵀA‖_F² = ‖A‖_F² − ‖QᵀA‖_F² gives the error of a QB
// without reconstructing it (ErrorFromSquaredNorms).
//
// An SVD approximation is A ≈ U·diag(S)·Vᵀ with U (m×k) and V (n×k)
// orthonormal and S non-increasing and non-negative.
//
// A Factors value is a QB whose matrices live on a Backend (on the GPU,
// in device memory); Factors.ToQB copies it to the host.
//
// # Orientation
//
// For an m×n A the algorithms work on op(A) = A or Aᵀ (Orientation): on A
// the orthonormal factor is m×k and rows of A are sampled, on Aᵀ it is n×k
// and columns are sampled. OrientAuto, the default, picks the smaller
// dimension. For an activation X of L tokens by d channels (L > d) that is
// op(X) = Xᵀ: channels are sampled.
//
// # Backends
//
// Backend holds exactly the operations the algorithms need (products with
// transposes, thin QR, row gather, random normals, norms, a small SVD);
// package lowrank/backendtest is the conformance suite every
// implementation passes.
//
// # Errors and panics
//
// Following gonum, shape mismatches between arguments that the caller
// controls are programming errors and panic with ErrShape (aliasing that a
// contract forbids panics with ErrAlias). Conditions that depend on data
// or the environment — NaN or Inf in the input (a *NotFiniteError giving
// its position), a rank out of range, an empty matrix, an invalid option,
// an iteration that did not converge — are errors wrapping one of the
// sentinels, so that callers test them with errors.Is.
//
// # Norms
//
// Squared norms are named as such (SquaredFrobenius, Factors.SquaredNormA):
// ‖A‖_F², not ‖A‖. They are accumulated in float64; where a squared norm
// would overflow or underflow it is held for a power-of-two multiple of the
// matrix (Factors.NormScale), so that ratios such as the relative error
// stay exact.
package lowrank
