package activation

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/loract/loract/gpu"
	"github.com/loract/loract/lowrank"
)

// TestStoredRank checks, without a device (a zero *gpu.Backend serves
// only as the configuration's type), the rank a device stores factors at
// and the byte arithmetic built on it: k rounded up to a multiple of 8
// where that adds at most an eighth of the bytes, else k, and k on the host
// and for int8 factors; StoredBytes of the stored rank; and fitRank the
// largest rank whose stored bytes fit, against a search over every rank,
// for budgets around each rank's bytes.
func TestStoredRank(t *testing.T) {
	dev := Config{Backend: &gpu.Backend{}, Precision: lowrank.BFloat16}
	host := Config{Precision: lowrank.BFloat16}
	int8 := Config{Backend: &gpu.Backend{}, FactorBits: 8}
	// 7 → 8 would add 1 > 7/8; 20 → 24 adds 4 > 20/8; 49 → 56 adds 7 >
	// 49/8; 55 → 56 adds 1; 57 → 64 adds 7 ≤ 57/8.
	for _, c := range []struct{ k, want int }{
		{1, 1}, {4, 4}, {7, 7}, {8, 8}, {9, 9}, {20, 20}, {49, 49}, {55, 56}, {56, 56}, {57, 64}, {63, 64},
		{64, 64}, {115, 120}, {116, 120}, {231, 232}, {232, 232},
	} {
		assert.Equal(t, c.want, dev.storedRank(c.k), "device, rank %d", c.k)
		assert.Equal(t, c.k, host.storedRank(c.k), "host, rank %d", c.k)
		assert.Equal(t, c.k, int8.storedRank(c.k), "int8, rank %d", c.k)
	}
	const m, n = 12544, 1536
	for k := 1; k <= 300; k++ {
		s := dev.storedRank(k)
		assert.True(t, s == k || s%factorPad == 0, "rank %d stored at %d", k, s)
		assert.LessOrEqual(t, 8*(s-k), k, "rank %d stored at %d: more than an eighth added", k, s)
		assert.Equal(t, s*(m+n)*2, dev.StoredBytes(m, n, k), "rank %d", k)
	}
	for _, cfg := range []Config{dev, host, int8} {
		rb := cfg.rankBytes(m, n)
		for k := 1; k <= 300; k++ {
			for _, bytes := range []int{cfg.factorBytes(m, n, k) - 1, cfg.factorBytes(m, n, k), cfg.factorBytes(m, n, k) + rb - 1} {
				want := 0
				for j := 1; j <= 310; j++ {
					if cfg.factorBytes(m, n, j) <= bytes {
						want = j
					}
				}
				assert.Equal(t, want, cfg.fitRank(m, n, bytes), "backend %T, int8 %v: %d bytes", cfg.Backend, cfg.FactorBits == 8, bytes)
			}
		}
	}
}
