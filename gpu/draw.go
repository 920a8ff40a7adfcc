package gpu

// drawMaxRows is the largest number of rows draw_uniform draws from: its
// permutation is held in shared memory as uint16.
const drawMaxRows = 1 << 16

// drawChunk is the number of draws one launch of draw_uniform makes (its
// seeds and row counts are kernel parameters).
const drawChunk = 8

// drawSmem is draw_uniform's dynamic shared memory for draws of l of at
// most p rows: the l drawn j (int32), then the uint16 permutation.
func drawSmem(p, l int) int { return 4*l + 2*p }

// canDraw reports whether draw_uniform serves a draw of l of p rows.
func (b *Backend) canDraw(p, l int) bool {
	return !b.noDraw && l >= 1 && p >= l && p <= drawMaxRows && drawSmem(p, l) <= b.smemMax
}

// drawUniform writes into out (int64, len(seeds)·l elements) the indices
// of sampling.Uniform's draw of l of ps[i] rows from seeds[i], item i at
// out + 8·i·l (kernel draw_uniform; every ps[i] must pass canDraw with
// l). The seeds and row counts travel as kernel parameters, not
// as a copy: no host transfer. The draw is math/rand/v2's on a 64-bit
// platform, the only kind CUDA serves (on a 32-bit one IntN takes another
// route).
func (b *Backend) drawUniform(out uintptr, l int, seeds []uint64, ps []int) error {
	var args [4 + 2*drawChunk]uint64
	for at := 0; at < len(seeds); at += drawChunk {
		n := min(drawChunk, len(seeds)-at)
		args = [4 + 2*drawChunk]uint64{ptr(out + uintptr(8*at*l)), i64(l), i64(n)}
		args[3+2*drawChunk] = boolArg(b.drawSeq)
		maxP := 1
		for j := range n {
			args[3+j] = seeds[at+j]
			args[3+drawChunk+j] = i64(ps[at+j])
			maxP = max(maxP, ps[at+j])
		}
		if err := b.launch(kDrawUniform, n, threads, drawSmem(maxP, l), args[:]...); err != nil {
			return err
		}
	}
	return nil
}

// drawIndices draws the indices of drawUniform into the scratch buffer
// gatherIdx, sized for len(seeds)·l of them, and returns its address (the
// device twin of uploadIndices). Called inside enter.
func (b *Backend) drawIndices(l int, seeds []uint64, ps []int) (uintptr, error) {
	di, err := b.buf(&b.sc.gatherIdx, 8*len(seeds)*l)
	if err != nil {
		return 0, err
	}
	return di, b.drawUniform(di, l, seeds, ps)
}
