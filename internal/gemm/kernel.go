package gemm

// A microKernel computes one mr×nr tile of C from packed panels:
//
//	C[i, j] = alpha·Σ_{p<kc} a[p·mr+i]·b[p·nr+j] + beta·C[i, j]   (useBeta)
//	C[i, j] = alpha·Σ_{p<kc} a[p·mr+i]·b[p·nr+j]                  (!useBeta)
//
// for i < mr, j < nr, where C[i, j] is c[i·ldc+j]. Without useBeta, c is
// only written, so NaN or Inf there does not propagate. a holds kc·mr and b
// kc·nr elements; c must reach element (mr-1)·ldc+nr-1.
//
// A microKernel has variants for narrower tiles: fns[i] computes an
// mr×((i+1)·step) tile, and the last, mr×nr, is the main one. E is the
// element type of the panels and of C, and the type the arithmetic is
// done in.
type microKernel[E Float] struct {
	name         string
	mr, nr, step int
	fns          []kernelFunc[E]
	// direct, where not nil, holds the variants of fns that read A in
	// place (see directFunc), fns[i]'s at direct[i].
	direct []directFunc[E]
}

type kernelFunc[E Float] func(kc int, a, b, c []E, ldc int, alpha, beta E, useBeta bool)

// A directFunc is a kernelFunc that reads the mr rows of A where they are
// stored, row i from a[i·lda:], instead of from a packed panel: element p
// of row i is a[i·lda+p].
type directFunc[E Float] func(kc int, a []E, lda int, b, c []E, ldc int, alpha, beta E, useBeta bool)

// A block of nc columns of B is cut into panels as follows: nr wide from
// column 0 to the tail start t0 = tail(nc), then one or two tail panels,
// each a multiple of step wide (the last padded with zero columns). The
// tail is the last, narrower panel, except that where it would be at most
// one step wide after a full panel, the last full panel and it become two
// panels of nr−step and step+rest columns: the narrowest variant keeps
// too few accumulators to hide the FMA latency (8×16 float32 runs at 79
// GFLOP/s against 110 for 8×32 and 111 for 8×48, BenchmarkSgemmMicroKernel,
// kc = 512; 8×8 float64 at 40 against 56 for 8×16 and 8×24,
// BenchmarkMicroKernel, kc = 192; one core, best of 3, GFLOP per
// CPU-second), so ℓ = 64 runs as 32 + 32 rather than 48 + 16, and
// float64 n = 128 as 4·24 + 16 + 16 rather than 5·24 + 8. Kernels with
// fewer than three variants keep the plain tail.
func (mk *microKernel[E]) tail(nc int) int {
	full := nc / mk.nr * mk.nr
	if r := nc - full; r > 0 && r <= mk.step && full > 0 && len(mk.fns) >= 3 {
		return full - mk.nr
	}
	return full
}

// panel returns the width of the panel of B starting at column j of a
// block of nc columns (j a panel start: see tail), and its kernel.
func (mk *microKernel[E]) panel(nc, j int) (int, kernelFunc[E]) {
	t0 := mk.tail(nc)
	w := mk.nr
	switch {
	case j < t0:
	case j == t0 && nc-t0 > mk.nr:
		w = mk.nr - mk.step
	default:
		w = min(mk.nr, (nc-j+mk.step-1)/mk.step*mk.step)
	}
	return w, mk.fns[w/mk.step-1]
}

// panelStart rounds j, a multiple of nr in [0, nc], down to the start of
// the panel that holds column j of a block of nc columns, so that shares
// of a block cut at multiples of nr are whole panels.
func (mk *microKernel[E]) panelStart(nc, j int) int {
	if t0 := mk.tail(nc); j > t0 && j < nc {
		return t0
	}
	return j
}

// goKernel is the portable micro-kernel: a 2×4 tile held in 8 scalars, so
// that the accumulators and one step's 6 operands stay in the 15 float
// registers Go's amd64 ABI leaves free. It measured 5.5–5.7 GFLOP/s on
// 1024³ against 3.9–4.1 for a 4×4 tile, whose 16 accumulators spill
// (GOMAXPROCS=1 go test -tags noasm -run XXX -bench
// 'BenchmarkDgemmKernel/kernel=go.*/m=1024/n=1024/k=1024' -benchtime 2x
// -count 2 ./internal/gemm/, 2-core AMD EPYC). goKernel32 is the same
// tile in float32, accumulating in float32.
var (
	goKernel   = microKernel[float64]{name: "go", mr: 2, nr: 4, step: 4, fns: []kernelFunc[float64]{kernGo[float64]}}
	goKernel32 = microKernel[float32]{name: "go", mr: 2, nr: 4, step: 4, fns: []kernelFunc[float32]{kernGo[float32]}}
)

func kernGo[E Float](kc int, a, b, c []E, ldc int, alpha, beta E, useBeta bool) {
	var c00, c01, c02, c03 E
	var c10, c11, c12, c13 E
	a = a[:2*kc]
	b = b[:4*kc]
	for p := 0; p < kc; p++ {
		ap := a[2*p : 2*p+2 : 2*p+2]
		bp := b[4*p : 4*p+4 : 4*p+4]
		a0, a1 := ap[0], ap[1]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
	}
	store := func(row []E, x0, x1, x2, x3 E) {
		row = row[:4:4]
		if useBeta {
			row[0] = alpha*x0 + beta*row[0]
			row[1] = alpha*x1 + beta*row[1]
			row[2] = alpha*x2 + beta*row[2]
			row[3] = alpha*x3 + beta*row[3]
			return
		}
		row[0] = alpha * x0
		row[1] = alpha * x1
		row[2] = alpha * x2
		row[3] = alpha * x3
	}
	store(c[0:], c00, c01, c02, c03)
	store(c[ldc:], c10, c11, c12, c13)
}
