package vec

// DotAxpy returns Σ a_j·x_j and adds alpha·a to y, reading each element of
// a once: the row step of a symmetric matrix–vector product from one
// triangle (row k of the lower triangle contributes a·x to y_k and
// x_k·a to y[0:k]). x and y must be at least as long as a. With AVX-512
// the multiples of 32 elements go through an assembly kernel (32
// accumulators and the updates of y by fused multiply-add, the
// accumulators summed pairwise), the rest through a loop of four
// accumulators, so the result depends on the length of a and the CPU's
// instruction set only.
func DotAxpy(a, x, y []float64, alpha float64) float64 {
	n := len(a)
	if n == 0 {
		return 0
	}
	x, y = x[:n], y[:n]
	i := 0
	var head float64
	if m := n / 32 * 32; m > 0 && hasVecKernels {
		head = dotAxpyAVX512(&a[0], &x[0], &y[0], m, alpha)
		i = m
	}
	var s0, s1, s2, s3 float64
	for ; i+4 <= n; i += 4 {
		v, xs, ys := a[i:i+4:i+4], x[i:i+4:i+4], y[i:i+4:i+4]
		v0, v1, v2, v3 := v[0], v[1], v[2], v[3]
		s0 += v0 * xs[0]
		s1 += v1 * xs[1]
		s2 += v2 * xs[2]
		s3 += v3 * xs[3]
		ys[0] += v0 * alpha
		ys[1] += v1 * alpha
		ys[2] += v2 * alpha
		ys[3] += v3 * alpha
	}
	for ; i < n; i++ {
		s0 += a[i] * x[i]
		y[i] += a[i] * alpha
	}
	return head + ((s0 + s1) + (s2 + s3))
}
