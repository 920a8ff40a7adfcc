package activation

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
)

// planError returns Σ_i (1 − Σ_{j<k_i} gain_ij), the summed predicted
// error of ranks ks (one compression per demand).
func planError(ds []demand, ks []int) float64 {
	var e float64
	for i, d := range ds {
		e += 1
		for _, g := range d.gain[:ks[i]] {
			e -= g
		}
	}
	return e
}

func planBytes(ds []demand, ks []int) int {
	n := 0
	for i, d := range ds {
		n += d.fixed + ks[i]*d.perRank
	}
	return n
}

// bruteForce returns the least error over every rank vector within budget.
func bruteForce(ds []demand, budget int) float64 { return bruteForceFrom(ds, budget, nil) }

// bruteForceFrom is bruteForce over the rank vectors with k_i ≥ lo[i]
// (lo nil: 1).
func bruteForceFrom(ds []demand, budget int, lo []int) float64 {
	best := math.Inf(1)
	ks := make([]int, len(ds))
	var rec func(i int)
	rec = func(i int) {
		if i == len(ds) {
			if planBytes(ds, ks) <= budget {
				best = math.Min(best, planError(ds, ks))
			}
			return
		}
		k0 := 1
		if lo != nil {
			k0 = lo[i]
		}
		for k := k0; k <= len(ds[i].gain); k++ {
			ks[i] = k
			rec(i + 1)
		}
	}
	rec(0)
	return best
}

// randomDemand returns a layer with a decaying normalised spectrum
// (σ_j² ∝ j^(−a), summing to ≤ 1) of n values, at perRank bytes a rank.
func randomDemand(rng *rand.Rand, n, perRank, fixed int) demand {
	a := 0.5 + 2.5*rng.Float64()
	g := make([]float64, n)
	var sum float64
	for j := range g {
		g[j] = math.Pow(float64(j+1), -a)
		sum += g[j]
	}
	tail := 1 + rng.Float64() // the energy beyond the sketch: 1/(1+tail) is captured
	for j := range g {
		g[j] /= sum * tail
	}
	return demand{gain: g, perRank: perRank, fixed: fixed}
}

// TestAllocateOptimal checks the greedy allocation against the optimum
// found by enumeration: never below it (it is feasible), above it by at
// most the stated Margin, exactly optimal when every layer costs the same
// per rank, and within the budget.
func TestAllocateOptimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		n := 2 + trial%3
		equal := trial%2 == 0
		ds := make([]demand, n)
		for i := range ds {
			per := 100
			if !equal {
				per = 50 + rng.IntN(200)
			}
			ds[i] = randomDemand(rng, 2+rng.IntN(6), per, rng.IntN(3)*40)
		}
		minBytes := planBytes(ds, []int{1, 1, 1, 1}[:n])
		budget := minBytes + rng.IntN(900)
		ks, margin, ok := allocate(ds, budget, 0)
		require.True(t, ok)
		got, opt := planError(ds, ks), bruteForce(ds, budget)
		name := fmt.Sprintf("trial %d: %+v budget %d ranks %v", trial, ds, budget, ks)
		assert.LessOrEqual(t, planBytes(ds, ks), budget, name)
		// Sums of ≤ 8 values of ≤ 1: rounding ≈ 1e-15.
		assert.GreaterOrEqual(t, got, opt-1e-12, name)
		assert.LessOrEqual(t, got-opt, margin+1e-12, name)
		if equal {
			assert.InDelta(t, opt, got, 1e-12, "equal costs: the greedy is optimal; %s", name)
			assert.Zero(t, margin, name)
		}
	}
}

