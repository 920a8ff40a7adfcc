// Package vitgpu is the vision transformer of package vit on a CUDA
// device: the same architecture, parameters and LoRA adapters, with
// forward and backward passes of cuBLAS products (gpu.Backend.Mul, and
// MulBatched for attention) and NVRTC kernels of its own (kernels.cu:
// LayerNorm, GELU, softmax, residuals, cross-entropy, Adam) on one
// stream. Saved activations stay on the device: kept as they are (bf16),
// compressed per op by package activation, or compressed per block with
// recomputation in backward (compressed checkpointing), and the device
// allocator measures what each way holds. See docs/gpu-demo.md.
//
// Precision: master weights, gradients and Adam moments are float32.
// Activations are bf16 (products bf16×bf16 with float32 accumulation,
// every other operation computed in float32 and rounded once on store)
// or float32 (exact float32 products: the configuration the tests compare
// with vit's float64 model).
package vitgpu

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/gpu"
)

// Config sizes a device model.
type Config struct {
	// Model is the architecture, as for vit.New.
	Model vit.Config
	// MaxBatch bounds the batch of every pass: the workspace is sized for
	// it.
	MaxBatch int
	// DType is the activations' type: gpu.BFloat16 or gpu.Float32.
	DType gpu.DType
	// LoRARank r and LoRAScale s of the adapters (vit.Model.AddLoRA).
	LoRARank  int
	LoRAScale float64
}

// Check returns an error describing an invalid configuration.
func (c Config) Check() error {
	mc := c.Model
	switch {
	case mc.Side < 1 || mc.Patch < 1 || mc.Side%mc.Patch != 0:
		return fmt.Errorf("vitgpu: patch %d does not divide the image side %d", mc.Patch, mc.Side)
	case mc.Dim < 1 || mc.Heads < 1 || mc.Dim%mc.Heads != 0:
		return fmt.Errorf("vitgpu: %d heads do not divide the width %d", mc.Heads, mc.Dim)
	case mc.MLP < 1 || mc.Depth < 1 || mc.Classes < 2:
		return fmt.Errorf("vitgpu: MLP %d, depth %d, %d classes", mc.MLP, mc.Depth, mc.Classes)
	case c.MaxBatch < 1:
		return fmt.Errorf("vitgpu: MaxBatch %d < 1", c.MaxBatch)
	case c.DType != gpu.Float32 && c.DType != gpu.BFloat16:
		return fmt.Errorf("vitgpu: activations of type %v (float32 or bf16)", c.DType)
	case c.LoRARank < 1:
		return fmt.Errorf("vitgpu: LoRA rank %d < 1", c.LoRARank)
	case math.IsNaN(c.LoRAScale) || math.IsInf(c.LoRAScale, 0):
		return fmt.Errorf("vitgpu: LoRA scale %g", c.LoRAScale)
	case int64(c.MaxBatch)*int64(mc.Tokens())*int64(max(mc.Dim, mc.MLP)) >= 1<<31:
		return fmt.Errorf("vitgpu: batch %d × %d tokens × width %d exceeds cuBLAS's 32-bit sizes", c.MaxBatch, mc.Tokens(), max(mc.Dim, mc.MLP))
	}
	return nil
}

// Model is the device ViT. It serves one goroutine at a time (its
// Backend's rule).
type Model struct {
	b   *gpu.Backend
	k   *kernels
	cfg Config
	dt  gpu.DType

	tokens, dim, heads, dh, mlp, rank, classes, pp int
	maxL                                           int
	scale                                          float64

	base, lora arena
	headOff    int // the head's offset in base: fine-tuning updates base[headOff:]
	embed      linear
	pos        *param
	blocks     []block
	norm       layerNorm
	head       linear

	loraOn             bool
	ckptGroup          int  // SetCheckpointGroup's
	ckptEnds           bool // SetCheckpointEnds's
	opsGroup           int  // SetOpsGroup's
	noEpilogue         bool // the linear layers' bias by bias_rows and beta = 1, not MulBias (tests)
	geluRecompute      bool // SetRecomputeGELU's
	lnRecompute        bool // SetRecomputeLN's
	attRecompute       bool // SetRecomputeAttention's
	baseSnap, loraInit *gpu.Matrix
	// trainedBase and trainedLoRA are KeepTrained's copies.
	trainedBase, trainedLoRA *gpu.Matrix

	// onPhase, if set (tests: TestProfileStep), is called by TrainStep at
	// the start of forward ("forward"), of backward ("backward") and at
	// its end before the update ("end").
	onPhase func(phase string)

	ws     workspace
	ones   *gpu.Matrix // maxL×1 of the activation type
	ones32 *gpu.Matrix // maxL×1 float32
	slot   *gpu.Matrix // 1×1 float32: Accuracy's counter
}

