package sampling_test

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/sampling"
)

// counting is the CPU backend with lowrank.Batcher implemented by its
// single operations, counting the batched calls and their sizes: it makes
// QBBatchTo take its batched path on the CPU.
type counting struct {
	cpu.Backend
	gathers, qrs, norms, muls, copies []int
}

func (c *counting) GatherNormBatch(dst, a []lowrank.Matrix, trans bool, idx [][]int, sumSq, maxAbs []float64) error {
	c.gathers = append(c.gathers, len(dst))
	for i := range dst {
		var err error
		if sumSq[i], maxAbs[i], err = c.GatherNorm(dst[i], a[i], trans, idx[i]); err != nil {
			return err
		}
	}
	return nil
}

func (c *counting) QRBatch(a []lowrank.Matrix) error {
	c.qrs = append(c.qrs, len(a))
	for _, m := range a {
		if err := c.QR(m, nil); err != nil {
			return err
		}
	}
	return nil
}

func (c *counting) MulBatch(cs []lowrank.Matrix, alpha float64, a []lowrank.Matrix, ta bool, b []lowrank.Matrix, tb bool, beta float64) error {
	c.muls = append(c.muls, len(cs))
	for i := range cs {
		if err := c.Mul(cs[i], alpha, a[i], ta, b[i], tb, beta); err != nil {
			return err
		}
	}
	return nil
}

func (c *counting) CopyBatch(dst, src []lowrank.Matrix) error {
	c.copies = append(c.copies, len(dst))
	for i := range dst {
		if err := c.Copy(dst[i], src[i]); err != nil {
			return err
		}
	}
	return nil
}

func (c *counting) SquaredNormBatch(m []lowrank.Matrix, scale float64, sumSq, maxAbs []float64) error {
	c.norms = append(c.norms, len(m))
	for i, x := range m {
		var err error
		if sumSq[i], maxAbs[i], err = c.SquaredNorm(x, scale); err != nil {
			return err
		}
	}
	return nil
}

// TestQBBatchMatchesQBTo checks that QBBatchTo gives every item exactly
// QBTo's factors (the same draw and the same operations), on the plain CPU
// backend (no Batcher: the skeleton's loop) and on one with a Batcher,
// for a batch that mixes what is batched with what is not: another
// orientation, other shapes of the same one (batched),
// the length-squared sampler, oversampling, a tolerance, the spectrum, a
// power iteration, an input of extreme magnitude (scaled by QBTo) and
// given Indices; and that the batched calls group what they should.
func TestQBBatchMatchesQBTo(t *testing.T) {
	const m, n, k = 120, 40, 6
	in := func(seed uint64, scale float64) *mat.Dense {
		a := testmat.Haar(m, n, testmat.ActivationLike(n), seed)
		a.Scale(scale, a)
		return a
	}
	type item struct {
		a    *mat.Dense
		opts *sampling.Options
	}
	items := []item{
		{in(1, 1), &sampling.Options{Seed: 1}},
		{in(2, 1), &sampling.Options{Seed: 2}},
		{in(3, 1), nil},
		{testmat.Haar(n, m, testmat.ActivationLike(n), 4), &sampling.Options{Seed: 4}}, // transposed shape
		{in(5, 1), &sampling.Options{Seed: 5, Sampler: sampling.LengthSquared}},
		{in(6, 1), &sampling.Options{Seed: 6, Oversample: 4}},
		{in(7, 1), &sampling.Options{Seed: 7, Tolerance: 0.5}},
		{in(8, 1), &sampling.Options{Seed: 8, Spectrum: true}},
		{in(9, 1), &sampling.Options{Seed: 9, PowerIters: 1}},
		{in(10, 0x1p40), &sampling.Options{Seed: 10}}, // QBTo scales it
		{in(11, 1), &sampling.Options{Indices: []int{5, 1, 30, 2, 7, 39}}},
		{in(12, 1), &sampling.Options{Seed: 12}},
		// Other shapes of the same orientation: batched with the rest.
		{testmat.Haar(200, n, testmat.ActivationLike(n), 13), &sampling.Options{Seed: 13}},
		{testmat.Haar(m, 50, testmat.ActivationLike(50), 14), &sampling.Options{Seed: 14}},
		{in(15, 1), &sampling.Options{Seed: 15}},
	}
	for _, be := range []lowrank.Backend{cpu.Backend{}, &counting{}} {
		d := sampling.NewDecomposer(be)
		dst := make([]*lowrank.Factors, len(items))
		as := make([]lowrank.Matrix, len(items))
		opts := make([]*sampling.Options, len(items))
		for i, it := range items {
			dst[i], as[i], opts[i] = new(lowrank.Factors), it.a, it.opts
		}
		require.NoError(t, d.QBBatchTo(dst, as, k, opts))
		for i, it := range items {
			var want lowrank.Factors
			require.NoError(t, sampling.NewDecomposer(cpu.Backend{}).QBTo(&want, it.a, k, it.opts), "item %d", i)
			got := dst[i]
			assert.True(t, mat.Equal(want.Q.(mat.Matrix), got.Q.(mat.Matrix)), "item %d: Q", i)
			assert.True(t, mat.Equal(want.B.(mat.Matrix), got.B.(mat.Matrix)), "item %d: B", i)
			assert.Equal(t, [4]float64{want.SquaredNormA, want.SquaredNormB, want.NormScale, float64(want.Rank())},
				[4]float64{got.SquaredNormA, got.SquaredNormB, got.NormScale, float64(got.Rank())}, "item %d: norms", i)
			assert.Equal(t, want.Trans, got.Trans, "item %d", i)
			assert.Equal(t, want.Spectrum, got.Spectrum, "item %d", i)
		}
		if c, ok := be.(*counting); ok {
			// Batched together: items 0, 1, 2, 6 (its tolerance does not
			// change the sketch), 7, 9 (it leaves after the read), 10,
			// 11 and the other shapes 12 and 13, and 14; the plain QBs
			// among them (not 6 and 7, not 9) have their ‖B‖² read
			// together.
			assert.Equal(t, []int{11}, c.gathers, "GatherNormBatch sizes")
			assert.Equal(t, []int{10}, c.qrs, "QRBatch sizes")
			assert.Equal(t, []int{8}, c.norms, "SquaredNormBatch sizes")
			assert.Equal(t, []int{8}, c.copies, "CopyBatch sizes")
			assert.Equal(t, []int{10, 8}, c.muls, "MulBatch sizes: the sketches, then B")
		}
	}
}

