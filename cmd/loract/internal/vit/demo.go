package vit

import (
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/lowrank"
)

// Data is a labelled image set: image i is Pixels[i·Side² : (i+1)·Side²].
type Data struct {
	Pixels []float64
	Labels []int
}

// DemoConfig configures RunDemo.
type DemoConfig struct {
	Model                        Config
	Batch                        int
	PretrainSteps, FineTuneSteps int
	PretrainLR, FineTuneLR       float64
	LoRARank                     int
	LoRAScale                    float64
	// Compression configures the compressed fine-tuning run's compressor.
	Compression activation.Config
	// Checkpoint selects compressed checkpointing (each block saves only
	// its compressed input); otherwise each op's compressible tensors are
	// compressed, but those Rebuild names, which backward rebuilds.
	Checkpoint bool
	Rebuild    Rebuild
	// Ends leaves checkpointing's first and last blocks uncompressed
	// (Run.Ends).
	Ends bool
	// Progress, if not nil, is called after every training step.
	Progress func(phase string, step, steps int, loss float64)
	// Pretrained, if not nil, replaces pre-training: it is called with the
	// freshly initialised model and may load weights into it (reporting
	// ok), or report !ok to have the model pre-trained, after which Save
	// (if not nil) is called with it.
	Pretrained func(m *Model) (ok bool, err error)
	Save       func(m *Model) error
	// CPUTime, if not nil, returns the CPU time the process has used so
	// far; the runs report their CPU time from it (robust on a loaded
	// machine, where wall times are not).
	CPUTime func() time.Duration
	// Phase, if not empty, names the compressed run in progress lines.
	Phase string
}

// FineTuneResult describes one fine-tuning run.
type FineTuneResult struct {
	Accuracy float64
	Losses   []float64
	Wall     time.Duration
	// CPU is the process CPU time of the run (0 without DemoConfig.CPUTime).
	CPU time.Duration
	// CompressTime is the time spent inside the compressible set's
	// Compress calls (with asynchronous workers, only the submission).
	CompressTime time.Duration
	// Main is the accounting of the compressible set, Rest that of every
	// other saved tensor (stored as float32 copies in both runs).
	Main, Rest activation.Stats
	// PeakAll is the peak of all saved activations together (Main + Rest),
	// sampled after every save and release.
	PeakAll int
	// HeapSaved is measured by the allocator, not the accounting: the
	// growth of the Go heap's live objects (after a full GC) from the end
	// of the second-to-last fine-tuning step to the forward/backward
	// boundary of the last one, where every saved activation of that step
	// is held; StatsLive is Main + Rest live bytes at the same moment.
	HeapSaved, StatsLive int64
	// StepLive is the compressible set's live bytes at every step's
	// forward/backward boundary (after Join), where the step's saved
	// activations are all held: the step's peak.
	StepLive []int
	// Plan is the compressor's last allocation under a Budget policy.
	Plan activation.Plan
}

// ParamCos is the cosine similarity between a parameter's gradients.
type ParamCos struct {
	Name string
	Cos  float64
}

// DemoResult is what RunDemo measured.
type DemoResult struct {
	PretrainAccuracy float64
	PretrainWall     time.Duration
	Baseline, Loract FineTuneResult
	// GradCos is the cosine similarity of the full trainable-gradient
	// vectors of one batch, compressed against uncompressed, taken on the
	// loract-fine-tuned model; PerParam breaks it down.
	GradCos  float64
	PerParam []ParamCos
}

// meter tracks the peak of the live bytes of several compressors.
type meter struct {
	mu    sync.Mutex
	cs    []*activation.Compressor
	peak  int
	spent time.Duration
}

func (m *meter) sample() {
	live := 0
	for _, c := range m.cs {
		live += c.Stats().Total.Live
	}
	m.mu.Lock()
	m.peak = max(m.peak, live)
	m.mu.Unlock()
}

type meteredStash struct {
	Stash
	m *meter
}

func (s meteredStash) Release() error {
	err := s.Stash.Release()
	s.m.sample()
	return err
}

func (m *meter) saver(c *activation.Compressor, timed bool) Saver {
	save := Compressed(c)
	return func(layer string, x *mat.Dense) (Stash, error) {
		t0 := time.Now()
		s, err := save(layer, x)
		if timed {
			m.mu.Lock()
			m.spent += time.Since(t0)
			m.mu.Unlock()
		}
		if err != nil {
			return nil, err
		}
		m.sample()
		return meteredStash{s, m}, nil
	}
}