// TestAllocateFloor checks BudgetFloor's allocation: every demand holds
// its floor, min(⌊floor·k_eq⌋, the least rank whose tail is within zero),
// the plan is
// within the budget, and its error is at most Margin above the best
// allocation that holds the floor (by enumeration); floor 0 is the plain
// greedy.
func TestAllocateFloor(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		n := 2 + trial%3
		ds := make([]demand, n)
		for i := range ds {
			ds[i] = randomDemand(rng, 2+rng.IntN(6), 50+rng.IntN(200), rng.IntN(3)*40)
			if rng.IntN(4) == 0 { // exact rank: energy at rounding level beyond rank r
				r := 1 + rng.IntN(len(ds[i].gain))
				ds[i].zero = 1e-6
				for j := r; j < len(ds[i].gain); j++ {
					ds[i].gain[j] = 1e-7 / float64((j+1)*(j+1)) // non-increasing
				}
			}
		}
		budget := planBytes(ds, []int{1, 1, 1, 1}[:n]) + rng.IntN(1500)
		floor := []float64{0, 0.5, 0.8, 1}[trial%4]
		ks, margin, ok := allocate(ds, budget, floor)
		require.True(t, ok)
		keq := equalRank(ds, budget)
		lo := make([]int, n)
		for i, d := range ds {
			// The least r ≤ ⌊floor·k_eq⌋ whose tail is within zero.
			lo[i] = max(1, min(int(floor*float64(keq)), len(d.gain)))
			for r := 1; r < lo[i]; r++ {
				var tail float64
				for _, g := range d.gain[r:] {
					tail += g
				}
				if tail <= d.zero {
					lo[i] = r
					break
				}
			}
		}
		name := fmt.Sprintf("trial %d: floor %g k_eq %d %+v budget %d ranks %v", trial, floor, keq, ds, budget, ks)
		for i := range ks {
			require.GreaterOrEqual(t, ks[i], lo[i], name)
		}
		assert.LessOrEqual(t, planBytes(ds, ks), budget, name)
		got, opt := planError(ds, ks), bruteForceFrom(ds, budget, lo)
		assert.GreaterOrEqual(t, got, opt-1e-12, name)
		assert.LessOrEqual(t, got-opt, margin+1e-12, name)
		if floor == 0 {
			want, wantMargin, _ := allocate(ds, budget, 0)
			assert.Equal(t, want, ks, name)
			assert.Equal(t, wantMargin, margin, name)
		}
	}
	// A steep layer and a flat one at equal cost: the greedy gives the
	// flat one every rank beyond the first (0.1 > 0.05); the equal split
	// of 6 ranks is 3 each, and floor 1 holds it.
	flat := make([]float64, 10)
	for j := range flat {
		flat[j] = 0.1
	}
	ds := []demand{{gain: []float64{0.6, 0.05, 0.03, 0.02}, perRank: 10}, {gain: flat, perRank: 10}}
	ks, _, _ := allocate(ds, 60, 0)
	assert.Equal(t, []int{1, 5}, ks)
	assert.Equal(t, 3, equalRank(ds, 60))
	ks, _, _ = allocate(ds, 60, 1)
	assert.Equal(t, []int{3, 3}, ks)
	ks, _, _ = allocate(ds, 60, 0.5) // ⌊1.5⌋ = 1: no floor beyond rank 1
	assert.Equal(t, []int{1, 5}, ks)
}

// TestAllocateWaterFilling: a known optimum. Two layers of equal cost,
// one of rank 2 (gains 0.6, 0.4, then 0) and one flat (0.1 for 10
// ranks); 6 ranks of budget: both get rank 1, the second rank goes to the
// first layer (0.4 > 0.1), no rank beyond its 2 (gain 0), the rest to the
// flat layer: ranks 2 and 4, error 0 + 0.6.
func TestAllocateWaterFilling(t *testing.T) {
	flat := make([]float64, 10)
	for j := range flat {
		flat[j] = 0.1
	}
	ds := []demand{{gain: []float64{0.6, 0.4, 0, 0}, perRank: 10}, {gain: flat, perRank: 10}}
	ks, margin, ok := allocate(ds, 60, 0)
	require.True(t, ok)
	assert.Equal(t, []int{2, 4}, ks)
	assert.Zero(t, margin)
	assert.InDelta(t, 0.6, planError(ds, ks), 1e-15)
	_, _, ok = allocate(ds, 19, 0)
	assert.False(t, ok, "rank 1 everywhere takes 20 bytes")
}