// transposing is counting with lowrank.Transposer: its "view" of aᵀ is a
// copy (the CPU backend has no transposed views), which the batch reads as
// it would read a view's storage; the calls are counted.
type transposing struct {
	counting
	transposes int
}

func (c *transposing) Transpose(a lowrank.Matrix) (lowrank.Matrix, bool) {
	d, ok := a.(*mat.Dense)
	if !ok {
		return nil, false
	}
	c.transposes++
	return mat.DenseCopyOf(d.T()), true
}

// TestQBBatchFloat32 checks that QBBatchTo gives float32 inputs large
// enough for the CPU's CholeskyQR (P·ℓ² ≥ 2²²) exactly QBTo's factors:
// both orthonormalise their sketches to 2⁻²⁴ (skeleton.SketchQR and
// SketchQRBatch), with and without a power iteration.
func TestQBBatchFloat32(t *testing.T) {
	const m, n, k = 1100, 1024, 64
	as := []lowrank.Matrix{
		testmat.To32(testmat.Incoherent(m, n, testmat.PowerLaw(n, 0.5, 0), 21)),
		testmat.To32(testmat.Incoherent(m, n, testmat.PowerLaw(n, 1, 0), 22)),
	}
	for _, q := range []int{0, 1} {
		opts := []*sampling.Options{{Seed: 1, PowerIters: q}, {Seed: 2, PowerIters: q}}
		dst := []*lowrank.Factors{new(lowrank.Factors), new(lowrank.Factors)}
		require.NoError(t, sampling.NewDecomposer(cpu.Backend{}).QBBatchTo(dst, as, k, opts))
		for i, a := range as {
			var want lowrank.Factors
			require.NoError(t, sampling.NewDecomposer(cpu.Backend{}).QBTo(&want, a, k, opts[i]))
			assert.True(t, mat.Equal(want.Q.(mat.Matrix), dst[i].Q.(mat.Matrix)), "q=%d item %d: Q", q, i)
			assert.True(t, mat.Equal(want.B.(mat.Matrix), dst[i].B.(mat.Matrix)), "q=%d item %d: B", q, i)
		}
	}
}

