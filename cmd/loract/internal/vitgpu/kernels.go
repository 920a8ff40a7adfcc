package vitgpu

import (
	_ "embed"
	"fmt"

	"github.com/loract/loract/gpu"
)

//go:embed kernels.cu
var kernelSource string

// kernel names an entry point of kernels.cu. Every kernel has exactly one
// typed wrapper below, the only code that launches it; TestKernelList
// checks kernelNames against the extern "C" __global__ functions of
// kernels.cu.
type kernel int

const (
	kFill kernel = iota
	kCastBF16
	kPatches
	kBiasRows
	kLNFwd
	kLNBwd
	kLNAffine
	kMulElem
	kGELUFwd
	kGELUBwd
	kSoftmaxFwd
	kSoftmaxBwd
	kMeanPool
	kMeanPoolBwd
	kXent
	kAdam
	numKernels
)

var kernelNames = [numKernels]string{
	kFill: "fill", kCastBF16: "cast_bf16", kPatches: "patches", kBiasRows: "bias_rows",
	kLNFwd: "ln_fwd", kLNBwd: "ln_bwd", kLNAffine: "ln_affine", kMulElem: "mul_elem", kGELUFwd: "gelu_fwd", kGELUBwd: "gelu_bwd",
	kSoftmaxFwd: "softmax_fwd", kSoftmaxBwd: "softmax_bwd", kMeanPool: "mean_pool", kMeanPoolBwd: "mean_pool_bwd",
	kXent: "xent", kAdam: "adam",
}

// Launch shapes: grid-stride kernels run blocks of threads threads, at
// most maxBlocks of them; warp-per-row kernels rowsPerBlock rows per
// block; xent one block of xentThreads (its shared arrays' size).
const (
	threads      = 256
	maxBlocks    = 8192
	rowsPerBlock = threads / 32
	xentThreads  = 256
)

// kernels is the compiled module of kernels.cu on one backend.
type kernels struct {
	b   *gpu.Backend
	mod *gpu.Module
	fn  [numKernels]*gpu.Func
}

// loadKernels compiles kernels.cu (once per process) and loads it on b.
func loadKernels(b *gpu.Backend) (*kernels, error) {
	mod, err := b.Compile("vitgpu_kernels.cu", kernelSource)
	if err != nil {
		return nil, err
	}
	k := &kernels{b: b, mod: mod}
	for i, name := range kernelNames {
		if k.fn[i], err = mod.Func(name); err != nil {
			mod.Close()
			return nil, err
		}
	}
	return k, nil
}

func (k *kernels) close() error { return k.mod.Close() }

func (k *kernels) launch(f kernel, grid, block int, args ...uint64) error {
	return k.b.Launch(k.fn[f], gpu.Dim3{X: grid}, gpu.Dim3{X: block}, 0, args...)
}

// grid returns the grid-stride launch size for n elements.
func grid(n int) int { return max(1, min((n+threads-1)/threads, maxBlocks)) }

// vecGrid returns the launch size of a grid-stride kernel over a rows×n
// tensor of type dt whose bf16 path takes eight elements a thread when n
// is a multiple of 8 (and its tensors are 16-byte aligned, which the
// kernel checks; were they not, its grid-stride loop covers the elements
// with fewer threads).
func vecGrid(dt gpu.DType, rows, n int) int {
	if dt == gpu.BFloat16 && n%8 == 0 {
		return grid(rows * n / 8)
	}
	return grid(rows * n)
}

// biasBlocks caps biasGrid: 1024 blocks of 256 threads are about 2048
// threads on each of the 132 multiprocessors of an H100 or H200, as many
// as one holds (a variable so that a test can make every thread loop).
var biasBlocks = 1024

// biasGrid returns bias_rows' launch size: vecGrid's, capped at biasBlocks
// where the kernel's bf16 path without pos strides each thread down the
// rows of one column vector (it needs at least a row's vectors of
// threads, n/8, which the cap leaves for every n below 2¹⁸).
func biasGrid(dt gpu.DType, rows, n int, pos uintptr) int {
	g := vecGrid(dt, rows, n)
	if dt != gpu.BFloat16 || n%8 != 0 || pos != 0 {
		return g
	}
	return max(min(g, biasBlocks), (n/8+threads-1)/threads)
}