// spectrumMatrix returns an L×d activation with singular values
// σ_j = j^(−a)·scale and incoherent singular vectors.
func spectrumMatrix(L, d int, a, scale float64, seed uint64) *mat.Dense {
	s := make([]float64, min(L, d))
	for j := range s {
		s[j] = scale * math.Pow(float64(j+1), -a)
	}
	return testmat.Incoherent(L, d, s, seed)
}

// budgetLayers are the shapes of a step: tall activations of two widths,
// one of them compressed twice per step, and a wide one.
var budgetLayers = []struct {
	name string
	L, d int
}{{"a", 256, 32}, {"b", 256, 64}, {"a", 256, 32}, {"c", 48, 96}}

// runSteps runs steps steps of compressing budgetLayers (spectra varying
// per step), checking after every Compress and Release that the
// reserved and the stored bytes are within the budget, and returns the
// reconstructions of the last step and the plans.
func runSteps(t *testing.T, cfg Config, steps int) ([]*mat.Dense, []Plan) {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	defer c.Close()
	budget := cfg.Rank.budget
	check := func(when string) {
		c.mu.Lock()
		used := c.budget.used
		c.mu.Unlock()
		st := c.Stats()
		require.LessOrEqual(t, used, budget, "reserved bytes %s", when)
		require.LessOrEqual(t, st.Total.Live, used, "stored bytes %s are reserved", when)
		require.LessOrEqual(t, st.Total.Peak, budget, "peak %s", when)
	}
	var plans []Plan
	var recs []*mat.Dense
	for step := range steps {
		var saved []*Saved
		for i, l := range budgetLayers {
			a := 0.3 + 1.5*math.Abs(math.Sin(float64(3*step+i)))
			x := spectrumMatrix(l.L, l.d, a, 1+float64(i), uint64(100*step+i))
			s, err := c.Compress(l.name, testmat.To32(x))
			require.NoError(t, err)
			saved = append(saved, s)
			check(fmt.Sprintf("after compressing %s in step %d", l.name, step))
		}
		require.NoError(t, c.Join())
		check(fmt.Sprintf("after Join %d", step))
		p := c.Plan()
		plans = append(plans, p)
		require.LessOrEqual(t, p.Bytes, budget)
		recs = recs[:0]
		for _, s := range saved {
			var r mat.Dense
			require.NoError(t, s.Reconstruct(&r))
			recs = append(recs, &r)
			require.Equal(t, s.want.charge, s.Bytes(), "the reservation is the storage")
			require.NoError(t, s.Release())
			check(fmt.Sprintf("after a release in step %d", step))
		}
	}
	assert.Zero(t, c.Stats().Total.Live)
	assert.Zero(t, c.Stats().Total.BudgetCuts, "the same layers every step, released: the plans fit")
	c.mu.Lock()
	assert.Zero(t, c.budget.used, "every reservation returned")
	c.mu.Unlock()
	return recs, plans
}

// TestBudgetTight: a budget a few bytes above rank 1 of every activation
// of a step, with residuals of different widths (fixed costs that differ
// by layer): no Compress fails in the calibration step or after, and the
// spare bytes go to ranks that fit (of b, 328 bytes, or twice of c, 152).
func TestBudgetTight(t *testing.T) {
	cfg := Config{Rank: Budget(1), FactorBits: 8, ResidualBits: 4, ResidualBlock: 16, Seed: 1}
	rank1 := 0
	for _, l := range budgetLayers {
		rank1 += cfg.StoredBytes(l.L, l.d, 1)
	}
	spare := cfg.factorBytes(256, 64, 1) // one more rank of b
	cfg.Rank = Budget(rank1 + spare)
	_, plans := runSteps(t, cfg, 3)
	for _, p := range plans {
		assert.Greater(t, p.Bytes, rank1, "step %d", p.Step)
		assert.LessOrEqual(t, p.Bytes, rank1+spare, "step %d", p.Step)
		assert.Less(t, rank1+spare-p.Bytes, cfg.factorBytes(48, 96, 1), "step %d: no rank of the cheapest layer fits in what is left", p.Step)
	}
}

