//go:build race

package sampling_test

// raceEnabled reports a build with the race detector, under which
// sync.Pool drops a quarter of what is put into it at random, so that the
// allocation count of TestFloat32TransientMemory means nothing there.
const raceEnabled = true