// TestQBBatchTransposed checks that on a lowrank.Transposer an input of
// the other orientation joins the batch through its transpose and still
// gets QBTo's factors: the same Q and B (the same sketch, QR and
// products, read from the stored transpose), the same Trans and rank,
// and ‖A‖_F² summed in another order, so within 2·γ of it (two sums of
// the same m·n squares differ by at most 2·(m·n)·u times the sum).
func TestQBBatchTransposed(t *testing.T) {
	const m, n, k = 120, 40, 6
	as := []lowrank.Matrix{
		testmat.Haar(m, n, testmat.ActivationLike(n), 1),
		testmat.Haar(n, m, testmat.ActivationLike(n), 2), // the other orientation
		testmat.Haar(m, n, testmat.ActivationLike(n), 3),
		testmat.Haar(n, 90, testmat.ActivationLike(n), 4), // the other, another shape
	}
	opts := []*sampling.Options{{Seed: 1}, {Seed: 2}, {Seed: 3}, {Seed: 4}}
	be := &transposing{}
	d := sampling.NewDecomposer(be)
	dst := make([]*lowrank.Factors, len(as))
	for i := range dst {
		dst[i] = new(lowrank.Factors)
	}
	require.NoError(t, d.QBBatchTo(dst, as, k, opts))
	assert.Equal(t, 2, be.transposes, "items 1 and 3 through their transposes")
	assert.Equal(t, []int{4}, be.gathers, "one batch of all four")
	assert.Equal(t, []int{4}, be.qrs)
	assert.Equal(t, []int{4, 4}, be.muls)
	for i, a := range as {
		var want lowrank.Factors
		require.NoError(t, sampling.NewDecomposer(cpu.Backend{}).QBTo(&want, a, k, opts[i]), "item %d", i)
		got := dst[i]
		assert.True(t, mat.Equal(want.Q.(mat.Matrix), got.Q.(mat.Matrix)), "item %d: Q", i)
		assert.True(t, mat.Equal(want.B.(mat.Matrix), got.B.(mat.Matrix)), "item %d: B", i)
		assert.Equal(t, want.Trans, got.Trans, "item %d", i)
		assert.Equal(t, [3]float64{want.SquaredNormB, want.NormScale, float64(want.Rank())},
			[3]float64{got.SquaredNormB, got.NormScale, float64(got.Rank())}, "item %d", i)
		r, c := a.Dims()
		tol := 2 * float64(r*c) * 0x1p-53 * want.SquaredNormA
		assert.InDelta(t, want.SquaredNormA, got.SquaredNormA, tol, "item %d: ‖A‖²", i)
	}
	draw := d.Draw()
	var last lowrank.Factors
	d1 := sampling.NewDecomposer(cpu.Backend{})
	require.NoError(t, d1.QBTo(&last, as[3], k, opts[3]))
	assert.Equal(t, d1.Draw(), draw, "the draw of the last item, in its own orientation")

	// A flipped item with a NaN gets QBTo's error, naming the caller's
	// (row, column), not the transpose's.
	bad := mat.DenseCopyOf(as[1].(*mat.Dense))
	bad.Set(3, 5, math.NaN())
	bad.Set(7, 1, math.NaN())
	as[1] = bad
	err := d.QBBatchTo(dst, as, k, opts)
	var be2 *lowrank.BatchError
	require.ErrorAs(t, err, &be2)
	var f lowrank.Factors
	want := sampling.NewDecomposer(cpu.Backend{}).QBTo(&f, bad, k, opts[1])
	require.Error(t, want)
	assert.Equal(t, want.Error(), be2.Errs[1].Error(), "the flipped item's error is QBTo's")
	for _, i := range []int{0, 2, 3} {
		assert.NoError(t, be2.Errs[i], "item %d", i)
	}
}

