package cpu

import (
	"math"
	"math/bits"
)

// The ziggurat of Marsaglia and Tsang ("The Ziggurat Method for
// Generating Random Variables", J. Stat. Softw. 5(8), 2000) for the
// standard normal density with 128 layers: zigR is the start of the
// tail, zigV the area of each layer. zigK[i] is the largest |j| (j a
// signed 31-bit draw) whose x = j·zigW[i] lies under layer i's inner
// rectangle, where it is accepted at once; zigF[i] = exp(−x_i²/2) at
// the layer's edge x_i. The tables are computed as in the paper (the
// procedure of its zigset), rounded to float32 and uint32.
const (
	zigR = 3.442619855899
	zigV = 9.91256303526217e-3
)

var zigK, zigW, zigF = zigTables()

func zigTables() (k [128]uint32, w, f [128]float32) {
	const m1 = 1 << 31
	dn, tn := zigR, zigR
	q := zigV / math.Exp(-0.5*dn*dn)
	k[0] = uint32(dn / q * m1)
	k[1] = 0
	w[0] = float32(q / m1)
	w[127] = float32(dn / m1)
	f[0] = 1
	f[127] = float32(math.Exp(-0.5 * dn * dn))
	for i := 126; i >= 1; i-- {
		dn = math.Sqrt(-2 * math.Log(zigV/dn+math.Exp(-0.5*dn*dn)))
		k[i+1] = uint32(dn / tn * m1)
		tn = dn
		f[i] = float32(math.Exp(-0.5 * dn * dn))
		w[i] = float32(dn / m1)
	}
	return k, w, f
}

// pcg is the PCG generator of math/rand/v2 (a 128-bit LCG with the
// DXSM output function; O'Neill, "PCG: A Family of Simple Fast
// Space-Efficient Statistically Good Algorithms for Random Number
// Generation", 2014, and pcg-cpp's multiplier and increment): pcg{hi, lo}
// draws the numbers rand.NewPCG(hi, lo) does, called directly rather
// than through rand.Source.
type pcg struct{ hi, lo uint64 }

// next advances p and returns its next 64-bit number.
func (p *pcg) next() uint64 {
	const (
		mulHi = 0x2360ed051fc65da4
		mulLo = 0x4385df649fccf645
		incHi = 0x5851f42d4c957f2d
		incLo = 0x14057b7ef767814f
		dxsm  = 0xda942042e4dd58b5
	)
	hi, lo := bits.Mul64(p.lo, mulLo)
	hi += p.hi*mulLo + p.lo*mulHi
	lo, c := bits.Add64(lo, incLo, 0)
	hi, _ = bits.Add64(hi, incHi, c)
	p.hi, p.lo = hi, lo
	hi ^= hi >> 32
	hi *= dxsm
	hi ^= hi >> 48
	return hi * (lo | 1)
}

// unit returns a uniform number in [0, 1) from p, as rand.Rand.Float64.
func (p *pcg) unit() float64 { return float64(p.next()<<11>>11) / (1 << 53) }

// fillNormal fills dst with standard normal numbers from p and leaves p
// after the last number it drew: from pcg{seed1, seed2}, the numbers
// rand.New(rand.NewPCG(seed1, seed2)).NormFloat64 returns, in order
// (TestFillNormal), in 0.71–0.84 of their time (BenchmarkFillNormal,
// 16 Ki draws, this 2-core Xeon),
// without a call through the Source interface per draw. The PCG's five
// multiplications a draw bound it.
func (pp *pcg) fillNormal(dst []float64) {
	p := *pp
	defer func() { *pp = p }()
	for n := range dst {
		for {
			u := p.next()
			j := int32(u)
			i := u >> 32 & 0x7f
			x := float64(j) * float64(zigW[i])
			aj := uint32(j)
			if j < 0 {
				aj = uint32(-j)
			}
			if aj < zigK[i] {
				dst[n] = x
				break
			}
			if i == 0 { // the tail beyond zigR
				for {
					x = -math.Log(p.unit()) * (1 / zigR)
					y := -math.Log(p.unit())
					if y+y >= x*x {
						break
					}
				}
				if j > 0 {
					dst[n] = zigR + x
				} else {
					dst[n] = -zigR - x
				}
				break
			}
			if zigF[i]+float32(p.unit())*(zigF[i-1]-zigF[i]) < float32(math.Exp(-0.5*x*x)) {
				dst[n] = x
				break
			}
		}
	}
}