// TestBudgetNeverExceeded: over many steps of varying spectra, for every
// method and storage, synchronously and with workers, neither the
// reserved nor the stored bytes ever exceed the budget; the asynchronous
// run gives the same plans and factors (deterministic for a seed).
func TestBudgetNeverExceeded(t *testing.T) {
	const budget = 40 << 10
	for _, tc := range []Config{
		{Method: RowSampling},
		{Method: Gaussian, Precision: lowrank.Float32},
		{Method: ExactSVD},
		{Method: RowSampling, FactorBits: 8},
		{Method: RowSampling, ResidualBits: 4, ResidualBlock: 32},
	} {
		cfg := tc
		cfg.Rank, cfg.Seed = Budget(budget), 7
		name := fmt.Sprintf("%v bits %d residual %d", cfg.Method, cfg.FactorBits, cfg.ResidualBits)
		steps := 12
		if cfg.Method == ExactSVD {
			steps = 4
		}
		syncRec, syncPlans := runSteps(t, cfg, steps)
		cfg.Workers = 2
		asyncRec, asyncPlans := runSteps(t, cfg, steps)
		assert.Equal(t, syncPlans, asyncPlans, name)
		for i := range syncRec {
			assert.True(t, mat.Equal(syncRec[i], asyncRec[i]), "%s: layer %d", name, i)
		}
		last := syncPlans[len(syncPlans)-1]
		assert.Equal(t, steps, last.Step, name)
		assert.Len(t, last.Layers, 3, "%s: a, b, c", name)
		assert.Equal(t, 2, last.Layers[0].Count, name)
		// The plan fills the budget up to less than one rank of the
		// cheapest layer, unless every layer is at its sketch width.
		full := true
		for _, l := range last.Layers {
			full = full && l.Rank >= l.Width
		}
		if !full {
			assert.Greater(t, last.Bytes, budget-2*(256+64)*2-2*(256+32)*2, name)
		}
		t.Logf("%s: plan %+v", name, last)
	}
}

// TestBudgetAllocates: two layers of the same shape, one of exact rank 3
// and one with a slowly decaying spectrum. The first step is the
// calibration step (rank 1 each); then the plan gives the first its 3
// ranks (nothing is gained beyond) and the second the rest, and the
// measured errors fall.
func TestBudgetAllocates(t *testing.T) {
	const L, d = 300, 40
	per := (L + d) * 2 // bf16 bytes per rank
	c, err := New(Config{Method: ExactSVD, Rank: Budget(20*per + 5), MeasureError: true})
	require.NoError(t, err)
	low := testmat.Incoherent(L, d, testmat.RankPlusNoise(d, 3, 0), 1)
	slow := spectrumMatrix(L, d, 0.5, 1, 2)
	var errs [2][2]float64
	for step := range 2 {
		a, err := c.Compress("low", low)
		require.NoError(t, err)
		b, err := c.Compress("slow", slow)
		require.NoError(t, err)
		if step == 0 {
			assert.Equal(t, 1, a.Rank(), "calibration: rank 1")
			assert.Equal(t, 1, b.Rank())
			assert.Zero(t, c.Plan().Step)
		} else {
			assert.Equal(t, 3, a.Rank())
			assert.Equal(t, 17, b.Rank())
		}
		errs[step] = [2]float64{a.RelError(), b.RelError()}
		require.NoError(t, c.Join())
		require.NoError(t, a.Release())
		require.NoError(t, b.Release())
	}
	p := c.Plan()
	assert.Equal(t, 2, p.Step)
	assert.Equal(t, 20*per, p.Bytes)
	// With the exact spectrum and equal costs the plan is optimal.
	assert.Zero(t, p.Margin)
	// Rank 3 reproduces the rank-3 layer up to bf16 rounding of the
	// factors, u·(1+√k) ≈ 0.01.
	assert.Less(t, errs[1][0], 0.01)
	assert.Less(t, errs[1][1], errs[0][1])
	assert.Equal(t, 0, c.Stats().Total.BudgetCuts)
}

