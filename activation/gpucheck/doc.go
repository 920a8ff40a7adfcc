// Package gpucheck holds the test that runs package activation on the
// CUDA backend (package gpu) against the CPU backend. It is a package of
// its own so that the activation tests do not depend on the GPU code; the
// test skips where no CUDA device can be opened.
//
// To run it on a GPU host from a machine without one:
//
//	CGO_ENABLED=0 go test -c -o act_gpu.test ./activation/gpucheck
//	./act_gpu.test -test.v   # on the GPU host
package gpucheck
