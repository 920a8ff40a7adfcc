package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// cpuinfo is an excerpt of /proc/cpuinfo with the given flags, two
// processors (only the first counts).
func cpuinfo(flags string) string {
	return "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nflags\t\t: " + flags +
		"\n\nprocessor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n"
}

const (
	avx512Flags = "fpu sse2 avx fma avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16"
	avx2Flags   = "fpu sse2 avx fma avx2"
)

func TestParseCPUInfo(t *testing.T) {
	c := ParseCPUInfo(cpuinfo(avx512Flags))
	assert.Equal(t, "AMD EPYC 9B14", c.Model)
	assert.True(t, c.Flags["avx512bw"])
	assert.False(t, ParseCPUInfo(cpuinfo(avx2Flags)).Flags["avx512f"], "the first processor's flags only")
	assert.False(t, c.Flags["fpu sse2"], "flags are split on spaces")
	assert.Equal(t, "unknown CPU", ParseCPUInfo("").Model)
	assert.Empty(t, ParseCPUInfo("garbage without colons").Flags)
}
