package lowrank

import "fmt"

// Precision is the element type in which factors are stored. The zero
// value is BFloat16, the storage a memory tool defaults to.
type Precision int

const (
	// BFloat16 stores 2 bytes per element: the upper half of a float32,
	// rounded to nearest even (relative rounding error ≤ 2⁻⁸).
	BFloat16 Precision = iota
	// Float32 stores 4 bytes per element.
	Float32
	// Float64 stores 8 bytes per element.
	Float64
)

// Size returns the bytes per element of p. It panics for an unknown
// precision.
func (p Precision) Size() int {
	switch p {
	case Float64:
		return 8
	case Float32:
		return 4
	case BFloat16:
		return 2
	}
	panic(fmt.Sprintf("lowrank: unknown precision %d", int(p)))
}

// UnitRoundoff returns the unit roundoff u of p: |fl(x) − x| ≤ u·|x|.
func (p Precision) UnitRoundoff() float64 {
	switch p {
	case Float64:
		return 0x1p-53
	case Float32:
		return 0x1p-24
	case BFloat16:
		return 0x1p-8
	}
	panic(fmt.Sprintf("lowrank: unknown precision %d", int(p)))
}

func (p Precision) String() string {
	switch p {
	case Float64:
		return "float64"
	case Float32:
		return "float32"
	case BFloat16:
		return "bf16"
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}
