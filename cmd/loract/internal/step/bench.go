package step

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loract/loract/gpu"
)

//go:embed torch_step_peer.py
var torchStepPeer []byte

// PeerScript is the file name of the PyTorch peer.
const PeerScript = "torch_step_peer.py"

// BenchConfig is a grid of step measurements.
type BenchConfig struct {
	Tokens   []int // L
	Ranks    []int // compression ranks k
	LoRARank int
	// Workers lists the compressor's Workers for each compressed run: 0
	// compresses on the caller's stream, n > 0 on n side streams.
	Workers []int
	// Priority, if not 0, repeats each run with side streams (Workers >
	// 0) with the workers' streams at this priority
	// (gpu.Backend.SetForkPriority).
	Priority int
	// LateJoin also runs each setting with side streams without the Join
	// between forward and backward (Options.LateJoin).
	LateJoin bool
	// Batch also runs each setting with the layer's inputs compressed
	// together after forward's last projection (Options.Batch).
	Batch bool
	// BatchStreams lists the activation.Config.BatchStreams of the
	// batched runs (one batched run per entry; empty: one, the default).
	BatchStreams    []int
	Warmup, Repeats int
	Seed            uint64
	// Python, if not empty, runs the PyTorch peer with this interpreter
	// after loract's runs, on the same card.
	Python string
}

// Check returns an error for an empty or invalid grid.
func (c *BenchConfig) Check() error {
	switch {
	case len(c.Tokens) == 0 || len(c.Ranks) == 0:
		return fmt.Errorf("step: no token counts or no ranks")
	case c.LoRARank < 1:
		return fmt.Errorf("step: LoRA rank %d < 1", c.LoRARank)
	case c.Repeats < 1 || c.Warmup < 0:
		return fmt.Errorf("step: %d repeats and %d warm-up steps: need ≥ 1 and ≥ 0", c.Repeats, c.Warmup)
	case len(c.Workers) == 0:
		return fmt.Errorf("step: no Workers setting")
	}
	for _, l := range c.Tokens {
		if l < 1 {
			return fmt.Errorf("step: %d tokens", l)
		}
	}
	for _, w := range c.Workers {
		if w < 0 {
			return fmt.Errorf("step: Workers %d < 0", w)
		}
	}
	for _, n := range c.BatchStreams {
		if n < 0 || n > 2 {
			return fmt.Errorf("step: BatchStreams %d: want 0, 1 or 2", n)
		}
	}
	for _, k := range c.Ranks {
		for _, in := range Llama7B.Inputs {
			if k < 1 || k > in.Dim {
				return fmt.Errorf("step: rank %d outside [1, %d] for input %s", k, in.Dim, in.Name)
			}
		}
	}
	return nil
}

// Bench runs the grid on b: for each L the kept run, then each rank and
// Workers setting compressed, logging each result; then the PyTorch peer
// if configured. It returns loract's results and the peer's records.
func Bench(ctx context.Context, b *gpu.Backend, cfg BenchConfig, logf func(string, ...any)) ([]*Result, []*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, nil, err
	}
	var out []*Result
	for _, L := range cfg.Tokens {
		logf("L = %d: filling weights, sources and gradients", L)
		r, err := NewRunner(b, Llama7B, L, cfg.LoRARank, cfg.Seed)
		if err != nil {
			return out, nil, err
		}
		kept, err := r.Run(Options{Mode: Kept, Warmup: cfg.Warmup, Repeats: cfg.Repeats})
		if err != nil {
			r.Close()
			return out, nil, err
		}
		logf("L = %d bf16: %.2f ms, saved %s", L, kept.Ms, mib(kept.SavedBytes))
		runs := []*Result{kept}
		for _, k := range cfg.Ranks {
			for _, w := range cfg.Workers {
				variants := []Options{{}}
				if w > 0 && cfg.Priority != 0 {
					variants = append(variants, Options{Priority: cfg.Priority})
				}
				if w > 0 && cfg.LateJoin {
					variants = append(variants, Options{LateJoin: true})
				}
				if cfg.Batch {
					streams := cfg.BatchStreams
					if len(streams) == 0 {
						streams = []int{0}
					}
					for _, n := range streams {
						variants = append(variants, Options{Batch: true, BatchStreams: n})
					}
				}
				for _, v := range variants {
					v.Mode, v.K, v.Workers, v.Paired, v.Warmup, v.Repeats = Compressed, k, w, true, cfg.Warmup, cfg.Repeats
					res, err := r.Run(v)
					if err != nil {
						r.Close()
						return out, nil, fmt.Errorf("step: L %d k %d workers %d priority %d late join %v batch %v streams %d: %w", L, k, w, v.Priority, v.LateJoin, v.Batch, v.BatchStreams, err)
					}
					logf("L = %d loract k = %d workers %d priority %d late join %v batch %v streams %d: %.2f ms (compression %.2f ms), saved %s", L, k, w, v.Priority, v.LateJoin, v.Batch, v.BatchStreams, res.Ms, res.CompressMs, mib(res.SavedBytes))
					runs = append(runs, res)
				}
			}
		}
		Compare(kept, runs[1:]...)
		out = append(out, runs...)
		r.Close()
		if err := b.TrimPool(); err != nil {
			return out, nil, err
		}
	}
	if cfg.Python == "" {
		return out, nil, nil
	}
	peer, err := RunPeer(ctx, cfg, logf)
	return out, peer, err
}

