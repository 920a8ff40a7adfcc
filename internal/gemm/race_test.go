//go:build race

package gemm

// raceEnabled reports a build with the race detector, under which
// sync.Pool drops a quarter of what is put into it at random, so that the
// allocation counts of TestGemmNoAllocs and TestSgemmNoAllocs mean
// nothing there.
const raceEnabled = true
