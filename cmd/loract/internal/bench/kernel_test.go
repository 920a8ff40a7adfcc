package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCoreType(t *testing.T) {
	for _, tc := range []struct{ flags, want string }{
		{avx512Flags, "SkylakeX"},
		{"avx fma avx2 avx512f", "Haswell"}, // AVX-512 F alone (Knights Landing): not the SkylakeX kernels' set
		{avx2Flags, "Haswell"},
		{"avx avx2", ""}, // no FMA
		{"sse2 sse3 ssse3", ""},
		{"", ""},
	} {
		assert.Equal(t, tc.want, ParseCPUInfo(cpuinfo(tc.flags)).CoreType(), tc.flags)
	}
	assert.Empty(t, ParseCPUInfo("garbage without colons").CoreType())
}

func TestFallsShort(t *testing.T) {
	for _, tc := range []struct {
		arch, want string
		short      bool
	}{
		{"Prescott", "SkylakeX", true},
		{"Prescott", "Haswell", true},
		{"Nehalem", "Haswell", true},
		{"Sandybridge", "Haswell", true},
		{"Zen", "SkylakeX", true},
		{"Haswell", "Haswell", false},
		{"Zen", "Haswell", false},
		{"Cooperlake", "SkylakeX", false},
		{"SapphireRapids", "SkylakeX", false},
		{"SkylakeX", "Haswell", false},
		{"NewKernel2030", "SkylakeX", false}, // unknown: left alone
		{"prescott", "skylakex", true},       // case does not matter
		{"Prescott", "", false},
	} {
		assert.Equal(t, tc.short, FallsShort(tc.arch, tc.want), "%s → %s", tc.arch, tc.want)
	}
}

// envLine is a peer's environment line as RunScript decodes it (through
// JSON, so numbers are float64).
func envLine(t *testing.T, lib, arch, check string) Env {
	t.Helper()
	pools := "\"threadpoolctl not installed: BLAS kernel not recorded\""
	if lib != "" {
		pools = fmt.Sprintf(`[{"user_api": "openmp", "internal_api": "openmp", "num_threads": 2},
			{"user_api": "blas", "internal_api": %q, "version": "0.3.21", "architecture": %q, "num_threads": 2}]`, lib, arch)
	}
	var e Env
	require.NoError(t, json.Unmarshal([]byte(fmt.Sprintf(`{"numpy": "1.24.2", "blas_check": %q, "threadpools": %s}`, check, pools)), &e))
	return e
}

func TestKernelOf(t *testing.T) {
	k, ok := KernelOf(envLine(t, "openblas", "Prescott", "ok"))
	require.True(t, ok)
	assert.Equal(t, Kernel{Library: "openblas", Version: "0.3.21", Arch: "Prescott", Threads: 2, Check: "ok"}, k)
	assert.Equal(t, "openblas 0.3.21 Prescott, 2 threads", k.String())
	k.Forced, k.Default, k.Arch = "SkylakeX", "Prescott", "SkylakeX"
	assert.Equal(t, "openblas 0.3.21 SkylakeX, 2 threads (OPENBLAS_CORETYPE=SkylakeX; its own choice: Prescott)", k.String())
	k, ok = KernelOf(envLine(t, "", "", "ok"))
	assert.False(t, ok)
	assert.Equal(t, "BLAS kernel unknown", k.String())
	k, _ = KernelOf(envLine(t, "mkl", "Haswell", "float32 QR wrong"))
	assert.Equal(t, "mkl 0.3.21 Haswell, 2 threads (check failed: float32 QR wrong)", k.String())
	_, ok = KernelOf(nil)
	assert.False(t, ok)
}

