package vit

import (
	"fmt"
	"math/rand/v2"
)

// TrainConfig configures Train.
type TrainConfig struct {
	Steps, Batch int
	Adam         Adam
	// Seed orders the examples: equal seeds draw equal batches.
	Seed uint64
	// Run chooses how activations are saved.
	Run Run
	// BeforeBackward, if not nil, is called between forward and backward
	// (to join asynchronous compression).
	BeforeBackward func() error
	// Progress, if not nil, is called after every step.
	Progress func(step int, loss float64)
}

// Train runs tc.Steps Adam steps on batches drawn without replacement
// (reshuffled each epoch) from the images pixels (Side² values each) with
// labels, and returns the loss of every step.
func Train(m *Model, pixels []float64, labels []int, tc TrainConfig) ([]float64, error) {
	n := len(labels)
	px := m.Cfg.Side * m.Cfg.Side
	rng := rand.New(rand.NewPCG(tc.Seed, 3))
	perm := rng.Perm(n)
	next := 0
	bx := make([]float64, tc.Batch*px)
	by := make([]int, tc.Batch)
	losses := make([]float64, 0, tc.Steps)
	for step := 0; step < tc.Steps; step++ {
		for i := 0; i < tc.Batch; i++ {
			if next == n {
				perm, next = rng.Perm(n), 0
			}
			j := perm[next]
			next++
			copy(bx[i*px:(i+1)*px], pixels[j*px:(j+1)*px])
			by[i] = labels[j]
		}
		loss, err := m.Step(bx, by, tc.Run, tc.BeforeBackward)
		if err != nil {
			return losses, err
		}
		tc.Adam.Step(m.Params())
		losses = append(losses, loss)
		if tc.Progress != nil {
			tc.Progress(step, loss)
		}
	}
	return losses, nil
}

// Step runs forward and backward on one batch, accumulating gradients,
// and returns the loss. between, if not nil, runs between the two.
func (m *Model) Step(pixels []float64, labels []int, run Run, between func() error) (float64, error) {
	var tape Tape
	logits, err := m.Forward(pixels, len(labels), run, &tape)
	if err != nil {
		return 0, err
	}
	loss, g, _ := Loss(logits, labels)
	if between != nil {
		if err := between(); err != nil {
			return 0, err
		}
	}
	return loss, m.Backward(&tape, g)
}

// Accuracy returns the fraction of images classified correctly, evaluated
// in batches of batch.
func (m *Model) Accuracy(pixels []float64, labels []int, batch int) (float64, error) {
	px := m.Cfg.Side * m.Cfg.Side
	correct := 0
	for i := 0; i < len(labels); i += batch {
		j := min(i+batch, len(labels))
		logits, err := m.Forward(pixels[i*px:j*px], j-i, PlainRun, nil)
		if err != nil {
			return 0, err
		}
		_, _, c := Loss(logits, labels[i:j])
		correct += c
	}
	return float64(correct) / float64(len(labels)), nil
}

// Clone returns a deep copy of the model's weights (not gradients or
// optimiser state), so that two fine-tuning runs can start from the same
// pre-trained model. It panics if m has LoRA adapters: clone before
// AddLoRA.
func (m *Model) Clone() *Model {
	c := New(m.Cfg)
	src, dst := m.params(true), c.params(true)
	if len(src) != len(dst) {
		panic("vit: Clone of a model with LoRA adapters")
	}
	for i := range src {
		dst[i].W.Copy(src[i].W)
		dst[i].Trainable = src[i].Trainable
	}
	return c
}

// Weights returns a copy of every base weight, in a fixed order.
func (m *Model) Weights() [][]float64 {
	var w [][]float64
	for _, p := range m.params(true) {
		w = append(w, append([]float64(nil), p.W.RawMatrix().Data...))
	}
	return w
}

// SetWeights loads weights returned by Weights of a model of the same
// configuration.
func (m *Model) SetWeights(w [][]float64) error {
	ps := m.params(true)
	if len(ps) != len(w) {
		return fmt.Errorf("vit: %d weight tensors, want %d", len(w), len(ps))
	}
	for i, p := range ps {
		d := p.W.RawMatrix().Data
		if len(d) != len(w[i]) {
			return fmt.Errorf("vit: %s has %d weights, want %d", p.Name, len(w[i]), len(d))
		}
		copy(d, w[i])
	}
	return nil
}
