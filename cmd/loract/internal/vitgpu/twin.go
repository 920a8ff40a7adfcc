package vitgpu

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed torch_vit_twin.py
var twinScript []byte

// TwinScript is the file name of the PyTorch twin.
const TwinScript = "torch_vit_twin.py"

// TwinConfig configures RunTwin: the demo's model and batch, and how many
// steps the twin times.
type TwinConfig struct {
	// Python is the interpreter (with torch and CUDA).
	Python          string
	Demo            *DemoConfig
	Warmup, Repeats int
	// Modes lists the twin's attention variants: "eager" (loract's
	// algorithm) and "sdpa" (PyTorch's fused attention).
	Modes []string
}

// TwinResult is one record of the twin.
type TwinResult struct {
	Mode          string  `json:"mode"`
	Batch         int     `json:"batch"`
	Ms            float64 `json:"ms"`
	MsMin         float64 `json:"ms_min"`
	Repeats       int     `json:"repeats"`
	SavedBytes    int64   `json:"saved_bytes"`
	StepPeakBytes int64   `json:"step_peak_bytes"`
	BaseBytes     int64   `json:"base_bytes"`
	Device        string  `json:"device"`
}

// Args returns the twin's command-line arguments after the script.
func (c *TwinConfig) Args() []string {
	d := c.Demo
	mc := d.Model
	a := func(name string, v any) []string { return []string{"--" + name, fmt.Sprint(v)} }
	var out []string
	for _, kv := range [][]string{
		a("side", mc.Side), a("patch", mc.Patch), a("dim", mc.Dim), a("heads", mc.Heads), a("mlp", mc.MLP),
		a("depth", mc.Depth), a("classes", mc.Classes), a("batch", d.Batch), a("lora-rank", d.LoRARank),
		a("lora-scale", d.LoRAScale), a("lr", d.FineTuneLR), a("warmup", c.Warmup), a("repeats", c.Repeats),
		a("seed", mc.Seed), a("modes", strings.Join(c.Modes, ",")),
	} {
		out = append(out, kv...)
	}
	return out
}

// RunTwin runs the PyTorch twin and returns its records and its
// environment line (versions, card). A record line {"error": …} is logged
// and skipped; a failing interpreter is an error with its last lines of
// stderr.
func RunTwin(ctx context.Context, cfg TwinConfig, logf func(string, ...any)) ([]TwinResult, string, error) {
	dir, err := os.MkdirTemp("", "loract-twin-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, TwinScript)
	if err := os.WriteFile(script, twinScript, 0o644); err != nil {
		return nil, "", err
	}
	args := append([]string{script}, cfg.Args()...)
	logf("PyTorch twin: %s %s", cfg.Python, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, cfg.Python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	var recs []TwinResult
	env := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Bytes()
		var probe map[string]json.RawMessage
		if json.Unmarshal(line, &probe) != nil {
			continue
		}
		if e, ok := probe["env"]; ok {
			env = string(e)
			continue
		}
		if e, ok := probe["error"]; ok {
			logf("PyTorch twin: %s", e)
			continue
		}
		var r TwinResult
		if err := json.Unmarshal(line, &r); err != nil {
			return recs, env, fmt.Errorf("vitgpu: PyTorch twin record %q: %w", line, err)
		}
		recs = append(recs, r)
	}
	if err := cmd.Wait(); err != nil {
		return recs, env, fmt.Errorf("vitgpu: PyTorch twin: %w: %s", err, lastLines(stderr.String(), 12))
	}
	return recs, env, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
