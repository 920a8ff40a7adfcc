// Package gpu is loract's CUDA backend: a lowrank.Backend on one NVIDIA
// GPU, so that the algorithms of packages sampling and rsvd run unchanged
// on device-resident data (an activation a training loop already holds on
// the GPU is compressed with no host round trip).
//
// CUDA is loaded at run time with purego: the driver API, NVRTC, cuBLAS
// and cuSOLVER are opened when Open or Available is first called, never
// at import, and the package builds with CGO_ENABLED=0 and no CUDA
// headers. Without a GPU, Open and Available return an error wrapping
// ErrUnavailable that says why, and the package's tests skip with it.
// All foreign symbols are declared in cuda.go; kernels are CUDA C in
// kernels.cu, compiled by NVRTC once per process.
//
// Device matrices (Matrix) are column-major with an explicit leading
// dimension and element type (Float32, BFloat16); RowMajor wraps a
// framework's row-major buffer as the transpose view it is, without a
// copy. Options choose the arithmetic of the products (FP32, TF32, BF16)
// and the tall-skinny QR (mixed-precision Cholesky QR, or Householder).
// A Backend owns one stream and its scratch; it is not safe for
// concurrent use, and Close releases everything it allocated.
//
// See docs/gpu.md for the design and docs/results.md for measurements.
package gpu
