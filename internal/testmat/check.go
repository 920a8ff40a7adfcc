package testmat

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Gaussian returns an m×n matrix of independent standard normals.
func Gaussian(m, n int, seed uint64) *mat.Dense {
	rng := rand.New(rand.NewPCG(seed, 0x6a))
	a := mat.NewDense(m, n, nil)
	raw := a.RawMatrix()
	for i := range raw.Data {
		raw.Data[i] = rng.NormFloat64()
	}
	return a
}

// Strided returns a copy of a held as a view into a larger matrix, so that
// its stride exceeds its number of columns and the neighbouring elements
// hold NaN: any read outside the view poisons the result.
func Strided(a mat.Matrix) *mat.Dense {
	m, n := a.Dims()
	big := mat.NewDense(m+2, n+3, nil)
	for i := 0; i < m+2; i++ {
		for j := 0; j < n+3; j++ {
			big.Set(i, j, math.NaN())
		}
	}
	v := big.Slice(1, m+1, 2, n+2).(*mat.Dense)
	v.Copy(a)
	return v
}

// OrthError returns ‖QᵀQ − I‖_max.
func OrthError(q mat.Matrix) float64 {
	_, k := q.Dims()
	var g mat.Dense
	g.Mul(q.T(), q)
	e := 0.0
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			w := 0.0
			if i == j {
				w = 1
			}
			e = math.Max(e, math.Abs(g.At(i, j)-w))
		}
	}
	return e
}

// Sigma returns the singular values used by Incoherent for a spectrum
// function applied to min(m, n) values, for convenience in tables.
func Sigma(m, n int, spectrum func(int) []float64) []float64 { return spectrum(min(m, n)) }