// BaselineCompression is the configuration of the uncompressed run:
// activations saved as they are, as float32 copies.
var BaselineCompression = activation.Config{Method: activation.Uncompressed, Precision: lowrank.Float32}

// runs builds the Run of the uncompressed baseline or of the loract run
// with fresh compressors.
func (cfg *DemoConfig) runs(compressed bool) (Run, *meter, *activation.Compressor, *activation.Compressor, error) {
	rest, err := activation.New(BaselineCompression)
	if err != nil {
		return Run{}, nil, nil, nil, err
	}
	main := rest
	if compressed {
		if main, err = activation.New(cfg.Compression); err != nil {
			return Run{}, nil, nil, nil, err
		}
	}
	m := &meter{cs: []*activation.Compressor{main}}
	if main != rest {
		m.cs = append(m.cs, rest)
	}
	run := Run{Main: m.saver(main, true), Rest: m.saver(rest, false), Checkpoint: compressed && cfg.Checkpoint}
	if compressed && !cfg.Checkpoint {
		run.Rebuild = cfg.Rebuild
	}
	run.Ends = run.Checkpoint && cfg.Ends
	return run, m, main, rest, nil
}

func (cfg *DemoConfig) cpu() time.Duration {
	if cfg.CPUTime == nil {
		return 0
	}
	return cfg.CPUTime()
}

// RunDemo pre-trains a model on pre, fine-tunes two LoRA copies of it on
// fine (the same seed and batches), one saving activations as float32
// copies and one compressing them as cfg.Compression says, and evaluates
// them on testPre and testFine.
func RunDemo(cfg DemoConfig, pre, fine, testPre, testFine Data) (*DemoResult, error) {
	res := &DemoResult{}
	model, err := cfg.pretrain(pre, testPre, res)
	if err != nil {
		return nil, err
	}
	var tuned *Model
	for _, compressed := range []bool{false, true} {
		r := &res.Baseline
		if compressed {
			r = &res.Loract
		}
		if tuned, err = cfg.fineTune(model, compressed, fine, testFine, r); err != nil {
			return nil, err
		}
	}
	n := cfg.Batch * cfg.Model.Side * cfg.Model.Side
	res.GradCos, res.PerParam, err = cfg.gradFidelity(tuned, fine.Pixels[:n], fine.Labels[:cfg.Batch], nil, nil)
	return res, err
}

func (cfg *DemoConfig) progress(phase string, steps int) func(int, float64) {
	if cfg.Progress == nil {
		return nil
	}
	return func(step int, loss float64) { cfg.Progress(phase, step, steps, loss) }
}