// TestQBBatchErrors checks that each item's error is QBTo's, at its index
// of a *lowrank.BatchError, and that the other items are still decomposed.
func TestQBBatchErrors(t *testing.T) {
	const m, n, k = 60, 30, 4
	good := func(seed uint64) *mat.Dense { return testmat.Gaussian(m, n, seed) }
	bad := good(3)
	bad.Set(7, 11, math.NaN())
	items := []struct {
		a    lowrank.Matrix
		opts *sampling.Options
		want error
	}{
		{good(1), nil, nil},
		{bad, nil, lowrank.ErrNotFinite},
		{good(2), &sampling.Options{Oversample: -1}, lowrank.ErrOption},
		{good(4), &sampling.Options{Indices: []int{1, 2, 99, 3}}, lowrank.ErrOption},
		{good(5), &sampling.Options{Seed: 5}, nil},
		{good(6), &sampling.Options{Sampler: sampling.Sampler(9)}, lowrank.ErrOption},
	}
	for _, be := range []lowrank.Backend{cpu.Backend{}, &counting{}} {
		d := sampling.NewDecomposer(be)
		dst := make([]*lowrank.Factors, len(items))
		as := make([]lowrank.Matrix, len(items))
		opts := make([]*sampling.Options, len(items))
		for i, it := range items {
			dst[i], as[i], opts[i] = new(lowrank.Factors), it.a, it.opts
		}
		err := d.QBBatchTo(dst, as, k, opts)
		var be *lowrank.BatchError
		require.ErrorAs(t, err, &be)
		require.Len(t, be.Errs, len(items))
		for i, it := range items {
			var want lowrank.Factors
			werr := sampling.NewDecomposer(cpu.Backend{}).QBTo(&want, it.a, k, it.opts)
			if it.want == nil {
				assert.NoError(t, be.Errs[i], "item %d", i)
				assert.True(t, mat.Equal(want.B.(mat.Matrix), dst[i].B.(mat.Matrix)), "item %d: B", i)
				continue
			}
			assert.ErrorIs(t, be.Errs[i], it.want, "item %d", i)
			assert.Equal(t, werr.Error(), be.Errs[i].Error(), "item %d: QBTo's error", i)
			assert.ErrorIs(t, err, it.want, "the batch error wraps item %d's", i)
		}
		var nf *lowrank.NotFiniteError
		require.True(t, errors.As(be.Errs[1], &nf))
		assert.Equal(t, [2]int{7, 11}, [2]int{nf.Row, nf.Col})
	}
	d := sampling.NewDecomposer(cpu.Backend{})
	assert.NoError(t, d.QBBatchTo(nil, nil, 3, nil), "an empty batch")
	assert.PanicsWithError(t, "lowrank: dimension mismatch: QBBatchTo of 1 destinations, 2 inputs and 0 options", func() {
		_ = d.QBBatchTo([]*lowrank.Factors{{}}, []lowrank.Matrix{good(1), good(2)}, 3, nil)
	})
}

// seeded is counting with lowrank.SeededBatcher and
// lowrank.SeededGatherNormer: it checks that every index list it is given
// is the uniform draw of its seed (the documented algorithm, redrawn
// here), as a backend drawing on its own would produce it, and records
// the seeds.
type seeded struct {
	counting
	t     *testing.T
	seeds []uint64
}

func (s *seeded) GatherNormBatchSeeded(dst, a []lowrank.Matrix, trans bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64) error {
	for i := range idx {
		p, q := a[i].Dims()
		if trans {
			p = q
		}
		assert.Equal(s.t, testmat.UniformDraw(seeds[i], p, len(idx[i])), idx[i], "item %d, seed %d", i, seeds[i])
	}
	s.seeds = append(s.seeds, seeds...)
	return s.GatherNormBatch(dst, a, trans, idx, sumSq, maxAbs)
}

func (s *seeded) GatherNormSeeded(dst, a lowrank.Matrix, trans bool, idx []int, seed uint64) (float64, float64, error) {
	p, q := a.Dims()
	if trans {
		p = q
	}
	assert.Equal(s.t, testmat.UniformDraw(seed, p, len(idx)), idx, "single, seed %d", seed)
	s.seeds = append(s.seeds, seed)
	return s.GatherNorm(dst, a, trans, idx)
}

