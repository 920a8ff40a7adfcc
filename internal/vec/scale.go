package vec

import "math"

// ScaleExp multiplies every element of x by 2^e, in place. The product is
// exact unless it is subnormal (then it is correctly rounded, as by
// math.Ldexp) or overflows (±Inf); e may be any int, including one for
// which 2^e itself is not a float64, as when a subnormal is scaled to 1.
func ScaleExp(x []float64, e int) {
	if e == 0 {
		return
	}
	// 2^e is a normal float64 for e ∈ [−1022, 1023]; a product by it is
	// the correctly rounded x·2^e. Beyond, two factors: for e > 1023 the
	// first product is exact (it scales up), and for e < −1022 the first
	// factor 2^−1022 is exact unless the intermediate underflows, in which
	// case math.Ldexp rounds once.
	switch {
	case e >= -1022 && e <= 1023:
		s := math.Ldexp(1, e)
		for i := range x {
			x[i] *= s
		}
	default:
		for i := range x {
			x[i] = math.Ldexp(x[i], e)
		}
	}
}
