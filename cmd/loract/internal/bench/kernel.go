package bench

import (
	"context"
	"fmt"
	"strings"
)

// CoreType returns the OpenBLAS kernel family (an OPENBLAS_CORETYPE
// value) for the widest vector instructions the CPU has: "SkylakeX" with
// AVX-512 F, BW, DQ and VL (what OpenBLAS's SkylakeX kernels use),
// "Haswell" with AVX2 and FMA, "" otherwise (nothing to gain by forcing).
func (c CPUInfo) CoreType() string {
	f := c.Flags
	switch {
	case f["avx512f"] && f["avx512bw"] && f["avx512dq"] && f["avx512vl"]:
		return "SkylakeX"
	case f["avx2"] && f["fma"]:
		return "Haswell"
	}
	return ""
}

// Vector instruction levels of OpenBLAS kernels.
const (
	isaSSE = iota
	isaAVX
	isaAVX2
	isaAVX512
)

// kernelISA maps OpenBLAS's kernel names (openblas_get_corename, which
// threadpoolctl reports as architecture; lower-cased) to the widest
// vector instructions the kernel uses. "Prescott" is what OpenBLAS 0.3.21
// falls back to on a CPU it does not recognise.
var kernelISA = map[string]int{
	"generic": isaSSE, "unknown": isaSSE, "katmai": isaSSE, "coppermine": isaSSE, "northwood": isaSSE,
	"prescott": isaSSE, "banias": isaSSE, "atom": isaSSE, "core2": isaSSE, "penryn": isaSSE,
	"dunnington": isaSSE, "nehalem": isaSSE, "athlon": isaSSE, "opteron": isaSSE, "opteron_sse3": isaSSE,
	"barcelona": isaSSE, "nano": isaSSE, "bobcat": isaSSE,
	"sandybridge": isaAVX, "bulldozer": isaAVX, "piledriver": isaAVX, "steamroller": isaAVX,
	"haswell": isaAVX2, "excavator": isaAVX2, "zen": isaAVX2,
	"skylakex": isaAVX512, "cooperlake": isaAVX512, "sapphirerapids": isaAVX512,
}

// FallsShort reports whether the OpenBLAS kernel arch uses narrower vector
// instructions than the kernel family want (a CoreType value). A kernel
// name it does not know does not fall short: only a known fallback is
// overridden.
func FallsShort(arch, want string) bool {
	have, ok := kernelISA[strings.ToLower(arch)]
	if !ok {
		return false
	}
	target, ok := kernelISA[strings.ToLower(want)]
	return ok && have < target
}

// Kernel is the BLAS a peer process ran on, as its environment line
// reports it (threadpoolctl), and what 'loract bench' did about it.
type Kernel struct {
	// Library is threadpoolctl's internal_api ("openblas", "mkl", …),
	// Version its version, Arch its architecture (for OpenBLAS the
	// kernel, e.g. "Haswell") and Threads its thread count.
	Library, Version, Arch string
	Threads                int
	// Check is the script's blas_check: "ok", or what failed when the
	// kernel's products and QR were compared with reference loops.
	Check string
	// Forced is the OPENBLAS_CORETYPE loract set, Default the kernel
	// OpenBLAS chose by itself (both empty if nothing was forced).
	Forced, Default string
	// Note says why no kernel was forced where one was wanted, or why the
	// kernel is unknown.
	Note string
}

func (k Kernel) String() string {
	var s string
	if k.Library == "" {
		s = "BLAS kernel unknown"
	} else {
		s = strings.TrimSpace(fmt.Sprintf("%s %s %s", k.Library, k.Version, k.Arch))
		if k.Threads > 0 {
			s += fmt.Sprintf(", %d threads", k.Threads)
		}
	}
	var notes []string
	if k.Forced != "" {
		notes = append(notes, fmt.Sprintf("OPENBLAS_CORETYPE=%s; its own choice: %s", k.Forced, k.Default))
	}
	if k.Check != "" && k.Check != "ok" {
		notes = append(notes, "check failed: "+k.Check)
	}
	if k.Note != "" {
		notes = append(notes, k.Note)
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, "; ") + ")"
	}
	return s
}

// KernelOf returns the BLAS of a script's environment line: its first
// OpenBLAS library, else its first BLAS library; ok is false if the line
// lists none (threadpoolctl missing, say).
func KernelOf(env Env) (k Kernel, ok bool) {
	pools, _ := env["threadpools"].([]any)
	var first map[string]any
	for _, p := range pools {
		d, _ := p.(map[string]any)
		if d == nil || (d["user_api"] != nil && d["user_api"] != "blas") {
			continue
		}
		if first == nil {
			first = d
		}
		if d["internal_api"] == "openblas" {
			first = d
			break
		}
	}
	if check, _ := env["blas_check"].(string); check != "" {
		k.Check = check
	}
	if first == nil {
		return k, false
	}
	str := func(key string) string {
		if v, ok := first[key].(string); ok {
			return v
		}
		return ""
	}
	k.Library, k.Version, k.Arch = str("internal_api"), str("version"), str("architecture")
	if n, ok := first["num_threads"].(float64); ok {
		k.Threads = int(n)
	}
	return k, true
}

// ChooseKernel gives a peer script its best BLAS kernel. It probes the
// script (--probe: the environment line alone) under env, which should be
// TimingEnv's (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset). Where the
// kernel OpenBLAS picked falls short of the CPU's vector instructions
// (FallsShort of cpu.CoreType(): the Prescott fallback on an AVX2 or
// AVX-512 CPU), it probes again with OPENBLAS_CORETYPE set to that family
// and keeps it only if OpenBLAS took it and the script's check of the
// kernel's products and QR passed. It returns the environment to run the
// script under and the kernel it will run; err reports a probe that
// failed (the script is then run under env, and fails or not on its own).
func ChooseKernel(ctx context.Context, r Runner, s Script, env []string, cpu CPUInfo) ([]string, Kernel, error) {
	_, line, err := r.Run(ctx, s, []string{"--probe"}, env, nil)
	if err != nil {
		return env, Kernel{Note: "probe failed"}, err
	}
	k, ok := KernelOf(line)
	if !ok {
		k.Note = "threadpoolctl not installed: kernel unknown"
		return env, k, nil
	}
	want := cpu.CoreType()
	if k.Library != "openblas" || want == "" || !FallsShort(k.Arch, want) {
		return env, k, nil
	}
	forced := append(append([]string{}, env...), "OPENBLAS_CORETYPE="+want)
	_, line, err = r.Run(ctx, s, []string{"--probe"}, forced, nil)
	if err != nil {
		k.Note = fmt.Sprintf("OPENBLAS_CORETYPE=%s failed, kept %s: %v", want, k.Arch, err)
		return env, k, nil
	}
	fk, ok := KernelOf(line)
	switch {
	case !ok || !strings.EqualFold(fk.Arch, want):
		k.Note = fmt.Sprintf("OpenBLAS ignored OPENBLAS_CORETYPE=%s (ran %s), kept %s", want, fk.Arch, k.Arch)
		return env, k, nil
	case fk.Check != "ok":
		k.Note = fmt.Sprintf("OPENBLAS_CORETYPE=%s failed its check (%s), kept %s", want, fk.Check, k.Arch)
		return env, k, nil
	}
	fk.Forced, fk.Default = want, k.Arch
	return forced, fk, nil
}
