package gpu

import (
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestKernelList checks, without a GPU, that every extern "C" __global__
// function of kernels.cu has exactly one entry in kernelNames (and so one
// typed wrapper), in any order, and that kernelNames names nothing else.
// A kernel defined by a macro whose first parameter is the kernel's name
// (#define M(name, …) … __global__ void name(…)) counts once for each line
// that starts with M(kernel, ….
func TestKernelList(t *testing.T) {
	re := regexp.MustCompile(`extern "C" __global__ void (?:__launch_bounds__\([^)]*\)\s*)?(\w+)\s*\(`)
	macro := regexp.MustCompile(`(?m)^#define (\w+)\(name,`)
	var inSource []string
	for _, m := range re.FindAllStringSubmatch(kernelSource, -1) {
		if m[1] != "name" {
			inSource = append(inSource, m[1])
		}
	}
	for _, m := range macro.FindAllStringSubmatch(kernelSource, -1) {
		use := regexp.MustCompile(`(?m)^` + m[1] + `\((\w+),`)
		for _, u := range use.FindAllStringSubmatch(kernelSource, -1) {
			inSource = append(inSource, u[1])
		}
	}
	wrapped := kernelNames[:]
	for _, n := range wrapped {
		assert.NotEmpty(t, n, "a kernel constant has no name")
	}
	got, want := slices.Clone(wrapped), slices.Clone(inSource)
	slices.Sort(got)
	slices.Sort(want)
	assert.Equal(t, want, got, "kernelNames must list exactly the kernels of kernels.cu")
	assert.Len(t, slices.Compact(slices.Clone(got)), len(got), "a kernel is listed twice")
}

// TestCloseNil: Close of the nil *Backend a failed Open returns is a no-op.
func TestCloseNil(t *testing.T) {
	var b *Backend
	assert.NoError(t, b.Close())
}

// TestConsecutive checks, without a GPU, when matrices are consecutive
// column blocks of one matrix: spaced by ld·l elements of their own type
// (4 bytes for float32, 2 for bf16), with one leading dimension and type.
func TestConsecutive(t *testing.T) {
	blocks := func(dt DType, spacing int) []*Matrix {
		ms := make([]*Matrix, 3)
		for i := range ms {
			ms[i] = &Matrix{ptr: 4096 + uintptr(i*spacing), rows: 100, cols: 8, ld: 128, dtype: dt}
		}
		return ms
	}
	assert.True(t, consecutive(blocks(Float32, 4*128*8), 128, 8))
	assert.True(t, consecutive(blocks(BFloat16, 2*128*8), 128, 8), "bf16 blocks spaced in 2-byte elements")
	assert.False(t, consecutive(blocks(BFloat16, 4*128*8), 128, 8), "bf16 blocks spaced as float32")
	assert.False(t, consecutive(blocks(Float32, 4*128*8), 100, 8), "another leading dimension")
	mixed := blocks(Float32, 4*128*8)
	mixed[1].dtype = BFloat16
	assert.False(t, consecutive(mixed, 128, 8), "mixed types")
}
