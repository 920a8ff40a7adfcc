// Package bounds turns the error theory of randomized low-rank
// approximation into code: the Eckart–Young optimum, the expected-error
// bounds of Halko, Martinsson and Tropp for Gaussian sketches, the
// deterministic structural bound (HMT Thm 9.1) evaluated exactly for the
// test matrix a decomposition actually drew, its specialisation to the
// row-sampled sketch of package sampling, coherence and the uniform
// sampling bound, and a-posteriori error estimators.
//
// Notation (docs/theory.md): A ∈ ℝ^{m×n} = U·Σ·Vᵀ with σ₁ ≥ σ₂ ≥ … ≥ 0,
// split at the target rank k into U = [U₁ U₂], Σ = diag(Σ₁, Σ₂),
// V = [V₁ V₂]. A sketch Y = A·Ω of width ℓ ≥ k has projection error
// ‖(I − P_Y)A‖. With Ω₁ = V₁ᵀΩ and Ω₂ = V₂ᵀΩ, if Ω₁ has full row rank,
//
//	‖(I − P_Y)A‖² ≤ ‖Σ₂‖² + ‖Σ₂·Ω₂·Ω₁†‖²    (spectral and Frobenius norms),
//
// HMT 2011 (SIAM Review 53(2), 217–288), Theorem 9.1. For the LoRAct
// sketch Ω = Aᵀ·Sᵀ (S selects ℓ rows) this becomes
//
//	‖(I − P_Y)A‖² ≤ ‖Σ₂‖² + ‖Σ₂²·U₂ᵀSᵀ·(U₁ᵀSᵀ)†·Σ₁⁻¹‖²,
//
// which Exact.RowSampling evaluates. The proofs, the comparison with the
// Gaussian bounds, and the regime table live in docs/theory.md; the
// command `loract theory` regenerates the table and the plot.
//
// All functions take singular values sorted non-increasing. Arguments out
// of a theorem's range (k < 1, a negative q, HMT's p < 2) are programmer
// errors and panic with ErrParam.
package bounds
