package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// rowSumsChunk is the number of elements of one chunk of rowSums: large
// enough that a goroutine's share outweighs its start (about a
// microsecond against 32 Ki elements at a few GB/s), small enough that
// two cores share a 4096-row input evenly under load.
const rowSumsChunk = 1 << 15

// rowSums returns the sum of the per-row sums of squares and the largest
// per-row maximum that row(r) gives for r in [0, rows), each row having
// cols elements. The rows are cut into fixed chunks of rowSumsChunk
// elements whatever GOMAXPROCS is, the chunks are taken by up to
// GOMAXPROCS goroutines, and their partial sums are added in chunk order:
// the result is the same bit for bit on any number of cores, and equal to
// the plain loop's for an input of one chunk. max propagates a NaN.
func rowSums(rows, cols int, row func(r int) (sumSq, maxAbs float64)) (sumSq, maxAbs float64) {
	per := max(1, rowSumsChunk/max(cols, 1))
	chunks := (rows + per - 1) / per
	sum := func(c int) (s, mx float64) {
		for r := c * per; r < min(rows, (c+1)*per); r++ {
			rs, rm := row(r)
			s += rs
			mx = max(mx, rm)
		}
		return s, mx
	}
	if chunks <= 1 || runtime.GOMAXPROCS(0) <= 1 {
		for c := range chunks {
			s, mx := sum(c)
			sumSq += s
			maxAbs = max(maxAbs, mx)
		}
		return sumSq, maxAbs
	}
	part := make([][2]float64, chunks)
	parallelChunks(chunks, func(c int) { part[c][0], part[c][1] = sum(c) })
	for _, p := range part {
		sumSq += p[0]
		maxAbs = max(maxAbs, p[1])
	}
	return sumSq, maxAbs
}

// parallelChunks calls do(c) for every c in [0, chunks), on up to
// GOMAXPROCS goroutines that take the chunks in turn (one goroutine, the
// caller's, if there is one chunk or one core).
func parallelChunks(chunks int, do func(c int)) {
	workers := min(chunks, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for c := range chunks {
			do(c)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
				do(c)
			}
		})
	}
	wg.Wait()
}

// rowChunks calls do(r0, r1) for the rows [0, rows) of a matrix with cols
// columns, cut into chunks of about rowSumsChunk elements taken by up to
// GOMAXPROCS goroutines; do must touch only its own rows.
func rowChunks(rows, cols int, do func(r0, r1 int)) {
	per := max(1, rowSumsChunk/max(cols, 1))
	chunks := (rows + per - 1) / per
	parallelChunks(chunks, func(c int) { do(c*per, min(rows, (c+1)*per)) })
}