// TestSeededDraws checks what a backend that draws the uniform sampler's
// indices itself is given: for a batch of drawn items, and for a single
// QB, their seeds beside indices that are those seeds' draws; for a batch
// with given Indices, no seeds (GatherNormBatch); the results are QBTo's.
func TestSeededDraws(t *testing.T) {
	const m, n, k = 90, 30, 5
	as := []lowrank.Matrix{testmat.Gaussian(m, n, 1), testmat.Gaussian(m, n, 2), testmat.Gaussian(m, 40, 3)}
	be := &seeded{t: t}
	d := sampling.NewDecomposer(be)
	dst := []*lowrank.Factors{new(lowrank.Factors), new(lowrank.Factors), new(lowrank.Factors)}
	opts := []*sampling.Options{{Seed: 7}, {Seed: 8}, {Seed: 9}}
	require.NoError(t, d.QBBatchTo(dst, as, k, opts))
	assert.Equal(t, []uint64{7, 8, 9}, be.seeds, "the batch's seeds, in its order")
	for i := range as {
		var want lowrank.Factors
		require.NoError(t, sampling.NewDecomposer(cpu.Backend{}).QBTo(&want, as[i], k, opts[i]))
		assert.True(t, mat.Equal(want.Q.(mat.Matrix), dst[i].Q.(mat.Matrix)), "item %d: Q", i)
	}
	be.seeds = nil
	var f lowrank.Factors
	require.NoError(t, d.QBTo(&f, as[0], k, &sampling.Options{Seed: 11}))
	assert.Equal(t, []uint64{11}, be.seeds, "a single QB's seed")
	be.seeds, be.gathers = nil, nil
	opts[1] = &sampling.Options{Indices: []int{0, 3, 6, 9, 12}}
	require.NoError(t, d.QBBatchTo(dst, as, k, opts))
	assert.Empty(t, be.seeds, "a batch with given indices has no seeds")
	assert.Equal(t, []int{3}, be.gathers, "and goes through GatherNormBatch")
}

// deferring is counting with lowrank.Deferrer, as a device backend
// behaves: the deferred calls' results reach the caller's slices only at
// Collect (NaN until then, so that an early read shows), and the items
// of a deferred QR at the positions in fail "fail" their fast path: they
// keep their input, and Collect reports them.
type deferring struct {
	counting
	fail     map[int]bool
	collects int
	pending  []func()
}

// later records the results of a deferred call for Collect and poisons
// the caller's slices until then.
func (d *deferring) later(sumSq, maxAbs, s, m []float64) {
	for i := range sumSq {
		sumSq[i], maxAbs[i] = math.NaN(), math.NaN()
	}
	d.pending = append(d.pending, func() { copy(sumSq, s); copy(maxAbs, m) })
}

// SketchBatchDeferred leaves NaN in Ω after the sketches, which the
// batch must not read again.
func (d *deferring) SketchBatchDeferred(y, omega, a []lowrank.Matrix, trans bool, idx [][]int, seeds []uint64, sumSq, maxAbs []float64) error {
	s, m := make([]float64, len(omega)), make([]float64, len(omega))
	if err := d.GatherNormBatch(omega, a, trans, idx, s, m); err != nil {
		return err
	}
	if err := d.MulBatch(y, 1, a, trans, omega, false, 0); err != nil {
		return err
	}
	for _, o := range omega {
		o := o.(*mat.Dense)
		r, c := o.Dims()
		for i := range r {
			for j := range c {
				o.Set(i, j, math.NaN())
			}
		}
	}
	d.later(sumSq, maxAbs, s, m)
	return nil
}

func (d *deferring) SquaredNormBatchDeferred(ms []lowrank.Matrix, scale float64, sumSq, maxAbs []float64) error {
	s, m := make([]float64, len(ms)), make([]float64, len(ms))
	if err := d.SquaredNormBatch(ms, scale, s, m); err != nil {
		return err
	}
	d.later(sumSq, maxAbs, s, m)
	return nil
}

func (d *deferring) QRBatchDeferred(a []lowrank.Matrix, failed []bool) error {
	d.qrs = append(d.qrs, len(a))
	var fails []int
	for i, m := range a {
		if d.fail[i] {
			fails = append(fails, i)
			continue
		}
		if err := d.QR(m, nil); err != nil {
			return err
		}
	}
	d.pending = append(d.pending, func() {
		for _, i := range fails {
			failed[i] = true
		}
	})
	return nil
}

func (d *deferring) Collect() error {
	d.collects++
	for _, f := range d.pending {
		f()
	}
	d.pending = d.pending[:0]
	return nil
}