// rowGrid returns the launch size of a warp-per-row kernel for rows rows.
func rowGrid(rows int) int { return max(1, min((rows+rowsPerBlock-1)/rowsPerBlock, maxBlocks)) }

// tensor checks that m holds a contiguous rows×cols tensor — a row-major
// view whose stride is cols, or a single column or row stored
// contiguously — and returns its address; a nil m is the null pointer.
// Anything else is a programmer error: it panics.
func tensor(m *gpu.Matrix) uint64 {
	if m == nil {
		return 0
	}
	r, c := m.Dims()
	switch {
	case m.RowMajorLayout() && m.LD() == c:
	case !m.RowMajorLayout() && (c == 1 || (r == 1 && m.LD() == 1) || m.LD() == r):
	default:
		panic(fmt.Sprintf("vitgpu: a %d×%d tensor with leading dimension %d (row-major %v) is not contiguous", r, c, m.LD(), m.RowMajorLayout()))
	}
	return gpu.ArgPtr(m.Ptr())
}

// size returns the number of elements of m.
func size(m *gpu.Matrix) int {
	r, c := m.Dims()
	return r * c
}

// code returns the type code of kernels.cu for dt.
func code(dt gpu.DType) uint64 {
	if dt == gpu.BFloat16 {
		return 1
	}
	return 0
}

// same panics unless every non-nil matrix has type dt and the shape of
// the first.
func same(dt gpu.DType, ms ...*gpu.Matrix) {
	var r0, c0 int
	first := true
	for _, m := range ms {
		if m == nil {
			continue
		}
		r, c := m.Dims()
		if first {
			r0, c0, first = r, c, false
		}
		if m.DType() != dt || r != r0 || c != c0 {
			panic(fmt.Sprintf("vitgpu: tensor %d×%d %v where %d×%d %v is expected", r, c, m.DType(), r0, c0, dt))
		}
	}
}

func f32(m *gpu.Matrix) {
	if m != nil && m.DType() != gpu.Float32 {
		panic(fmt.Sprintf("vitgpu: a float32 tensor is expected, have %v", m.DType()))
	}
}

// fill sets every element of the float32 tensor p to v.
func (k *kernels) fill(p *gpu.Matrix, v float32) error {
	f32(p)
	n := size(p)
	return k.launch(kFill, grid(n), threads, tensor(p), gpu.ArgInt(n), gpu.ArgFloat32(v))
}

// castBF16 sets the bf16 tensor dst to src (float32) rounded to nearest
// even.
func (k *kernels) castBF16(dst, src *gpu.Matrix) error {
	f32(src)
	if dst.DType() != gpu.BFloat16 || size(dst) != size(src) {
		panic("vitgpu: castBF16 needs a bf16 destination of the source's size")
	}
	n := size(src)
	return k.launch(kCastBF16, grid(n), threads, tensor(dst), tensor(src), gpu.ArgInt(n))
}

// patches writes the (B·T)×(P·P) patch matrix of the B images whose
// indices (float32) start at idx, from the float32 images of side×side
// pixels at images.
func (k *kernels) patches(out *gpu.Matrix, images, idx uintptr, batch, side, p int) error {
	r, c := out.Dims()
	tok := (side / p) * (side / p)
	if r != batch*tok || c != p*p {
		panic(fmt.Sprintf("vitgpu: patches of %d images (%d tokens of %d pixels) into %d×%d", batch, tok, p*p, r, c))
	}
	return k.launch(kPatches, grid(r*c), threads, tensor(out), code(out.DType()), gpu.ArgPtr(images), gpu.ArgPtr(idx),
		gpu.ArgInt(batch), gpu.ArgInt(side), gpu.ArgInt(p))
}

