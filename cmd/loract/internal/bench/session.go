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
	// CPU describes the processor (the machine line).
	CPU CPUInfo
	// Repeats is the number of timed calls per measurement (after one
	// warm-up), Seed the seed of the matrices and of the first draw.
	Repeats int
	Seed    uint64
	// Torch runs the PyTorch peer where Have["torch"].
	Torch bool

	// Records holds every record measured, in order.
	Records []Record
	// Envs holds every peer run's environment line, with the script's
	// name added as "script".
	Envs []Env
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

// RunPeer runs peer script sc with args under Env (nil: TimingEnv()),
// showing each record against opt, and returns its records. A script
// that fails is logged and its records so far returned: the comparison
// goes on without the rest.
func (s *Session) RunPeer(ctx context.Context, sc Script, args []string, opt float64) []Record {
	env := s.Env
	if env == nil {
		env = TimingEnv()
	}
	recs, line, err := s.Peers.Run(ctx, sc, args, env, func(r Record) { s.Show(r, opt) })
	if line == nil {
		line = Env{}
	}
	line["script"] = string(sc)
	s.Envs = append(s.Envs, line)
	if err != nil {
		s.Logf("%s failed: %v", sc, err)
	}
	return recs
}

func ints(v ...int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