// TestBudgetFloorPlans: TestBudgetAllocates's layers under BudgetFloor(·,
// 1): the equal split of 20 ranks is 10 each, but the rank-3 layer gains
// nothing beyond its 3, so its floor is 3 and the plan equals Budget's;
// with a steep layer instead (σ_j = j^−1.5), which Budget gives few ranks,
// the floor holds it at 10. The floor never costs the budget.
func TestBudgetFloorPlans(t *testing.T) {
	const L, d = 300, 40
	per := (L + d) * 2
	low := testmat.Incoherent(L, d, testmat.RankPlusNoise(d, 3, 0), 1)
	steep := spectrumMatrix(L, d, 1.5, 1, 3)
	slow := spectrumMatrix(L, d, 0.5, 1, 2)
	ranks := func(rank RankPolicy, first *mat.Dense) [2]int {
		c, err := New(Config{Method: ExactSVD, Rank: rank})
		require.NoError(t, err)
		defer c.Close()
		var ks [2]int
		for range 2 {
			a, err := c.Compress("first", first)
			require.NoError(t, err)
			b, err := c.Compress("slow", slow)
			require.NoError(t, err)
			ks = [2]int{a.Rank(), b.Rank()}
			require.NoError(t, c.Join())
			require.NoError(t, a.Release())
			require.NoError(t, b.Release())
		}
		p := c.Plan()
		assert.LessOrEqual(t, p.Bytes, 20*per+5, rank.String())
		return ks
	}
	assert.Equal(t, [2]int{3, 17}, ranks(BudgetFloor(20*per+5, 1), low))
	plain := ranks(Budget(20*per+5), steep)
	assert.Less(t, plain[0], 10, "Budget gives the steep layer less than the equal split")
	assert.Equal(t, [2]int{10, 10}, ranks(BudgetFloor(20*per+5, 1), steep))
	got := ranks(BudgetFloor(20*per+5, 0.5), steep)
	assert.GreaterOrEqual(t, got[0], 5)
	assert.Equal(t, 20, got[0]+got[1])
	_, err := New(Config{Rank: BudgetFloor(1000, 1.5)})
	assert.ErrorIs(t, err, lowrank.ErrOption)
	_, err = New(Config{Rank: BudgetFloor(1000, math.NaN())})
	assert.ErrorIs(t, err, lowrank.ErrOption)
}

