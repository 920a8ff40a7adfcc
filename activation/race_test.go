//go:build race

package activation

// raceEnabled reports whether the race detector is on (its shadow memory
// makes heap measurements meaningless).
const raceEnabled = true
