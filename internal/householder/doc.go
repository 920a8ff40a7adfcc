// Package householder holds the blocked Householder factorizations of
// loract's host code: the triangular factor T of a block reflector
// (Larft), the QR factorization (Geqrf), generation of its orthonormal
// factor (Orgqr), application of Q (ApplyQ), and on top of them a thin QR
// (QR) and the orthonormal factor of an LQ factorization (LQ).
//
// Storage is gonum's: row-major, with the reflectors of a factorization in
// LAPACK's layout. A Householder reflector is H = I − τ·v·vᵀ; reflector i
// of an m×n factorization has v[0:i] = 0, v[i] = 1 (implicit, not stored)
// and v[i+1:m] stored in column i of a below the diagonal, τ_i in tau[i].
// Q = H(0)·H(1)···H(k−1).
//
// The package exists because gonum v0.17.0's Dlarft (lapack/gonum/dlarft.go,
// the forward branch) computes a wrong T when a reflector has more trailing
// zeros than the one before it (docs/reliability.md, "gonum Dlarft defect"),
// and every blocked Householder routine of gonum v0.17.0 — Dgeqrf, Dorgqr,
// Dgelqf, Dorglq, Dormqr, Dormlq and what calls them, such as mat.QR and the
// QR-first path and Dorgbr of mat.SVD — forms its blocks with it once the
// problem exceeds the unblocked crossover (128 columns; 32 reflectors for
// Dormqr and Dormlq). Larft is a corrected Dlarft, the drop-in for callers
// of that routine; the blocked routines here take T from the Gram matrix
// of the explicit V instead (larftGram, one GEMM, the same recurrence) and
// apply the blocks by internal/gemm. Their unblocked kernel is gonum's
// Dgeqr2, which applies one reflector at a time (Dlarf) and never reaches
// Dlarft.
//
// Panics carry a string that starts with "householder: " and are
// programming errors: mismatched shapes, short slices.
package householder
