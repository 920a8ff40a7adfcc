package gpu

// drawMaxRows is the largest number of rows draw_uniform draws from: its
// permutation is held in shared memory as uint16.
const drawMaxRows = 1 << 16

// drawChunk is the number of draws one launch of draw_uniform makes (its
// seeds and row counts are kernel parameters).
const drawChunk = 8

// canDraw reports whether draw_uniform serves a draw from p rows.
func (b *Backend) canDraw(p int) bool {
	return !b.noDraw && p >= 1 && p <= drawMaxRows && 2*p <= b.smemMax
}

// drawUniform writes into out (int64, len(seeds)·l elements) the indices
// of sampling.Uniform's draw of l of ps[i] rows from seeds[i], item i at
// out + 8·i·l (kernel draw_uniform; every ps[i] must pass canDraw and be
// at least l). The seeds and row counts travel as kernel parameters, not
// as a copy: no host transfer.
func (b *Backend) drawUniform(out uintptr, l int, seeds []uint64, ps []int) error {
	var args [3 + 2*drawChunk]uint64
	for at := 0; at < len(seeds); at += drawChunk {
		n := min(drawChunk, len(seeds)-at)
		args = [3 + 2*drawChunk]uint64{ptr(out + uintptr(8*at*l)), i64(l), i64(n)}
		maxP := 1
		for j := range n {
			args[3+j] = seeds[at+j]
			args[3+drawChunk+j] = i64(ps[at+j])
			maxP = max(maxP, ps[at+j])
		}
		if err := b.launch(kDrawUniform, n, threads, 2*maxP, args[:]...); err != nil {
			return err
		}
	}
	return nil
}
