package gpu

import "fmt"

// Math chooses the arithmetic of the large products (Mul).
type Math int

const (
	// FP32 computes float32 products exactly as IEEE float32 with float32
	// accumulation (cuBLAS CUBLAS_DEFAULT_MATH, no tensor cores): the
	// default. A bf16 operand is multiplied with the other operand rounded
	// to bf16, with float32 accumulation.
	FP32 Math = iota
	// TF32 computes float32 products on the tensor cores with operands
	// rounded to TF32 (10-bit mantissa, u = 2⁻¹¹) and float32 accumulation.
	TF32
	// BF16 rounds both operands to bf16 (u = 2⁻⁸) and accumulates in
	// float32 on the tensor cores.
	BF16
)

func (m Math) String() string {
	switch m {
	case FP32:
		return "fp32"
	case TF32:
		return "tf32"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("Math(%d)", int(m))
}

// QRMethod chooses the thin QR of tall-skinny matrices.
type QRMethod int

const (
	// CholQR is shifted Cholesky QR, three passes (Fukaya et al., 2020):
	// each pass is one Gram product (syrk), one kernel for the small
	// Cholesky factor and its inverse, and one product Y·R⁻¹. A pass whose
	// Cholesky breaks down, or a result whose orthogonality defect is not
	// at rounding level, falls back to Householder. The default.
	CholQR QRMethod = iota
	// Householder is cuSOLVER's geqrf followed by orgqr.
	Householder
)

func (q QRMethod) String() string {
	if q == Householder {
		return "householder"
	}
	return "cholqr"
}

// Options configures a Backend. The zero value means exact float32
// products, Cholesky QR and a stream of the backend's own.
type Options struct {
	Math Math
	QR   QRMethod
	// Stream, if not 0, is the CUstream (a training loop's, or a
	// framework's current stream) on which the backend queues all its
	// work, so that it is ordered with the caller's kernels without
	// events; the backend never destroys it. 0 creates a non-blocking
	// stream of the backend's own.
	Stream uintptr
}
