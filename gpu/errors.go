package gpu

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; errors returned by this package wrap one of them or are
// a *CUDAError.
var (
	// ErrUnavailable is returned when the CUDA libraries or a device cannot
	// be found. GPU tests skip with it.
	ErrUnavailable = errors.New("gpu: CUDA unavailable")
	// ErrClosed is returned by operations on a closed Backend.
	ErrClosed = errors.New("gpu: backend is closed")
	// ErrForeign is the panic value for a matrix of another backend or type,
	// a programming error.
	ErrForeign = errors.New("gpu: matrix does not belong to this backend")
)

// CUDAError reports a failed call into the CUDA driver, NVRTC, cuBLAS or
// cuSOLVER: Call names the C function, Code is its status and Name the
// status's symbolic name where the library provides one.
type CUDAError struct {
	Call string
	Code int
	Name string
	// Detail is extra context, such as NVRTC's compile log or the size of
	// a failed allocation.
	Detail string
}

func (e *CUDAError) Error() string {
	s := fmt.Sprintf("gpu: %s failed: status %d", e.Call, e.Code)
	if e.Name != "" {
		s += " (" + e.Name + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// OutOfMemory reports whether e is an out-of-memory status
// (CUDA_ERROR_OUT_OF_MEMORY = 2, CUBLAS_STATUS_ALLOC_FAILED = 3,
// CUSOLVER_STATUS_ALLOC_FAILED = 2).
func (e *CUDAError) OutOfMemory() bool {
	switch {
	case strings.HasPrefix(e.Call, "cublas"):
		return e.Code == 3
	case strings.HasPrefix(e.Call, "cusolver"):
		return e.Code == 2
	case strings.HasPrefix(e.Call, "nvrtc"):
		return e.Code == 1
	}
	return e.Code == 2
}

// check converts a driver API status into an error naming call.
func (a *cudaAPI) check(code int32, call string) error {
	if code == 0 {
		return nil
	}
	var p uintptr
	name := ""
	if a.cuGetErrorName != nil && a.cuGetErrorName(code, &p) == 0 {
		name = cString(p)
	}
	return &CUDAError{Call: call, Code: int(code), Name: name}
}

var cublasNames = map[int32]string{
	1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
	8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR", 13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}

var cusolverNames = map[int32]string{
	1: "CUSOLVER_STATUS_NOT_INITIALIZED", 2: "CUSOLVER_STATUS_ALLOC_FAILED", 3: "CUSOLVER_STATUS_INVALID_VALUE",
	4: "CUSOLVER_STATUS_ARCH_MISMATCH", 6: "CUSOLVER_STATUS_EXECUTION_FAILED", 7: "CUSOLVER_STATUS_INTERNAL_ERROR",
	8: "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED", 9: "CUSOLVER_STATUS_NOT_SUPPORTED",
}

func checkBLAS(code int32, call string) error {
	if code == 0 {
		return nil
	}
	return &CUDAError{Call: call, Code: int(code), Name: cublasNames[code]}
}

func checkSolver(code int32, call string) error {
	if code == 0 {
		return nil
	}
	return &CUDAError{Call: call, Code: int(code), Name: cusolverNames[code]}
}

func checkNVRTC(code int32, call string) error {
	if code == 0 {
		return nil
	}
	return &CUDAError{Call: call, Code: int(code)}
}