// workspace holds the buffers of a pass that are not saved for backward,
// each sized for MaxBatch and used through views of its first rows:
// row-major rows×cols tensors of the activation type unless noted.
type workspace struct {
	res                 [2]*gpu.Matrix // L×d: the residual stream, alternating between blocks (in backward: recomputation)
	x2, y, q, k, v, att *gpu.Matrix    // L×d
	h                   *gpu.Matrix    // L×r: a LoRA branch's x·A
	u, a                *gpu.Matrix    // L×MLP
	scores, dp          *gpu.Matrix    // float32 (B·heads·T)×T: attention scores and their gradient
	p, ds               *gpu.Matrix    // (B·heads·T)×T: probabilities, and the scores' gradient
	patches             *gpu.Matrix    // L×P²
	pooled, yn          *gpu.Matrix    // B×d
	logits, dlogits     *gpu.Matrix    // float32 B×classes
	dres                [2]*gpu.Matrix // L×d: the gradient of the residual stream, alternating
	dx2, dy, datt       *gpu.Matrix    // L×d
	dq, dk, dv, prod    *gpu.Matrix    // L×d
	dh                  *gpu.Matrix    // L×r
	du, recon           *gpu.Matrix    // L×MLP: the MLP's gradient; a compressed GELU input rebuilt
	dyn, dpooled        *gpu.Matrix    // B×d
	all                 []*gpu.Matrix
}

