// Package vec holds the vector kernels shared by package lowrank and the
// CPU backend.
package vec

import "math"

// SumSq64 returns the sum of squares of x: the sum of ScaledSumSq64(x, 1),
// bit for bit (the order is fixed, so the result is deterministic).
func SumSq64(x []float64) float64 {
	s, _ := ScaledSumSq64(x, 1)
	return s
}

// reduce32 sums the 32 lanes of an assembly kernel's accumulators
// pairwise, in a fixed order.
func reduce32(acc *[32]float64) float64 {
	for w := 16; w >= 1; w /= 2 {
		for j := range w {
			acc[j] += acc[j+w]
		}
	}
	return acc[0]
}

// SumSq32 returns the sum of squares of x accumulated in float64: the sum
// of ScaledSumSq32(x, 1), bit for bit.
func SumSq32(x []float32) float64 {
	s, _ := ScaledSumSq32(x, 1)
	return s
}

// ScaledSumSq64 returns Σ (scale·x_i)² and max |x_i| (unscaled), with the
// sum in a fixed order (for scale = 1 it is SumSq64's, bit for bit). A
// NaN in x makes both NaN; an Inf makes both +Inf. With scale 1 on a CPU
// with AVX-512 the multiples of 32 elements go through an assembly kernel
// (32 accumulators by fused multiply-add, summed pairwise), so the result
// depends on the length of x and the CPU's instruction set only.
//
// The maximum is taken on the bit patterns with the sign cleared, which
// order like the magnitudes for non-NaN values and put every NaN above
// +Inf: an integer max, without the branches of a floating-point one.
func ScaledSumSq64(x []float64, scale float64) (sumSq, maxAbs float64) {
	const abs = 1<<63 - 1
	var s0, s1, s2, s3 float64
	var m0, m1, m2, m3 uint64
	i := 0
	var head float64
	if n := len(x) / 32 * 32; scale == 1 && n > 0 && hasVecKernels {
		var acc [32]float64
		var mx [8]uint64
		sumSq64AVX512(&x[0], n, &acc, &mx)
		head = reduce32(&acc)
		for _, v := range mx {
			m0 = max(m0, v)
		}
		i = n
	}
	if scale == 1 {
		for ; i+4 <= len(x); i += 4 {
			v := x[i : i+4 : i+4]
			a, b, c, d := v[0], v[1], v[2], v[3]
			m0 = max(m0, math.Float64bits(a)&abs)
			m1 = max(m1, math.Float64bits(b)&abs)
			m2 = max(m2, math.Float64bits(c)&abs)
			m3 = max(m3, math.Float64bits(d)&abs)
			s0 += a * a
			s1 += b * b
			s2 += c * c
			s3 += d * d
		}
	} else {
		for ; i+4 <= len(x); i += 4 {
			v := x[i : i+4 : i+4]
			a, b, c, d := v[0], v[1], v[2], v[3]
			m0 = max(m0, math.Float64bits(a)&abs)
			m1 = max(m1, math.Float64bits(b)&abs)
			m2 = max(m2, math.Float64bits(c)&abs)
			m3 = max(m3, math.Float64bits(d)&abs)
			a, b, c, d = a*scale, b*scale, c*scale, d*scale
			s0 += a * a
			s1 += b * b
			s2 += c * c
			s3 += d * d
		}
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float64bits(x[i])&abs)
		a := x[i] * scale
		s0 += a * a
	}
	return head + ((s0 + s1) + (s2 + s3)), math.Float64frombits(max(m0, m1, m2, m3))
}

// ScaledSumSq32 is ScaledSumSq64 for float32 elements, accumulated in
// float64. With scale 1 on a CPU with AVX-512 the multiples of 32
// elements go through an assembly kernel (32 float64 accumulators, their
// sum in a fixed order; the rest as below), so the result depends on the
// length of x and the CPU's instruction set, never on anything else.
func ScaledSumSq32(x []float32, scale float64) (sumSq, maxAbs float64) {
	const abs = 1<<31 - 1
	var s0, s1, s2, s3 float64
	var m0, m1, m2, m3 uint32
	i := 0
	var head float64
	if n := len(x) / 32 * 32; scale == 1 && n > 0 && hasVecKernels {
		var acc [32]float64
		var mx [16]uint32
		sumSq32AVX512(&x[0], n, &acc, &mx)
		head = reduce32(&acc)
		for _, v := range mx {
			m0 = max(m0, v)
		}
		i = n
	}
	if scale == 1 {
		for ; i+4 <= len(x); i += 4 {
			v := x[i : i+4 : i+4]
			m0 = max(m0, math.Float32bits(v[0])&abs)
			m1 = max(m1, math.Float32bits(v[1])&abs)
			m2 = max(m2, math.Float32bits(v[2])&abs)
			m3 = max(m3, math.Float32bits(v[3])&abs)
			a, b, c, d := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
			s0 += a * a
			s1 += b * b
			s2 += c * c
			s3 += d * d
		}
	} else {
		for ; i+4 <= len(x); i += 4 {
			v := x[i : i+4 : i+4]
			m0 = max(m0, math.Float32bits(v[0])&abs)
			m1 = max(m1, math.Float32bits(v[1])&abs)
			m2 = max(m2, math.Float32bits(v[2])&abs)
			m3 = max(m3, math.Float32bits(v[3])&abs)
			a, b, c, d := float64(v[0])*scale, float64(v[1])*scale, float64(v[2])*scale, float64(v[3])*scale
			s0 += a * a
			s1 += b * b
			s2 += c * c
			s3 += d * d
		}
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float32bits(x[i])&abs)
		a := float64(x[i]) * scale
		s0 += a * a
	}
	return head + ((s0 + s1) + (s2 + s3)), float64(math.Float32frombits(max(m0, m1, m2, m3)))
}

// ScaleOf returns the power of two 2^e that brings amax into [1, 2),
// clamped to [2⁻¹⁰²², 2¹⁰²³] so that it is itself a normal float64: the
// largest float64 comes into [2, 4), the smallest subnormal to 2⁻⁵¹. It is
// 1 for 0 and for a non-finite amax.
func ScaleOf(amax float64) float64 {
	if amax == 0 || math.IsInf(amax, 0) || math.IsNaN(amax) {
		return 1
	}
	_, e := math.Frexp(amax) // amax ∈ [2^(e−1), 2^e)
	return math.Ldexp(1, min(max(1-e, -1022), 1023))
}
