package activation

import (
	"container/heap"
	"fmt"
	"math"
)

// Plan is the allocation of a Budget policy for one step: the rank given
// to each layer, what it is predicted to cost and to err, and how far the
// allocation can be from the best one (Compressor.Plan).
//
// The problem: minimise Σ_i n_i·e_i(k_i) subject to
// Σ_i n_i·bytes_i(k_i) ≤ budget and 1 ≤ k_i ≤ ℓ_i, where layer i is
// compressed n_i times per step, e_i(k) = 1 − Σ_{j≤k} λ_ij/‖X_i‖_F² is
// the predicted squared relative error at rank k (λ_ij the squared
// singular values of its last step's sketch), bytes_i(k) = a_i + b_i·k its
// storage (on a device with factors at Precision, whose rank is stored
// rounded up to a multiple of 8, a bound on it: a_i holds 7 ranks for the
// padding) and ℓ_i the width of its sketch. Since λ_ij is non-increasing in
// j, each layer's error is convex in k, and taking the next rank of the
// layer with the largest error decrease per byte, λ_ij/(‖X_i‖²·b_i), as
// long as it fits solves the relaxation with k_i real exactly up to the
// first rank that did not fit (the fractional knapsack; water-filling on
// the tail energies): the relaxation's optimum is at most that rank's
// fractional gain below the greedy prefix. Margin is that gain minus what
// the ranks taken after it gained: the error of the plan exceeds the
// optimum over integer ranks by at most Margin. It is 0 when every layer
// costs the same per rank: every allocation then holds at most the same
// number of ranks beyond rank 1, and the greedy takes the largest gains
// there are (each layer's in order, by convexity), so it is optimal.
type Plan struct {
	// Budget is the budget in bytes; Step counts the plans made (0: the
	// first step's equal shares).
	Budget, Step int
	// Layers are the planned layers, in order of first compression.
	Layers []PlannedLayer
	// Bytes is the planned storage of a step, Σ n_i·bytes_i(k_i) ≤ Budget.
	Bytes int
	// Error is the predicted Σ n_i·e_i(k_i), Margin the bound on its
	// distance to the optimum.
	Error, Margin float64
}

// PlannedLayer is one layer of a Plan.
type PlannedLayer struct {
	Layer string
	// Rank is the planned k, Width the width of the sketch whose
	// spectrum the plan used (the largest rank it could give).
	Rank, Width int
	// Count is the number of compressions of the layer in the measured
	// step, Bytes their planned bytes and Error their predicted summed
	// squared relative error.
	Count, Bytes int
	Error        float64
}

// demand is one layer's input to allocate: gain[j] is the decrease of the
// summed squared relative error from rank j to j+1 (non-increasing, over
// the layer's compressions of a step), perRank the bytes of one more rank
// and fixed those of rank 0 (the residual, and a device's padding of the
// rank at its largest), both summed over the compressions; ranks are
// 1 ≤ k ≤ len(gain).
type demand struct {
	gain           []float64
	perRank, fixed int
	// zero is the energy below which ranks add nothing for a floor: the
	// storage's rounding, u² of the factors' precision per compression
	// (ranks whose summed energy is below it change the reconstruction by
	// less than the factors' rounding).
	zero float64
}

// allocate returns the ranks of the greedy plan for demands ds within
// budget and the margin of Plan. ok is false if rank 1 everywhere does not
// fit; the ranks are then all 1. A gain is taken only if positive; ties go
// to the earlier demand. A floor > 0 first gives every demand
// min(⌊floor·k_eq⌋, r) ranks (at least 1), r the least rank whose tail
// Σ_{j>r} gain_j is at most the demand's zero, k_eq
// the equal split's rank (equalRank); the greedy allocates the rest, and
// the margin is then against the best allocation that holds the floor.
func allocate(ds []demand, budget int, floor float64) (ks []int, margin float64, ok bool) {
	ks = make([]int, len(ds))
	left := budget
	for i, d := range ds {
		ks[i] = 1
		left -= d.fixed + d.perRank
	}
	if left < 0 {
		return ks, 0, false
	}
	if floor > 0 {
		// k_f ≤ k_eq, so the floors fit: Σ a_i + min(k_f, ℓ_i)·b_i is at
		// most the equal split's bytes.
		kf := max(1, int(floor*float64(equalRank(ds, budget))))
		for i, d := range ds {
			// The floor stops where the sketch's energy beyond it is at
			// most zero: the smallest f with Σ_{j>f} gain_j ≤ zero.
			f, tail := min(kf, len(d.gain)), 0.0
			for _, g := range d.gain[f:] {
				tail += g
			}
			for f > 1 && tail+d.gain[f-1] <= d.zero {
				f--
				tail += d.gain[f]
			}
			left -= (f - 1) * d.perRank
			ks[i] = f
		}
	}
	h := &rankHeap{ds: ds}
	for i, d := range ds {
		if k := ks[i]; k < len(d.gain) && d.gain[k] > 0 {
			h.items = append(h.items, rankItem{i: i, ratio: d.gain[k] / float64(d.perRank)})
		}
	}
	heap.Init(h)
	skipped := false
	var frac, after float64
	for h.Len() > 0 {
		it := heap.Pop(h).(rankItem)
		d := ds[it.i]
		g := d.gain[ks[it.i]]
		if d.perRank > left {
			if !skipped {
				// The relaxation takes left/perRank of this rank.
				skipped, frac = true, g*float64(left)/float64(d.perRank)
			}
			continue // no later rank of this layer fits either
		}
		left -= d.perRank
		ks[it.i]++
		if skipped {
			after += g
		}
		if k := ks[it.i]; k < len(d.gain) && d.gain[k] > 0 {
			heap.Push(h, rankItem{i: it.i, ratio: d.gain[k] / float64(d.perRank)})
		}
	}
	for _, d := range ds {
		if d.perRank != ds[0].perRank {
			return ks, math.Max(0, frac-after), true
		}
	}
	return ks, 0, true
}

