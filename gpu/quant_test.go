package gpu

import (
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestQuantKernelList checks, without a GPU, that the kernels of quant.cu
// are exactly those quantNames lists, each once.
func TestQuantKernelList(t *testing.T) {
	re := regexp.MustCompile(`extern "C" __global__ void (\w+)\s*\(`)
	var inSource []string
	for _, m := range re.FindAllStringSubmatch(quantSource, -1) {
		inSource = append(inSource, m[1])
	}
	got := slices.Clone(quantNames[:])
	for _, n := range got {
		assert.NotEmpty(t, n, "a quantization kernel constant has no name")
	}
	slices.Sort(got)
	slices.Sort(inSource)
	assert.Equal(t, inSource, got)
	assert.Len(t, slices.Compact(slices.Clone(got)), len(got), "a kernel is listed twice")
	// The two modules are separate programs: no name in both.
	for _, n := range kernelNames {
		assert.NotContains(t, quantNames[:], n)
	}
}
