// Package activation is what a training loop calls to save activations for
// backward in compressed form: the LoRAct method (arXiv 2509.23472) applied
// to the tensors an autograd tape would otherwise keep.
//
// An activation of shape (batch, seq, hidden) is treated as the L×d matrix
// X with L = batch·seq rows and d = hidden columns (see View). At forward
// time Compressor.Compress replaces it by low-rank factors X ≈ P·R, P L×k
// and R k×d, stored in bfloat16 (the default), float32 or float64; the
// returned *Saved reports its bytes and relative error. At backward time
// Saved.Reconstruct rebuilds X̃ = P·R, and Saved.WeightGradOutIn (PyTorch's
// out×in weight layout) and Saved.WeightGradInOut (gonum's in×out) compute
// the weight gradient of a linear layer without rebuilding it: for G of
// shape L×o, Gᵀ·X̃ = (Gᵀ·P)·R costs 2·k·o·(L+d) flops instead of
// 2·L·d·(k+o).
//
// On the CPU the factors live in Go memory that Release returns (nothing
// of the input is kept once a compression is done); with a *gpu.Backend
// they live in the device's memory pool, and the backward products run on
// the device (docs/activation.md, "On the GPU").
//
// Two ways to use it, both shown in docs/activation.md and in the demo
// (go run ./cmd/loract demo):
//
//   - per op: compress what each op saves (the input of a linear layer, the
//     input of an activation function) and release it after the op's
//     backward;
//   - compressed checkpointing, the reference implementation's default:
//     save only the compressed input of a whole block, and in backward
//     recompute the block from the reconstruction.
//
// One tensor consumed by several layers (the q/k/v projections, a frozen
// base layer and its LoRA branch) is compressed once when the caller says
// so: Saved.Retain adds a consumer, or CompressKey finds a live handle by
// the caller's key (a buffer overwritten with new data gets a new
// Version; memory addresses are never used). With Config.Workers > 0
// compression runs on worker goroutines (on a GPU, side streams) and
// overlaps the rest of the forward pass; Compressor.Join waits for it
// before backward and returns any worker's error.
//
// The compressor accounts live and peak bytes of every saved activation,
// per layer and in total, next to the uncompressed equivalent (Stats).
//
// Data errors are returned, never panicked: a NaN or ±Inf in an activation
// (a *LayerError naming the layer and wrapping a *lowrank.NotFiniteError),
// factors beyond the storage precision's range (lowrank.ErrNotFinite), a
// host reconstruction or weight gradient beyond its destination's range
// (lowrank.ErrNotFinite; a NaN in the output gradient is named by its
// *lowrank.NotFiniteError), a handle used after its last release
// (ErrReleased), a backward tensor whose shape disagrees with the forward
// one (ErrShapeMismatch). On the device a product's overflow is IEEE ±Inf
// in the destination, unchecked: a check would read the result back.
package activation