// pretrain returns the pre-trained model (trained, or loaded by
// cfg.Pretrained), recording its accuracy on testPre and the time in res.
func (cfg *DemoConfig) pretrain(pre, testPre Data, res *DemoResult) (*Model, error) {
	model := New(cfg.Model)
	t0 := time.Now()
	loaded := false
	if cfg.Pretrained != nil {
		var err error
		if loaded, err = cfg.Pretrained(model); err != nil {
			return nil, err
		}
	}
	if !loaded {
		_, err := Train(model, pre.Pixels, pre.Labels, TrainConfig{
			Steps: cfg.PretrainSteps, Batch: cfg.Batch, Seed: cfg.Model.Seed, Run: PlainRun,
			Adam:     Adam{LR: cfg.PretrainLR, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
			Progress: cfg.progress("pre-train", cfg.PretrainSteps),
		})
		if err != nil {
			return nil, err
		}
		if cfg.Save != nil {
			if err := cfg.Save(model); err != nil {
				return nil, err
			}
		}
	}
	res.PretrainWall = time.Since(t0)
	var err error
	if res.PretrainAccuracy, err = model.Accuracy(testPre.Pixels, testPre.Labels, 500); err != nil {
		return nil, err
	}
	return model, nil
}

// fineTune fine-tunes a LoRA copy of model on fine, saving activations as
// float32 copies or (compressed) as cfg.Compression says, into r, and
// returns the tuned copy.
func (cfg *DemoConfig) fineTune(model *Model, compressed bool, fine, testFine Data, r *FineTuneResult) (*Model, error) {
	m := model.Clone()
	m.AddLoRA(cfg.LoRARank, cfg.LoRAScale, cfg.Model.Seed+1)
	run, met, main, rest, err := cfg.runs(compressed)
	if err != nil {
		return nil, err
	}
	phase := "fine-tune, activations as they are"
	if compressed {
		phase = "fine-tune, loract-compressed"
		if cfg.Phase != "" {
			phase = "fine-tune, " + cfg.Phase
		}
	}
	t0, c0 := time.Now(), cfg.cpu()
	var heapBefore uint64
	prog := cfg.progress(phase, cfg.FineTuneSteps)
	r.Losses, err = Train(m, fine.Pixels, fine.Labels, TrainConfig{
		Steps: cfg.FineTuneSteps, Batch: cfg.Batch, Seed: cfg.Model.Seed + 2, Run: run,
		Adam: Adam{LR: cfg.FineTuneLR, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		BeforeBackward: func() error {
			err := main.Join()
			met.sample()
			r.StepLive = append(r.StepLive, main.Stats().Total.Live)
			if heapBefore != 0 {
				r.HeapSaved = int64(HeapObjects()) - int64(heapBefore)
				r.StatsLive = int64(main.Stats().Total.Live)
				if main != rest {
					r.StatsLive += int64(rest.Stats().Total.Live)
				}
				heapBefore = 0
			}
			return err
		},
		Progress: func(step int, loss float64) {
			if step == cfg.FineTuneSteps-2 {
				heapBefore = HeapObjects()
			}
			if prog != nil {
				prog(step, loss)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	r.Wall, r.CPU = time.Since(t0), cfg.cpu()-c0
	r.CompressTime = met.spent
	r.Main, r.Rest, r.PeakAll = main.Stats(), rest.Stats(), met.peak
	r.Plan = main.Plan()
	if main == rest {
		r.Rest = activation.Stats{}
	}
	if r.Accuracy, err = m.Accuracy(testFine.Pixels, testFine.Labels, 500); err != nil {
		return nil, err
	}
	main.Close()
	rest.Close()
	return m, nil
}

// HeapObjects returns the bytes of live Go heap objects after a full
// collection (two cycles, so that pooled buffers are dropped too), from
// runtime/metrics: the allocator's figure, not an accounting.
func HeapObjects() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// gradFidelity returns the cosine similarity between the gradients of
// the trainable parameters of m on one batch, with compressed and with
// uncompressed activations. A compressor under a Budget policy first runs
// one step on the batch warmPx, warmLabels (if given), so that the
// measured step is planned from spectra, as in training, not by the
// first step's equal shares.
func (cfg *DemoConfig) gradFidelity(m *Model, px []float64, labels []int, warmPx []float64, warmLabels []int) (float64, []ParamCos, error) {
	var g [2][][]float64
	for i, compressed := range []bool{false, true} {
		run, _, main, rest, err := cfg.runs(compressed)
		if err != nil {
			return 0, nil, err
		}
		if compressed && main.Plan().Budget > 0 && warmLabels != nil {
			if _, err := m.Step(warmPx, warmLabels, run, main.Join); err != nil {
				return 0, nil, err
			}
		}
		m.ZeroGrad()
		if _, err := m.Step(px, labels, run, main.Join); err != nil {
			return 0, nil, err
		}
		for _, p := range m.Params() {
			g[i] = append(g[i], append([]float64(nil), p.G.RawMatrix().Data...))
		}
		main.Close()
		rest.Close()
	}
	m.ZeroGrad()
	var per []ParamCos
	var dot, na, nb float64
	for i, p := range m.Params() {
		d, a, b := dots(g[0][i], g[1][i])
		per = append(per, ParamCos{Name: p.Name, Cos: d / math.Sqrt(a*b)})
		dot, na, nb = dot+d, na+a, nb+b
	}
	return dot / math.Sqrt(na*nb), per, nil
}

func dots(x, y []float64) (xy, xx, yy float64) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("vit: gradient lengths %d and %d", len(x), len(y)))
	}
	for i, a := range x {
		xy += a * y[i]
		xx += a * a
		yy += y[i] * y[i]
	}
	return xy, xx, yy
}
