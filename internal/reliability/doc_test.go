// Package reliability holds the cross-cutting property tests of the
// module's entry points: scale invariance from 1e-300 to 1e300, random
// rank-deficient inputs, and the hostile-input table of
// docs/reliability.md (every entry point against NaN, ±Inf, subnormal and
// extreme inputs, zero and rank-1 matrices, bad ranks, views and
// aliasing, each with its documented outcome). It has no non-test code.
package reliability