// New allocates a model of configuration cfg on b, its parameters zero
// (LoadBase and LoadLoRA fill them), and compiles its kernels (NVRTC, once
// per process). LoRA is off.
func New(b *gpu.Backend, cfg Config) (*Model, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	mc := cfg.Model
	m := &Model{b: b, cfg: cfg, dt: cfg.DType, tokens: mc.Tokens(), dim: mc.Dim, heads: mc.Heads, dh: mc.Dim / mc.Heads,
		mlp: mc.MLP, rank: cfg.LoRARank, classes: mc.Classes, pp: mc.Patch * mc.Patch, scale: cfg.LoRAScale}
	m.maxL = cfg.MaxBatch * m.tokens
	m.layout(mc, cfg.LoRARank)
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	var err error
	if m.k, err = loadKernels(b); err != nil {
		return nil, err
	}
	for _, a := range []*arena{&m.base, &m.lora} {
		if err := a.alloc(b, cfg.DType == gpu.BFloat16); err != nil {
			return nil, err
		}
	}
	if err := m.allocWorkspace(); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// allocWorkspace allocates the workspace and the constant vectors.
func (m *Model) allocWorkspace() error {
	L, B, d, dt := m.maxL, m.cfg.MaxBatch, m.dim, m.dt
	sr := B * m.heads * m.tokens
	var err error
	buf := func(rows, cols int, t gpu.DType) *gpu.Matrix {
		if err != nil {
			return nil
		}
		var x *gpu.Matrix
		if x, err = m.b.NewMatrix(cols, rows, t); err != nil {
			return nil
		}
		m.ws.all = append(m.ws.all, x)
		return x.T()
	}
	w := &m.ws
	for i := range w.res {
		w.res[i], w.dres[i] = buf(L, d, dt), buf(L, d, dt)
	}
	for _, p := range []**gpu.Matrix{&w.x2, &w.y, &w.q, &w.k, &w.v, &w.att, &w.dx2, &w.dy, &w.datt, &w.dq, &w.dk, &w.dv, &w.prod} {
		*p = buf(L, d, dt)
	}
	w.h, w.dh = buf(L, m.rank, dt), buf(L, m.rank, dt)
	for _, p := range []**gpu.Matrix{&w.u, &w.a, &w.du, &w.recon} {
		*p = buf(L, m.mlp, dt)
	}
	w.scores, w.dp = buf(sr, m.tokens, gpu.Float32), buf(sr, m.tokens, gpu.Float32)
	w.p, w.ds = buf(sr, m.tokens, dt), buf(sr, m.tokens, dt)
	w.patches = buf(L, m.pp, dt)
	for _, p := range []**gpu.Matrix{&w.pooled, &w.yn, &w.dyn, &w.dpooled} {
		*p = buf(B, d, dt)
	}
	w.logits, w.dlogits = buf(B, m.classes, gpu.Float32), buf(B, m.classes, gpu.Float32)
	if err != nil {
		return err
	}
	if m.ones32, err = m.b.NewMatrix(L, 1, gpu.Float32); err != nil {
		return err
	}
	if err := m.k.fill(m.ones32, 1); err != nil {
		return err
	}
	m.ones = m.ones32
	if dt == gpu.BFloat16 {
		if m.ones, err = m.b.NewMatrix(L, 1, gpu.BFloat16); err != nil {
			return err
		}
		if err := m.k.castBF16(m.ones, m.ones32); err != nil {
			return err
		}
	}
	m.slot, err = m.b.NewMatrix(1, 1, gpu.Float32)
	return err
}

// Close frees the model's device memory and unloads its kernels.
func (m *Model) Close() error {
	for _, x := range append(m.ws.all, m.ones, m.ones32, m.slot, m.baseSnap, m.loraInit, m.trainedBase, m.trainedLoRA) {
		if x != nil {
			m.b.Free(x)
		}
	}
	m.ws.all = nil
	m.base.free(m.b)
	m.lora.free(m.b)
	if m.k != nil {
		return m.k.close()
	}
	return nil
}

// SetLoRA turns the adapters on (fine-tuning: the head and the adapters
// are trained, the rest frozen) or off (pre-training: every base
// parameter is trained, no adapter is applied).
func (m *Model) SetLoRA(on bool) { m.loraOn = on }

// SetCheckpointGroup sets how many block inputs compressed checkpointing
// compresses together, in one activation.Compressor.CompressBatch: n < 1
// (the default) or n ≥ the depth compresses them all at the end of the
// forward. Until its group is compressed each input is held as it is
// (L×d in the activation type), so a group of n holds up to n of them at
// once — counted with the saved activations — and one batched
// compression replaces n single ones (docs/gpu.md, "Batched
// compression"). 1 compresses each input before its block runs.
func (m *Model) SetCheckpointGroup(n int) { m.ckptGroup = n }

// SetCheckpointEnds sets whether compressed checkpointing (Checkpoint)
// leaves its two ends out of the compressed set, as activation
// checkpointing usually does: the first block's input, the patch
// embedding, is not saved but recomputed in backward from the images (a
// patch gather and one product of the embedding's width), and the last
// block saves its tape as plain training does, since backward starts
// with it — it is neither compressed nor recomputed. The peak of the
// saved activations stays that of one block's tape beside the
// compressed inputs, which are two fewer (depth − 2: at depth ≤ 2
// nothing is compressed), and the step makes one block's recomputation
// less. Off (the default) compresses every block's input.
func (m *Model) SetCheckpointEnds(on bool) { m.ckptEnds = on }

// SetOpsGroup sets how many blocks' compressions compressed per-op
// training (PerOp) makes together, in one
// activation.Compressor.CompressBatch at the end of the group's last
// block (and of the last block): n ≤ 1 (the default) compresses each
// block's tensors at the block's end. Until its group is compressed each
// saved tensor of the group's earlier blocks is held as it is, in a
// buffer of its own counted with the saved activations (with the default
// rebuilds, GELU's input: L × the MLP width in the activation type), so a
// group of n holds up to n − 1 blocks' of them beside the factors — the
// price of one batched decomposition instead of n (docs/gpu.md, "Batched
// compression"). With q's input saved (SetRecomputeLN off) in a model
// whose MLP is narrower than d, a group's last block compresses twice,
// once before fc1 (the group's earlier tensors with its q's and o's
// inputs, as a block alone does) and once at its end. The compressor's
// float32 factor workspace, one per tensor of a batch, grows with n; it
// is scratch, allocated in the first steps and not counted as saved.
func (m *Model) SetOpsGroup(n int) { m.opsGroup = n }

// SetRecomputeGELU sets whether compressed per-op training (PerOp) keeps
// fc2's input, GELU's output, out of the saved set: backward then rebuilds
// it as GELU of GELU's rebuilt input (which it rebuilds anyway, for GELU's
// own backward), so each block makes one compression of its MLP width
// instead of two, and saves one pair of factors less. The other modes are
// unaffected (Plain keeps both tensors; Checkpoint recomputes the block).
func (m *Model) SetRecomputeGELU(on bool) { m.geluRecompute = on }

// SetRecomputeLN sets whether compressed per-op training (PerOp) keeps the
// two LayerNorm outputs of a block — q/k/v's input and fc1's — out of the
// saved set: backward rebuilds each as x̂·γ + β from the normalised input
// x̂ that the LayerNorm keeps for its own backward (kernel ln_affine), to
// bf16 rounding, so they are neither compressed nor approximated. The
// other modes are unaffected.
func (m *Model) SetRecomputeLN(on bool) { m.lnRecompute = on }

// SetRecomputeAttention sets whether compressed per-op training (PerOp)
// keeps o's input, the attention output P·V, out of the saved set:
// backward rebuilds it from the probabilities P and values V that
// attention's own backward keeps (one batched product per head), to the
// rounding of that product. The other modes are unaffected.
func (m *Model) SetRecomputeAttention(on bool) { m.attRecompute = on }

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// view returns the first rows rows of the row-major buffer buf.
func view(buf *gpu.Matrix, rows int) *gpu.Matrix {
	_, c := buf.Dims()
	return gpu.RowMajor(buf.Ptr(), rows, c, c, buf.DType())
}

// column returns the first n elements of the column vector v.
func column(v *gpu.Matrix, n int) *gpu.Matrix { return gpu.ColMajor(v.Ptr(), n, 1, n, v.DType()) }

// Dataset is a labelled image set in device memory: the images as a
// float32 N×side² matrix, the labels and the indices 0…N−1 as float32
// vectors (exact integers below 2²⁴).
type Dataset struct {
	N                   int
	images, labels, seq *gpu.Matrix
}

// Upload copies d to the device.
func (m *Model) Upload(d vit.Data) (*Dataset, error) {
	px := m.cfg.Model.Side * m.cfg.Model.Side
	n := len(d.Labels)
	if n == 0 || len(d.Pixels) != n*px || n >= 1<<24 {
		return nil, fmt.Errorf("vitgpu: %d labels and %d pixels for images of %d pixels", n, len(d.Pixels), px)
	}
	ds := &Dataset{N: n}
	var err error
	if ds.images, err = m.b.NewMatrix(px, n, gpu.Float32); err != nil {
		return nil, err
	}
	ds.images = ds.images.T()
	if err := m.b.Upload(ds.images, mat.NewDense(n, px, d.Pixels)); err != nil {
		return nil, err
	}
	lab, seq := make([]float64, n), make([]float64, n)
	for i, l := range d.Labels {
		lab[i], seq[i] = float64(l), float64(i)
	}
	if ds.labels, err = m.uploadVector(lab); err != nil {
		return nil, err
	}
	if ds.seq, err = m.uploadVector(seq); err != nil {
		return nil, err
	}
	return ds, nil
}

// Free releases the dataset's device memory.
func (d *Dataset) Free(m *Model) {
	for _, x := range []*gpu.Matrix{d.images, d.labels, d.seq} {
		if x != nil {
			m.b.Free(x)
		}
	}
}

func (m *Model) uploadVector(v []float64) (*gpu.Matrix, error) {
	x, err := m.b.NewMatrix(len(v), 1, gpu.Float32)
	if err != nil {
		return nil, err
	}
	if err := m.b.Upload(x, mat.NewDense(len(v), 1, v)); err != nil {
		m.b.Free(x)
		return nil, err
	}
	return x, nil
}

// UploadIndices copies image indices (a Schedule) to the device as
// float32, for Batch.Idx.
func (m *Model) UploadIndices(idx []int) (*gpu.Matrix, error) {
	v := make([]float64, len(idx))
	for i, x := range idx {
		if x < 0 || x >= 1<<24 {
			return nil, fmt.Errorf("vitgpu: image index %d", x)
		}
		v[i] = float64(x)
	}
	return m.uploadVector(v)
}