// equalRank returns the equal split of budget: the largest k ≥ 1 such
// that every demand at rank min(k, ℓ_i) fits, Σ a_i + min(k, ℓ_i)·b_i ≤
// budget (1 if even rank 1 does not), where ℓ_i = len(gain) caps a
// demand's rank.
func equalRank(ds []demand, budget int) int {
	wmax := 1
	for _, d := range ds {
		wmax = max(wmax, len(d.gain))
	}
	k := 1
	for next := 2; next <= wmax; next++ {
		n := 0
		for _, d := range ds {
			n += d.fixed + min(next, len(d.gain))*d.perRank
		}
		if n > budget {
			break
		}
		k = next
	}
	return k
}

type rankItem struct {
	i     int
	ratio float64
}

// rankHeap is a max-heap on ratio, ties to the smaller index.
type rankHeap struct {
	ds    []demand
	items []rankItem
}

func (h *rankHeap) Len() int { return len(h.items) }
func (h *rankHeap) Less(a, b int) bool {
	x, y := h.items[a], h.items[b]
	if x.ratio != y.ratio {
		return x.ratio > y.ratio
	}
	return x.i < y.i
}
func (h *rankHeap) Swap(a, b int) { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *rankHeap) Push(x any)    { h.items = append(h.items, x.(rankItem)) }
func (h *rankHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return it
}

// measure is what the compressions of one layer in a step measured: the
// summed normalised gains (gain[j] = λ_{j+1}/‖X‖², over the compressions,
// truncated to the narrowest sketch), and the bytes per rank and at rank
// 0, summed.
type measure struct {
	gain           []float64
	count          int
	perRank, fixed int
	width          int
}

// budgetState is the Compressor's state under a Budget policy; guarded by
// the Compressor's mu.
type budgetState struct {
	limit int
	floor float64 // BudgetFloor's floor (0 for Budget)
	// used is the bytes reserved by live handles and compressions under
	// way (each reserves what its storage will take, at Compress).
	used int
	// ranks is the plan of the current step, by layer.
	ranks map[string]plannedRank
	plan  Plan
	// step holds the compressions since the last Join in call order, so
	// that the plan does not depend on the order in which asynchronous
	// compressions finish.
	step []*Saved
}

func newBudget(r RankPolicy) *budgetState {
	return &budgetState{limit: r.budget, floor: r.floor, ranks: map[string]plannedRank{}, plan: Plan{Budget: r.budget}}
}

// plannedRank is a layer's share of a plan: its rank, and the bytes one
// of its compressions takes at the shapes the plan was made from (the
// layer's planned bytes over its compressions of the measured step).
type plannedRank struct {
	k, bytes int
}

// breakEven returns the largest k ≤ min(m, n) with k·(m+n) < m·n: the
// largest rank whose factors hold fewer elements than X (0 if none).
func breakEven(m, n int) int {
	k := (m*n - 1) / (m + n)
	return min(k, m, n)
}

// want is the rank, sketch width and reservation of one compression under
// a Budget policy; the zero value means no budget.
type want struct {
	k, width int
	charge   int
	dense    bool // X stored as it is (not even rank 1 of factors is smaller)
}