func TestChooseKernel(t *testing.T) {
	avx512, avx2, sse := ParseCPUInfo(cpuinfo(avx512Flags)), ParseCPUInfo(cpuinfo(avx2Flags)), ParseCPUInfo(cpuinfo("sse2"))
	base := []string{"PATH=/usr/bin", "HOME=/root"}
	for _, tc := range []struct {
		name   string
		peers  fakePeers
		cpu    CPUInfo
		forced string // the OPENBLAS_CORETYPE of the environment returned
		kernel string // Kernel.String of the choice
		probes int
	}{
		{"Prescott fallback on AVX-512", fakePeers{lib: "openblas", def: "Prescott", forced: map[string][2]string{"SkylakeX": {"SkylakeX", "ok"}}},
			avx512, "SkylakeX", "openblas 0.3.21 SkylakeX, 2 threads (OPENBLAS_CORETYPE=SkylakeX; its own choice: Prescott)", 2},
		{"Prescott fallback on AVX2", fakePeers{lib: "openblas", def: "Prescott", forced: map[string][2]string{"Haswell": {"Haswell", "ok"}}},
			avx2, "Haswell", "openblas 0.3.21 Haswell, 2 threads (OPENBLAS_CORETYPE=Haswell; its own choice: Prescott)", 2},
		{"recognised CPU", fakePeers{lib: "openblas", def: "Cooperlake"},
			avx512, "", "openblas 0.3.21 Cooperlake, 2 threads", 1},
		{"Prescott on an SSE CPU is right", fakePeers{lib: "openblas", def: "Prescott"},
			sse, "", "openblas 0.3.21 Prescott, 2 threads", 1},
		{"MKL is left alone", fakePeers{lib: "mkl", def: "Haswell"},
			avx512, "", "mkl 0.3.21 Haswell, 2 threads", 1},
		{"forced kernel crashes", fakePeers{lib: "openblas", def: "Prescott", forced: map[string][2]string{"SkylakeX": {"", ""}}},
			avx512, "", "openblas 0.3.21 Prescott, 2 threads (OPENBLAS_CORETYPE=SkylakeX failed, kept Prescott: python3: killed by SIGILL)", 2},
		{"forced kernel ignored", fakePeers{lib: "openblas", def: "Prescott", forced: map[string][2]string{"SkylakeX": {"Prescott", "ok"}}},
			avx512, "", "openblas 0.3.21 Prescott, 2 threads (OpenBLAS ignored OPENBLAS_CORETYPE=SkylakeX (ran Prescott), kept Prescott)", 2},
		{"forced kernel computes wrong", fakePeers{lib: "openblas", def: "Prescott", forced: map[string][2]string{"SkylakeX": {"SkylakeX", "float32 product A·B wrong"}}},
			avx512, "", "openblas 0.3.21 Prescott, 2 threads (OPENBLAS_CORETYPE=SkylakeX failed its check (float32 product A·B wrong), kept Prescott)", 2},
	} {
		env, k, err := ChooseKernel(context.Background(), &tc.peers, CPUPeers, base, tc.cpu)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.forced, coreType(env), tc.name)
		assert.Equal(t, tc.kernel, k.String(), tc.name)
		assert.Len(t, tc.peers.calls, tc.probes, tc.name)
		assert.Equal(t, base, env[:len(base)], "%s: the rest of the environment is kept", tc.name)
		for _, c := range tc.peers.calls {
			assert.Equal(t, []string{"--probe"}, c.args, tc.name)
		}
	}

	// A probe that fails is reported; the script then runs as it is.
	failing := &fakePeers{lib: "openblas", def: "Prescott", forced: map[string][2]string{}}
	env, k, err := ChooseKernel(context.Background(), failing, CPUPeers, []string{"OPENBLAS_CORETYPE=Bogus"}, avx512)
	require.Error(t, err)
	assert.Equal(t, []string{"OPENBLAS_CORETYPE=Bogus"}, env)
	assert.Equal(t, "probe failed", k.Note)

	// Without threadpoolctl the kernel is unknown and nothing is forced.
	none := &noThreadpools{}
	env, k, err = ChooseKernel(context.Background(), none, CPUPeers, base, avx512)
	require.NoError(t, err)
	assert.Equal(t, base, env)
	assert.Equal(t, "BLAS kernel unknown (threadpoolctl not installed: kernel unknown)", k.String())
}

type noThreadpools struct{}

func (noThreadpools) Run(context.Context, Script, []string, []string, func(Record)) ([]Record, Env, error) {
	return nil, Env{"threadpools": "threadpoolctl not installed: BLAS kernel not recorded"}, nil
}

func TestTimingEnv(t *testing.T) {
	t.Setenv("OPENBLAS_CORETYPE", "Haswell")
	t.Setenv("OPENBLAS_L2_SIZE", "1048576")
	t.Setenv("LORACT_TEST_KEEP", "1")
	env := TimingEnv()
	assert.Contains(t, env, "LORACT_TEST_KEEP=1")
	for _, kv := range env {
		assert.False(t, strings.HasPrefix(kv, "OPENBLAS_CORETYPE=") || strings.HasPrefix(kv, "OPENBLAS_L2_SIZE="), kv)
	}
}
