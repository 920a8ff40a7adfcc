// Package sampling implements the LoRAct sampling-based orthogonal (QB)
// decomposition (Shi et al. 2025, arXiv 2509.23472): the test matrix is not
// random numbers but rows of A itself.
//
// For an m×n A the algorithm works on op(A), which is A if m ≤ n and Aᵀ
// otherwise, so that the orthonormal factor lives in the smaller dimension
// (Options.Orientation overrides this). With op(A) of shape p×s, p ≤ s:
//
//  1. draw ℓ = k + Oversample distinct row indices S of op(A);
//  2. Ω = op(A)_Sᵀ (s×ℓ), the sampled rows: no random matrix is generated;
//  3. Y = op(A)·Ω (p×ℓ), a column sample of the Gram matrix op(A)·op(A)ᵀ;
//  4. PowerIters times: Y ← op(A)·(op(A)ᵀ·qr(Y));
//  5. Q = qr(Y), B = Qᵀ·op(A) (ℓ×s);
//  6. if ℓ > k, truncate to the k leading directions of B.
//
// Cost: 4·p·s·ℓ flops for the two products, 2·p·ℓ² for the QR, and
// 4·p·s·ℓ + 2·p·ℓ² per power iteration. Storage k·(m+n) numbers instead of
// m·n. docs/theory.md gives the error bounds, and package
// bounds computes them for the exact draw (Options.Draw records it).
//
// The reference implementation divides Y by √n; that scaling does not
// change range(Y) and this package omits it.
package sampling