// TestBudgetTooSmall: when not even rank 1 fits, Compress says so, naming
// the layer and the bytes; a rank that does not fit is cut.
func TestBudgetTooSmall(t *testing.T) {
	const L, d = 200, 30
	rank1 := (L + d) * 2
	x := spectrumMatrix(L, d, 1, 1, 3)
	c, err := New(Config{Rank: Budget(rank1 - 1)})
	require.NoError(t, err)
	_, err = c.Compress("blk0.fc1", x)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrBudget)
	var le *LayerError
	require.True(t, errors.As(err, &le))
	assert.Equal(t, "blk0.fc1", le.Layer)
	assert.Contains(t, err.Error(), fmt.Sprintf("takes %d bytes", rank1))
	assert.Contains(t, err.Error(), fmt.Sprintf("%d of the %d-byte budget are left", rank1-1, rank1-1))
	assert.Zero(t, c.Stats().Total.Live)

	// Room for 5 ranks: the calibration step stores rank 1, the plan
	// gives the one layer all 5; a second handle held across the step
	// finds them taken, and the planned rank is cut to what is left.
	c, err = New(Config{Rank: Budget(5*rank1 + 10)})
	require.NoError(t, err)
	s, err := c.Compress("a", x)
	require.NoError(t, err)
	assert.Equal(t, 1, s.Rank())
	require.NoError(t, c.Join())
	assert.Equal(t, 5, c.Plan().Layers[0].Rank)
	held := s
	s, err = c.Compress("a", x)
	require.NoError(t, err)
	assert.Equal(t, 4, s.Rank(), "cut: one rank is held by the last step's handle")
	assert.Equal(t, 1, c.Stats().Total.BudgetCuts)
	_, err = c.Compress("a", x)
	assert.ErrorIs(t, err, ErrBudget, "the budget is full")
	assert.Equal(t, 5*rank1, c.Stats().Total.Live)
	require.NoError(t, held.Release())
	require.NoError(t, s.Release())

	for _, cfg := range []Config{{Rank: Budget(0)}, {Method: Uncompressed, Rank: Budget(100)}} {
		_, err := New(cfg)
		assert.ErrorIs(t, err, lowrank.ErrOption, "%+v", cfg)
	}
}

// TestBudgetTiny: an activation whose rank-1 factors would be no smaller
// than itself (1×n) is stored as it is, within the budget.
func TestBudgetTiny(t *testing.T) {
	x := mat.NewDense(1, 8, []float64{1, 2, 3, 4, 5, 6, 7, 8})
	c, err := New(Config{Rank: Budget(16)})
	require.NoError(t, err)
	s, err := c.Compress("head", x)
	require.NoError(t, err)
	assert.Equal(t, 16, s.Bytes())
	assert.False(t, s.Compressed())
	_, err = c.Compress("head", x)
	assert.ErrorIs(t, err, ErrBudget)
}

// TestBudgetShapeChange: a plan made at one shape, then a step at twice
// the rows (a larger batch): each layer gets the rank its planned bytes
// buy at the new shape, so every compression fits and none is cut.
// Before, the first layer took its planned rank at twice the bytes, the
// second was cut to what was left and the third failed with ErrBudget.
func TestBudgetShapeChange(t *testing.T) {
	const L, d = 200, 48
	cfg := Config{Method: ExactSVD, Seed: 1}
	per := cfg.factorBytes(L, d, 1)
	budget := 3 * 12 * per // rank 12 for each of three equal layers
	cfg.Rank = Budget(budget)
	c, err := New(cfg)
	require.NoError(t, err)
	defer c.Close()
	layers := []string{"a", "b", "c"}
	for step, rows := range []int{L, L, 2 * L} {
		plan := c.Plan() // made at the last Join, from the step before
		var saved []*Saved
		for i, name := range layers {
			x := spectrumMatrix(rows, d, 0.5, 1, uint64(10*step+i))
			s, err := c.Compress(name, testmat.To32(x))
			require.NoError(t, err, "step %d layer %s", step, name)
			saved = append(saved, s)
		}
		require.NoError(t, c.Join())
		total := 0
		for i, s := range saved {
			total += s.Bytes()
			if step == 2 {
				planned := plan.Layers[i]
				assert.LessOrEqual(t, s.Bytes(), planned.Bytes, "layer %s: within its planned bytes", layers[i])
				assert.Less(t, s.Rank(), planned.Rank, "layer %s: a smaller rank at twice the rows", layers[i])
			}
			require.NoError(t, s.Release())
		}
		assert.LessOrEqual(t, total, budget, "step %d", step)
	}
	assert.Zero(t, c.Stats().Total.BudgetCuts)
}
