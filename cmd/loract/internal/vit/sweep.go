package vit

import (
	"fmt"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
)

// Shape is the shape of one tensor the compressible set saves in a step.
type Shape struct {
	Layer      string
	Rows, Cols int
}

// SavedShapes returns the tensors that one training step of cfg's model
// saves through the compressible set (Run.Main), in order, each once (a
// tensor shared by several consumers, q/k/v's input, is listed once): one
// forward pass of a zero batch recorded by a saver that keeps nothing.
func (cfg *DemoConfig) SavedShapes() ([]Shape, error) {
	m := New(cfg.Model)
	var shapes []Shape
	record := func(layer string, x *mat.Dense) (Stash, error) {
		r, c := x.Dims()
		shapes = append(shapes, Shape{Layer: layer, Rows: r, Cols: c})
		return Plain(layer, x)
	}
	px := make([]float64, cfg.Batch*cfg.Model.Side*cfg.Model.Side)
	var tape Tape
	if _, err := m.Forward(px, cfg.Batch, Run{Main: record, Rest: Plain, Checkpoint: cfg.Checkpoint}, &tape); err != nil {
		return nil, err
	}
	return shapes, nil
}

// Setting is one compressed run of a sweep.
type Setting struct {
	Name        string
	Compression activation.Config
}

// SweepRun is the outcome of one Setting.
type SweepRun struct {
	Setting
	FineTuneResult
	// GradCos is the cosine similarity of all trainable gradients on one
	// batch, compressed against uncompressed, on the model the baseline
	// fine-tuned (the same point for every setting).
	GradCos float64
}

// SweepResult is what RunSweep measured.
type SweepResult struct {
	PretrainAccuracy float64
	PretrainWall     time.Duration
	Baseline         FineTuneResult
	Runs             []SweepRun
}

// RunSweep pre-trains (or loads) one model, fine-tunes a LoRA copy of it
// once with float32 copies of every activation and once per setting with
// the setting's compression, all with the same seed and batches, and
// measures each run's accuracy, errors, bytes, time and gradient cosine.
// cfg.Compression is ignored.
func RunSweep(cfg DemoConfig, settings []Setting, pre, fine, testPre, testFine Data) (*SweepResult, error) {
	if len(settings) == 0 {
		return nil, fmt.Errorf("vit: a sweep of no settings")
	}
	var pt DemoResult
	model, err := cfg.pretrain(pre, testPre, &pt)
	if err != nil {
		return nil, err
	}
	res := &SweepResult{PretrainAccuracy: pt.PretrainAccuracy, PretrainWall: pt.PretrainWall}
	base, err := cfg.fineTune(model, false, fine, testFine, &res.Baseline)
	if err != nil {
		return nil, err
	}
	n := cfg.Batch * cfg.Model.Side * cfg.Model.Side
	if len(fine.Labels) < 2*cfg.Batch {
		return nil, fmt.Errorf("vit: the sweep's gradient check needs two batches, have %d images", len(fine.Labels))
	}
	for _, st := range settings {
		c := cfg
		c.Compression, c.Phase = st.Compression, st.Name
		run := SweepRun{Setting: st}
		if _, err := c.fineTune(model, true, fine, testFine, &run.FineTuneResult); err != nil {
			return nil, fmt.Errorf("setting %q: %w", st.Name, err)
		}
		if run.GradCos, _, err = c.gradFidelity(base, fine.Pixels[:n], fine.Labels[:cfg.Batch],
			fine.Pixels[n:2*n], fine.Labels[cfg.Batch:2*cfg.Batch]); err != nil {
			return nil, fmt.Errorf("setting %q: %w", st.Name, err)
		}
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}
