package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/vit"
)

// TestSweepSettings: every setting of the equal-bytes sweep stores at most
// the reference's bytes a step, each ratio setting is the largest ratio
// that does, and the budget settings are at the reference's bytes.
func TestSweepSettings(t *testing.T) {
	o, err := parseDemo([]string{"-mode", "ops", "-sweep", "bytes"}, &bytes.Buffer{})
	require.NoError(t, err)
	shapes, err := o.cfg.SavedShapes()
	require.NoError(t, err)
	require.Len(t, shapes, 10, "q (shared by k, v), o, fc1, gelu, fc2 in each of 2 blocks")
	assert.Equal(t, vit.Shape{Layer: "blk0.gelu", Rows: 64 * 16, Cols: 128}, shapes[3])
	settings, err := sweepSettings(o.cfg.Compression, shapes, o.floor)
	require.NoError(t, err)
	ref := settings[0]
	require.True(t, ref.ref)
	// k = ⌈0.45·64⌉ = 29 and ⌈0.45·128⌉ = 58, bf16: 2·k·(1024+d) bytes.
	assert.Equal(t, 6*2*29*(1024+64)+4*2*58*(1024+128), ref.bytes)
	assert.Equal(t, "29/64, 58/128", ref.ranks)
	assert.Equal(t, "bf16, k 29/58 (reference)", ref.short)
	var budgets, ratios int
	for _, s := range settings[1:] {
		assert.True(t, s.Compression.MeasureError, s.Name)
		if s.budget {
			budgets++
			want := activation.Budget(ref.bytes)
			if strings.Contains(s.policy, "floor") {
				want = activation.BudgetFloor(ref.bytes, 0.8)
			}
			assert.Equal(t, want, s.Compression.Rank, s.Name)
			continue
		}
		ratios++
		n, _ := stepBytes(s.Compression, shapes)
		assert.Equal(t, s.bytes, n, s.Name)
		assert.LessOrEqual(t, n, ref.bytes, s.Name)
		bigger := s.Compression
		bigger.Rank = activation.Ratio(ratioOf(s.policy) + 1.0/1024)
		nb, _ := stepBytes(bigger, shapes)
		assert.Greater(t, nb, ref.bytes, "%s: the next ratio does not fit", s.Name)
	}
	// int8, bf16 + int4, int8 + int4 fit; bf16 + int8 residual
	// (1024·d bytes alone) does not at 0.45.
	assert.Equal(t, 3, ratios)
	assert.Equal(t, 8, budgets, "bf16 factors and the three storages that fit, each without and with the default -budget-floor 0.8")
}

// ratioOf reads r from "ratio r".
func ratioOf(policy string) float64 {
	var r float64
	if _, err := fmt.Sscanf(strings.TrimPrefix(policy, "ratio "), "%g", &r); err != nil {
		panic(err)
	}
	return r
}

// TestSweepRows counts the steps over the budget from the live bytes
// at each step's boundary.
func TestSweepRows(t *testing.T) {
	st := []sweepSetting{{Setting: vit.Setting{Name: "b"}, budget: true, bytes: 100, policy: "budget"}}
	res := &vit.SweepResult{Baseline: vit.FineTuneResult{Accuracy: 0.9, Losses: []float64{1, 1, 1}}}
	run := vit.SweepRun{Setting: st[0].Setting}
	run.Accuracy, run.StepLive, run.GradCos = 0.88, []int{90, 101, 100}, 0.99
	run.Plan = activation.Plan{Layers: []activation.PlannedLayer{{Layer: "x", Rank: 3}}, Margin: 0.01}
	res.Runs = []vit.SweepRun{run}
	rows := sweepRows(res, st)
	require.Len(t, rows, 1)
	assert.Equal(t, 1, rows[0].over)
	assert.InDelta(t, 0.9, rows[0].useCal, 1e-12, "the first step is the calibration step")
	assert.InDelta(t, 1.0, rows[0].useMin, 1e-12)
	assert.InDelta(t, 1.01, rows[0].useMax, 1e-12)
	assert.InDelta(t, 2.0, rows[0].drop, 1e-9)
	assert.Equal(t, "x 3", rows[0].planRanks)
	var buf bytes.Buffer
	sweepMarkdown(&buf, res, rows)
	assert.Contains(t, buf.String(), "steps over it: 1 of 3")
}