// biasRows sets out(i, j) = bias[j] + pos[(i mod T)·n + j] + add(i, j);
// bias and pos (float32 pointers) may be 0, add nil.
func (k *kernels) biasRows(out *gpu.Matrix, bias, pos uintptr, T int, add *gpu.Matrix) error {
	r, c := out.Dims()
	ta := uint64(0)
	if add != nil {
		if ar, ac := add.Dims(); ar != r || ac != c {
			panic("vitgpu: biasRows addend of another shape")
		}
		ta = code(add.DType())
	}
	return k.launch(kBiasRows, biasGrid(out.DType(), r, c, pos), threads, tensor(out), code(out.DType()), gpu.ArgPtr(bias), gpu.ArgPtr(pos),
		gpu.ArgInt(max(T, 1)), tensor(add), ta, gpu.ArgInt(r), gpu.ArgInt(c))
}

// lnFwd is LayerNorm of the rows of x into y, writing xhat and rstd
// (rows×1 float32) unless nil.
func (k *kernels) lnFwd(y, xhat, rstd, x *gpu.Matrix, gamma, beta uintptr, eps float32) error {
	same(x.DType(), x, y, xhat)
	f32(rstd)
	r, c := x.Dims()
	if rstd != nil && size(rstd) != r {
		panic("vitgpu: lnFwd rstd of the wrong length")
	}
	return k.launch(kLNFwd, rowGrid(r), threads, tensor(y), tensor(xhat), tensor(rstd), tensor(x), code(x.DType()),
		gpu.ArgPtr(gamma), gpu.ArgPtr(beta), gpu.ArgInt(r), gpu.ArgInt(c), gpu.ArgFloat32(eps))
}

// lnAffine sets y = xhat·gamma + beta row by row: LayerNorm's output
// from its normalised input.
func (k *kernels) lnAffine(y, xhat *gpu.Matrix, gamma, beta uintptr) error {
	same(xhat.DType(), xhat, y)
	r, c := xhat.Dims()
	return k.launch(kLNAffine, vecGrid(xhat.DType(), r, c), threads, tensor(y), tensor(xhat), code(xhat.DType()),
		gpu.ArgPtr(gamma), gpu.ArgPtr(beta), gpu.ArgInt(r), gpu.ArgInt(c))
}

// lnBwd writes LayerNorm's input gradient for dy into dx, plus add
// unless nil.
func (k *kernels) lnBwd(dx, dy, xhat, rstd *gpu.Matrix, gamma uintptr, add *gpu.Matrix) error {
	same(dy.DType(), dy, dx, xhat, add)
	f32(rstd)
	r, c := dy.Dims()
	if size(rstd) != r {
		panic("vitgpu: lnBwd rstd of the wrong length")
	}
	return k.launch(kLNBwd, rowGrid(r), threads, tensor(dx), tensor(dy), tensor(xhat), tensor(rstd), gpu.ArgPtr(gamma),
		tensor(add), code(dy.DType()), gpu.ArgInt(r), gpu.ArgInt(c))
}

// mulElem sets out = a ⊙ b.
func (k *kernels) mulElem(out, a, b *gpu.Matrix) error {
	same(a.DType(), a, b, out)
	n := size(a)
	return k.launch(kMulElem, grid(n), threads, tensor(out), tensor(a), tensor(b), code(a.DType()), gpu.ArgInt(n))
}

// geluFwd sets out = gelu(u).
func (k *kernels) geluFwd(out, u *gpu.Matrix) error {
	same(u.DType(), u, out)
	n := size(u)
	return k.launch(kGELUFwd, grid(n), threads, tensor(out), tensor(u), code(u.DType()), gpu.ArgInt(n))
}

// geluBwd sets du = dout ⊙ gelu'(u).
func (k *kernels) geluBwd(du, dout, u *gpu.Matrix) error {
	same(u.DType(), u, du, dout)
	n := size(u)
	return k.launch(kGELUBwd, grid(n), threads, tensor(du), tensor(dout), tensor(u), code(u.DType()), gpu.ArgInt(n))
}

// softmaxFwd sets each row of p to the softmax of that row of the float32
// scores s.
func (k *kernels) softmaxFwd(p, s *gpu.Matrix) error {
	f32(s)
	same(p.DType(), p)
	r, c := s.Dims()
	if pr, pc := p.Dims(); pr != r || pc != c {
		panic("vitgpu: softmax of another shape")
	}
	return k.launch(kSoftmaxFwd, rowGrid(r), threads, tensor(p), code(p.DType()), tensor(s), gpu.ArgInt(r), gpu.ArgInt(c))
}

