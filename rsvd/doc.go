// Package rsvd implements the Halko–Martinsson–Tropp (2011) Gaussian
// randomized range finder and randomized SVD: a Gaussian test matrix with
// p oversampling columns, q power iterations re-normalised at every half
// step (QR, as PyTorch's svd_lowrank; LU, as scikit-learn's
// randomized_svd; or none), and a tolerance-driven blocked QB
// (Martinsson–Voronin; Yu, Gu and Li 2018) that stops once the
// a-posteriori error ‖A‖_F² − ‖B‖_F² falls below tol²·‖A‖_F².
//
// As in package sampling, the algorithm works on op(A) = A if m ≤ n and
// Aᵀ otherwise. Cost: 4·p·s·ℓ flops for the two products with the p×s
// op(A), plus 4·p·s·ℓ per power iteration and O((p+s)·ℓ²) for QRs, with
// ℓ = k + Oversample.
package rsvd