// TestQBBatchDeferred checks QBBatchTo on a lowrank.Deferrer: a batch of
// plain QBs is read by one Collect, and the speculation's misses are
// mended as QBTo would decompose them — an input with a NaN gets QBTo's
// error, one of extreme magnitude is scaled by QBTo, and those whose fast
// QR failed are orthogonalised again from their unchanged sketches — so
// that every item gets QBTo's factors bit for bit. A batch with a
// tolerance is not deferred.
func TestQBBatchDeferred(t *testing.T) {
	const m, n, k = 100, 36, 5
	in := func(seed uint64, scale float64) *mat.Dense {
		a := testmat.Haar(m, n, testmat.ActivationLike(n), seed)
		a.Scale(scale, a)
		return a
	}
	nan := in(3, 1)
	nan.Set(17, 4, math.NaN())
	as := []lowrank.Matrix{in(1, 1), in(2, 1), nan, in(4, 0x1p40), in(5, 1), testmat.Haar(150, n, testmat.ActivationLike(n), 6), in(7, 1)}
	opts := make([]*sampling.Options, len(as))
	for i := range opts {
		opts[i] = &sampling.Options{Seed: uint64(i + 1)}
	}
	for _, fail := range []map[int]bool{nil, {1: true}, {0: true, 5: true, 6: true}} {
		be := &deferring{fail: fail}
		d := sampling.NewDecomposer(be)
		dst := make([]*lowrank.Factors, len(as))
		for i := range dst {
			dst[i] = new(lowrank.Factors)
		}
		err := d.QBBatchTo(dst, as, k, opts)
		var bErr *lowrank.BatchError
		require.ErrorAs(t, err, &bErr, "fail %v", fail)
		assert.Equal(t, 1, be.collects, "fail %v: one Collect", fail)
		assert.Equal(t, []int{len(as)}, be.gathers, "fail %v: the whole batch read once", fail)
		for i, a := range as {
			var want lowrank.Factors
			werr := sampling.NewDecomposer(cpu.Backend{}).QBTo(&want, a, k, opts[i])
			if werr != nil {
				require.Error(t, bErr.Errs[i], "fail %v item %d", fail, i)
				assert.Equal(t, werr.Error(), bErr.Errs[i].Error(), "fail %v item %d: QBTo's error", fail, i)
				continue
			}
			require.NoError(t, bErr.Errs[i], "fail %v item %d", fail, i)
			got := dst[i]
			assert.True(t, mat.Equal(want.Q.(mat.Matrix), got.Q.(mat.Matrix)), "fail %v item %d: Q", fail, i)
			assert.True(t, mat.Equal(want.B.(mat.Matrix), got.B.(mat.Matrix)), "fail %v item %d: B", fail, i)
			assert.Equal(t, [5]float64{want.SquaredNormA, want.SquaredNormB, want.NormScale, float64(want.Rank()), boolF(want.Trans)},
				[5]float64{got.SquaredNormA, got.SquaredNormB, got.NormScale, float64(got.Rank()), boolF(got.Trans)}, "fail %v item %d: norms", fail, i)
		}
		var nf *lowrank.NotFiniteError
		require.ErrorAs(t, bErr.Errs[2], &nf)
		assert.Equal(t, [2]int{17, 4}, [2]int{nf.Row, nf.Col}, "fail %v", fail)
		// The draw is item 3's: QBTo, which scales it, draws after the
		// batch.
		var last lowrank.Factors
		d1 := sampling.NewDecomposer(cpu.Backend{})
		require.NoError(t, d1.QBTo(&last, as[3], k, opts[3]))
		assert.Equal(t, d1.Draw(), d.Draw(), "fail %v: the draw", fail)
	}

	// A tolerance: the batch takes the synchronous path.
	be := &deferring{}
	d := sampling.NewDecomposer(be)
	dst := []*lowrank.Factors{new(lowrank.Factors), new(lowrank.Factors)}
	require.NoError(t, d.QBBatchTo(dst, as[:2], k, []*sampling.Options{{Seed: 1, Tolerance: 0.5}, {Seed: 2}}))
	assert.Zero(t, be.collects, "a batch with a tolerance is not deferred")
	assert.Equal(t, []int{2}, be.gathers)
}

func boolF(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