// RunPeer runs the PyTorch peer script with the grid's settings and
// returns its records.
func RunPeer(ctx context.Context, cfg BenchConfig, logf func(string, ...any)) ([]*Result, error) {
	dir, err := os.MkdirTemp("", "loract-step-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, PeerScript)
	if err := os.WriteFile(script, torchStepPeer, 0o644); err != nil {
		return nil, err
	}
	args := []string{script, "--tokens", ints(cfg.Tokens), "--ranks", ints(cfg.Ranks), "--lora-rank", fmt.Sprint(cfg.LoRARank),
		"--repeats", fmt.Sprint(cfg.Repeats), "--warmup", fmt.Sprint(cfg.Warmup), "--seed", fmt.Sprint(cfg.Seed)}
	logf("PyTorch peer: %s %s", cfg.Python, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, cfg.Python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var recs []*Result
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Bytes()
		var probe map[string]json.RawMessage
		if json.Unmarshal(line, &probe) != nil {
			continue
		}
		if env, ok := probe["env"]; ok {
			logf("PyTorch peer env: %s", env)
			continue
		}
		if e, ok := probe["error"]; ok {
			logf("PyTorch peer: %s", e)
			continue
		}
		var r Result
		if err := json.Unmarshal(line, &r); err != nil {
			return recs, fmt.Errorf("step: PyTorch peer record %q: %w", line, err)
		}
		r.Mode = "torch-" + r.Mode
		logf("PyTorch %s L = %d k = %d: %.2f ms", r.Mode, r.Tokens, r.K, r.Ms)
		recs = append(recs, &r)
	}
	if err := cmd.Wait(); err != nil {
		return recs, fmt.Errorf("step: PyTorch peer: %w: %s", err, lastLines(stderr.String(), 10))
	}
	return recs, nil
}

// WriteTable prints the step table: per L, each run's time against the
// kept run of its own implementation, the compression's share, the saved
// bytes against the bf16 inputs, the step's peak, the physical-limit
// overhead and the smallest LoRA A gradient cosine.
func WriteTable(w io.Writer, ours, peer []*Result) {
	fmt.Fprintln(w, "| L | k | run | step ms | vs own bf16 | compression ms (share) | saved activations | of bf16 inputs | step peak | flops limit | min cos(∇A) | mallocs, bytes to/from host per step |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	all := append(append([]*Result(nil), ours...), peer...)
	tokens := []int{}
	for _, r := range all {
		if !slices.Contains(tokens, r.Tokens) {
			tokens = append(tokens, r.Tokens)
		}
	}
	for _, L := range tokens {
		for _, set := range [][]*Result{ours, peer} {
			var base *Result
			for _, r := range set {
				if r.Tokens == L && r.K == 0 {
					base = r
				}
			}
			for _, r := range set {
				if r.Tokens != L {
					continue
				}
				rel, share, limit, cos, k := "1", "-", "-", "-", "-"
				if base != nil && r != base {
					rel = fmt.Sprintf("%.3f×", r.Ms/base.Ms)
					if r.PairedRatio > 0 {
						rel += fmt.Sprintf(" (paired %.3f×)", r.PairedRatio)
					}
				}
				if r.K > 0 {
					k = fmt.Sprint(r.K)
					if r.CompressMs > 0 {
						share = fmt.Sprintf("%.2f (%.1f%%)", r.CompressMs, 100*r.CompressMs/r.Ms)
					}
					if r.GEMMFlops > 0 {
						limit = fmt.Sprintf("%.1f%%", 100*r.CompressFlops/r.GEMMFlops)
					}
					if len(r.CosA) > 0 {
						m := 1.0
						for _, c := range r.CosA {
							m = min(m, c)
						}
						cos = fmt.Sprintf("%.4f", m)
					}
				}
				name := r.Mode
				if v := r.Variant(); v != "" {
					name += " (" + v + ")"
				}
				host := "-"
				if !strings.HasPrefix(r.Mode, "torch") {
					host = fmt.Sprintf("%d, %d / %d", r.Mallocs, r.ToDevice, r.ToHost)
				}
				fmt.Fprintf(w, "| %d | %s | %s | %.2f | %s | %s | %s | %.1f%% | %s | %s | %s | %s |\n",
					L, k, name, r.Ms, rel, share, mib(r.SavedBytes), 100*float64(r.SavedBytes)/float64(r.DenseBytes),
					gib(r.StepPeakBytes), limit, cos, host)
			}
		}
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func gib(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }

func ints(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WriteJSON writes one JSON line per result.
func WriteJSON(name string, rs []*Result) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return os.WriteFile(name, buf.Bytes(), 0o644)
}