// softmaxBwd sets ds = p ⊙ (dp − rowsum(dp ⊙ p))·scale, dp float32.
func (k *kernels) softmaxBwd(ds, dp, p *gpu.Matrix, scale float32) error {
	f32(dp)
	same(p.DType(), p, ds)
	r, c := p.Dims()
	if dr, dc := dp.Dims(); dr != r || dc != c {
		panic("vitgpu: softmax gradient of another shape")
	}
	return k.launch(kSoftmaxBwd, rowGrid(r), threads, tensor(ds), code(p.DType()), tensor(dp), tensor(p),
		gpu.ArgInt(r), gpu.ArgInt(c), gpu.ArgFloat32(scale))
}

// meanPool sets out (B×d) to the mean over each image's T tokens of x
// ((B·T)×d).
func (k *kernels) meanPool(out, x *gpu.Matrix, T int) error {
	same(x.DType(), out)
	b, d := out.Dims()
	if xr, xc := x.Dims(); xr != b*T || xc != d {
		panic("vitgpu: meanPool shapes")
	}
	return k.launch(kMeanPool, grid(b*d), threads, tensor(out), tensor(x), code(x.DType()), gpu.ArgInt(b), gpu.ArgInt(T), gpu.ArgInt(d))
}

// meanPoolBwd sets dx((b·T + k), j) = dp(b, j)/T.
func (k *kernels) meanPoolBwd(dx, dp *gpu.Matrix, T int) error {
	same(dp.DType(), dx)
	b, d := dp.Dims()
	if xr, xc := dx.Dims(); xr != b*T || xc != d {
		panic("vitgpu: meanPoolBwd shapes")
	}
	return k.launch(kMeanPoolBwd, grid(b*T*d), threads, tensor(dx), tensor(dp), code(dp.DType()), gpu.ArgInt(b), gpu.ArgInt(T), gpu.ArgInt(d))
}

// xent is the cross-entropy of the float32 logits (B×C) against
// labels[idx[i]]; dlogits (nil: not written) gets the gradient of the
// mean, loss[0] (0: not written) the mean, correct[0] (0: not written) is
// incremented by the number of correct argmax predictions.
func (k *kernels) xent(dlogits, logits *gpu.Matrix, labels, idx, loss, correct uintptr) error {
	f32(logits)
	f32(dlogits)
	b, c := logits.Dims()
	if dlogits != nil {
		if dr, dc := dlogits.Dims(); dr != b || dc != c {
			panic("vitgpu: xent gradient of another shape")
		}
	}
	return k.launch(kXent, 1, xentThreads, tensor(dlogits), tensor(logits), gpu.ArgPtr(labels), gpu.ArgPtr(idx),
		gpu.ArgInt(b), gpu.ArgInt(c), gpu.ArgPtr(loss), gpu.ArgPtr(correct))
}

// adam is one Adam step on the float32 tensors w, g, m, v of one size,
// writing bf16(w) into wb unless nil; the scalars are formed in float64
// and rounded once.
func (k *kernels) adam(w, wb, g, m, v *gpu.Matrix, lr, b1, b2, eps, c1, c2 float64) error {
	for _, x := range []*gpu.Matrix{w, g, m, v} {
		f32(x)
		if size(x) != size(w) {
			panic("vitgpu: adam tensors of different sizes")
		}
	}
	if wb != nil && (wb.DType() != gpu.BFloat16 || size(wb) != size(w)) {
		panic("vitgpu: adam copy of the wrong type or size")
	}
	n := size(w)
	f := func(x float64) uint64 { return gpu.ArgFloat32(float32(x)) }
	return k.launch(kAdam, grid(n), threads, tensor(w), tensor(wb), tensor(g), tensor(m), tensor(v), gpu.ArgInt(n),
		f(lr), f(b1), f(1-b1), f(b2), f(1-b2), f(eps), f(c1), f(c2))
}