// reserve returns the rank and sketch width for compressing an m×n
// activation of layer under the plan, cut to the bytes left, and reserves
// its bytes; or an error wrapping ErrBudget. c.mu must be held.
func (c *Compressor) reserve(layer string, m, n int) (want, error) {
	b := c.budget
	cfg := &c.cfg
	left := b.limit - b.used
	kmax := breakEven(m, n)
	if kmax < 1 {
		// Factors of rank 1 hold at least as many elements as X: it is
		// stored as it is, if it fits.
		w := want{k: min(m, n), dense: true, charge: cfg.denseBytes(m, n)}
		if w.charge > left {
			return want{}, fmt.Errorf("%w: the %d×%d activation is stored as it is, %d bytes, and %d of the %d-byte budget are left",
				ErrBudget, m, n, w.charge, left, b.limit)
		}
		b.used += w.charge
		return w, nil
	}
	fixed := cfg.residualBytes(m, n)
	pl, planned := b.ranks[layer]
	k := 1 // calibration: the least bytes, the widest sketch
	if planned {
		k = pl.k
		// At another shape than the plan's (a larger batch) a rank costs
		// more: the layer gets at most the rank its planned bytes buy, so
		// that a step of the planned layers stays within the plan's bytes
		// instead of the first layers taking the later ones' share.
		if fixed+cfg.factorBytes(m, n, k) > pl.bytes {
			k = max(1, cfg.fitRank(m, n, pl.bytes-fixed))
		}
	}
	k = min(k, kmax)
	fit := cfg.fitRank(m, n, left-fixed)
	if fit < 1 {
		return want{}, fmt.Errorf("%w: rank 1 of the %d×%d activation takes %d bytes, and %d of the %d-byte budget are left",
			ErrBudget, m, n, fixed+cfg.factorBytes(m, n, 1), left, b.limit)
	}
	if k > fit {
		k = fit
		c.layer(layer).BudgetCuts++
		c.total.BudgetCuts++
	}
	w := want{k: k, width: kmax, charge: fixed + cfg.factorBytes(m, n, k)}
	if cfg.Method != ExactSVD && planned {
		w.width = min(kmax, 2*k+8)
	}
	b.used += w.charge
	return w, nil
}

// replan makes the next step's plan from the step's measurements, if there
// are any, and starts a new step. c.mu must be held.
func (c *Compressor) replan() {
	b := c.budget
	measured := map[string]*measure{}
	var order []string
	for _, s := range b.step {
		if s.err != nil || s.gains == nil {
			continue
		}
		m, ok := measured[s.layer]
		if !ok {
			m = &measure{gain: append([]float64(nil), s.gains...), width: len(s.gains)}
			measured[s.layer] = m
			order = append(order, s.layer)
		} else {
			if len(s.gains) < len(m.gain) {
				m.gain, m.width = m.gain[:len(s.gains)], len(s.gains)
			}
			for j := range m.gain {
				m.gain[j] += s.gains[j]
			}
		}
		m.count++
		// A device's factors at Precision are stored with their rank
		// rounded up to a multiple of 8 (Config.storedRank), a cost that
		// is not linear in k: the plan charges each compression the most
		// it can add, factorPad − 1 ranks, so that its ranks' storage
		// stays within the plan's bytes (0 on the host and for int8).
		pad := 0
		if c.cfg.pads() {
			pad = (factorPad - 1) * c.cfg.rankBytes(s.rows, s.cols)
		}
		m.fixed += c.cfg.residualBytes(s.rows, s.cols) + pad
		m.perRank += c.cfg.rankBytes(s.rows, s.cols)
	}
	clear(b.step)
	b.step = b.step[:0]
	if len(order) == 0 {
		return
	}
	// The factors' rounding, for a floor's zero.
	u := c.cfg.Precision.UnitRoundoff()
	if c.cfg.FactorBits == 8 {
		u = 1.0 / 254 // half a step of the int8 scale max|·|/127
	}
	ds := make([]demand, len(order))
	for i, name := range order {
		m := measured[name]
		// The spectrum of a sketch is non-increasing; a running minimum
		// (and no negative value) keeps it so against rounding.
		g := m.gain
		for j := range g {
			g[j] = math.Max(0, g[j])
			if j > 0 {
				g[j] = math.Min(g[j], g[j-1])
			}
		}
		ds[i] = demand{gain: g, perRank: m.perRank, fixed: m.fixed, zero: float64(m.count) * u * u}
	}
	ks, margin, _ := allocate(ds, b.limit, b.floor)
	p := Plan{Budget: b.limit, Step: b.plan.Step + 1, Margin: margin}
	clear(b.ranks)
	for i, name := range order {
		m, d := measured[name], ds[i]
		var kept float64
		for _, g := range d.gain[:ks[i]] {
			kept += g
		}
		pl := PlannedLayer{Layer: name, Rank: ks[i], Width: m.width, Count: m.count,
			Bytes: d.fixed + ks[i]*d.perRank, Error: math.Max(0, float64(m.count)-kept)}
		p.Layers = append(p.Layers, pl)
		p.Bytes += pl.Bytes
		p.Error += pl.Error
		b.ranks[name] = plannedRank{k: ks[i], bytes: pl.Bytes / m.count}
	}
	b.plan = p
}

// Plan returns the allocation of a Budget policy for the current step
// (Step 0 before the first Join with measurements: the calibration step,
// rank 1 everywhere, with no layers listed), or the zero Plan for another
// policy.
func (c *Compressor) Plan() Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.budget == nil {
		return Plan{}
	}
	p := c.budget.plan
	p.Layers = append([]PlannedLayer(nil), p.Layers...)
	return p
}
