package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/internal/npy"
)

// Session is one invocation of 'loract bench', or the timing part of
// 'loract plot': it times loract and its peers on activation-like
// matrices and keeps every record and every peer's environment line.
type Session struct {
	// Log receives the progress lines (nil: discarded).
	Log *progress.Log
	// Peers runs the peer scripts; nil runs none.
	Peers Runner
	// Have lists the peer modules Peers' interpreter can import.
	Have map[string]bool
	// Dir is the folder the peers' input files are written to.
	Dir string
	// Env is the peers' environment (nil: TimingEnv()).
	Env []string
	// FairKernels gives every peer script its best BLAS kernel
	// (ChooseKernel, with CPU); otherwise Env is used as it is and the
	// kernel only reported.
	FairKernels bool
	CPU         CPUInfo
	// Repeats is the number of timed calls per measurement (after one
	// warm-up), Seed the seed of the matrices and of the first draw.
	Repeats int
	Seed    uint64
	// Torch runs the PyTorch peer where Have["torch"].
	Torch bool

	// Records holds every record measured, in order.
	Records []Record
	// Envs holds every peer run's environment line, with the kernel
	// loract chose added as "kernel" (and "kernel_default" where it was
	// forced).
	Envs []Env

	kernels map[Script]chosenKernel
	order   []Script
}

type chosenKernel struct {
	env []string
	k   Kernel
}

// Logf writes a progress line.
func (s *Session) Logf(format string, args ...any) { s.Log.Printf(format, args...) }

// Show writes the progress line of a record, its error ÷ opt included.
func (s *Session) Show(r Record, opt float64) {
	if !r.Ok() {
		s.Logf("%-8s %-14s %-18s %s: n/a (%s)", r.Peer, r.Method, r.Setting(), r.Dtype, r.Error)
		return
	}
	s.Logf("%-8s %-14s %-18s %s %s: %9.2f ms (CPU %9.2f ms)  err/opt %.3f", r.Peer, r.Method, r.Setting(), r.Dtype,
		Shape(r.M, r.N, r.K), r.Ms, r.CPUMs, r.Err()/opt)
}

// Matrix returns the m×n activation-like matrix of the session's seed.
func (s *Session) Matrix(m, n int) *Matrix {
	s.Logf("building the %d×%d activation-like matrix (seed %d)", m, n, s.Seed)
	return Activation(m, n, s.Seed)
}

// HasPeer reports whether script sc can run: a runner, the modules it
// needs, and for the PyTorch peer Torch set.
func (s *Session) HasPeer(sc Script) bool {
	if s.Peers == nil || (sc == TorchPeer && !s.Torch) {
		return false
	}
	for _, m := range sc.Needs() {
		if !s.Have[m] {
			return false
		}
	}
	return true
}

// Input writes x in dtype ("fp32" or "fp64") to the session's folder for
// the peers, once, and returns the file's path.
func (s *Session) Input(x *Matrix, dtype string) (string, error) {
	if dtype != "fp32" && dtype != "fp64" {
		return "", fmt.Errorf("bench: no peer input of type %q", dtype)
	}
	name := filepath.Join(s.Dir, fmt.Sprintf("a_%dx%d_s%d_%s.npy", x.M, x.N, x.Seed, dtype))
	if _, err := os.Stat(name); err == nil {
		return name, nil
	}
	return name, npy.WriteFile(name, x.Input(dtype))
}

// kernel returns the environment and kernel of script sc, chosen on its
// first use.
func (s *Session) kernel(ctx context.Context, sc Script) chosenKernel {
	if c, ok := s.kernels[sc]; ok {
		return c
	}
	env := s.Env
	if env == nil {
		env = TimingEnv()
	}
	c := chosenKernel{env: env}
	if s.FairKernels {
		var err error
		c.env, c.k, err = ChooseKernel(ctx, s.Peers, sc, env, s.CPU)
		if err != nil {
			s.Logf("%s: probing its BLAS kernel failed: %v", sc, err)
		}
		switch {
		case c.k.Forced != "":
			s.Logf("%s: OpenBLAS chose %s on this %s CPU (%s); running it with OPENBLAS_CORETYPE=%s (checked: %s)",
				sc, c.k.Default, s.CPU.CoreType(), s.CPU.Model, c.k.Forced, c.k.Check)
		case err == nil:
			s.Logf("%s: BLAS kernel %s", sc, c.k)
		}
	}
	if s.kernels == nil {
		s.kernels = map[Script]chosenKernel{}
	}
	s.kernels[sc] = c
	s.order = append(s.order, sc)
	return c
}

// RunPeer runs peer script sc with args under its chosen kernel, showing
// each record against opt, and returns its records, each labelled with
// the kernel it ran. A script that fails is logged and its records so far
// returned: the comparison goes on without the rest.
func (s *Session) RunPeer(ctx context.Context, sc Script, args []string, opt float64) []Record {
	c := s.kernel(ctx, sc)
	recs, env, err := s.Peers.Run(ctx, sc, args, c.env, func(r Record) { s.Show(r, opt) })
	k := c.k
	if got, ok := KernelOf(env); ok {
		// The run's own report, with what was chosen.
		got.Forced, got.Default, got.Note = k.Forced, k.Default, k.Note
		k = got
	}
	if env == nil {
		env = Env{}
	}
	env["script"] = string(sc)
	env["kernel"] = k.String()
	if k.Forced != "" {
		env["kernel_default"] = k.Default
	}
	s.Envs = append(s.Envs, env)
	for i := range recs {
		recs[i].Kernel = k.String()
	}
	if err != nil {
		s.Logf("%s failed: %v", sc, err)
	}
	return recs
}

// Kernels returns one line per peer script run so far: the script and the
// BLAS kernel it ran.
func (s *Session) Kernels() []string {
	var out []string
	for _, sc := range s.order {
		k := s.kernels[sc].k
		if !s.FairKernels {
			// Only the runs report it.
			for _, e := range s.Envs {
				if e["script"] == string(sc) {
					k, _ = KernelOf(e)
					break
				}
			}
		}
		out = append(out, fmt.Sprintf("%s: %s", sc, k))
	}
	return out
}

func ints(v ...int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
