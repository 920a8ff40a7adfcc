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
