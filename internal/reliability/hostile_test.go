package reliability

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/bounds"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/exact"
	"github.com/loract/loract/internal/testmat"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
	"github.com/loract/loract/sampling"
)

// table, if set, writes the hostile-input table as markdown to this file
// (docs/reliability.md embeds it): go test ./internal/reliability -run
// TestHostileInputs -args -reliability.table /tmp/table.md
var table = flag.String("reliability.table", "", "write the hostile-input table as markdown to this file")

// Outcomes of an entry point on a hostile input.
const (
	ok        = "ok"             // a valid result (the QB oracle holds where it applies)
	notFinite = "ErrNotFinite@"  // a *lowrank.NotFiniteError at the position that follows
	rankErr   = "ErrRank"        // an error wrapping lowrank.ErrRank
	shapeErr  = "ErrShape"       // an error (or documented panic) wrapping lowrank.ErrShape
	emptyErr  = "ErrEmpty"       // an error wrapping lowrank.ErrEmpty
	aliasPan  = "panic ErrAlias" // the documented panic for a forbidden alias
	overflow  = "ErrNotFinite (overflow)"
	nanOut    = "NaN (documented)"
)

// hostile is one row of the table: an input and k.
type hostile struct {
	name string
	a    func() mat.Matrix
	k    int
	// want maps an entry point to its documented outcome; entry points
	// not listed expect ok.
	want map[string]string
}

func base() *mat.Dense { return testmat.Incoherent(40, 30, testmat.PowerLaw(30, 1, 0), 5) }

func with(f func(*mat.Dense)) func() mat.Matrix {
	return func() mat.Matrix {
		a := base()
		f(a)
		return a
	}
}

func scaled(s float64) func() mat.Matrix {
	return with(func(a *mat.Dense) { a.Scale(s, a) })
}

// every returns the same outcome for every entry point.
func every(outcome string) map[string]string {
	m := map[string]string{}
	for _, e := range entryPoints {
		m[e.name] = outcome
	}
	return m
}

func hostileRows() []hostile {
	rows := []hostile{
		{"finite 40×30", func() mat.Matrix { return base() }, 5, nil},
		{"NaN at (0, 0)", with(func(a *mat.Dense) { a.Set(0, 0, math.NaN()) }), 5, nonFinite("(0, 0)")},
		{"NaN at the last element", with(func(a *mat.Dense) { a.Set(39, 29, math.NaN()) }), 5, nonFinite("(39, 29)")},
		{"+Inf at (7, 3)", with(func(a *mat.Dense) { a.Set(7, 3, math.Inf(1)) }), 5, nonFinite("(7, 3)")},
		{"−Inf and NaN: the first is reported", with(func(a *mat.Dense) { a.Set(9, 1, math.NaN()); a.Set(2, 20, math.Inf(-1)) }), 5, nonFinite("(2, 20)")},
		{"all subnormal (max ≈ 1e-310)", scaled(1e-310), 5, nil},
		{"max ≈ 1e-300", scaled(1e-300), 5, nil},
		{"max ≈ 1e300", scaled(1e300), 5, map[string]string{"activation.Compress (bf16)": overflow}},
		{"every entry 1e308 (B and σ₁ overflow)", func() mat.Matrix {
			a := mat.NewDense(40, 30, nil)
			for i := range 40 {
				for j := range 30 {
					a.Set(i, j, 1e308)
				}
			}
			return a
		}, 5, withOK(every(overflow), "lowrank.RelError")},
		{"zero matrix", func() mat.Matrix { return mat.NewDense(40, 30, nil) }, 5, nil},
		{"rank 1", func() mat.Matrix {
			var a mat.Dense
			a.Mul(testmat.Gaussian(40, 1, 1), testmat.Gaussian(1, 30, 2))
			return &a
		}, 5, nil},
		{"duplicated rows", with(func(a *mat.Dense) {
			for i := 1; i < 40; i++ {
				a.SetRow(i, a.RawRowView(i%4))
			}
		}), 5, nil},
		{"k = 0", func() mat.Matrix { return base() }, 0, withOK(every(rankErr), "lowrank.RelError", "rsvd.AdaptiveQB", "bounds.NewExact")},
		{"k > min(m, n)", func() mat.Matrix { return base() }, 31, withOK(every(rankErr), "lowrank.RelError", "rsvd.AdaptiveQB", "bounds.NewExact",
			"activation.Compress (bf16)")}, // Fixed(k) is clamped to min(L, d): X is stored as it is
		{"1×30", func() mat.Matrix { return testmat.Gaussian(1, 30, 3) }, 1, nil},
		{"40×1", func() mat.Matrix { return testmat.Gaussian(40, 1, 4) }, 1, nil},
		{"empty 0×30", func() mat.Matrix { return &mat.Dense{} }, 1, withOK(every(emptyErr), "lowrank.RelError")},
		{"strided view", func() mat.Matrix { return testmat.Strided(base()) }, 5, nil},
		{"transposed view", func() mat.Matrix { return base().T() }, 5, nil},
		{"float32 view with a stride", func() mat.Matrix {
			d := lowrank.NewDense32(40, 33, nil)
			v := d.Slice(0, 40, 1, 31)
			src := base()
			for i := range 40 {
				for j := range 30 {
					v.Data[i*v.Stride+j] = float32(src.At(i, j))
				}
			}
			return v
		}, 5, nil},
		{"short Dense32 (Data < Stride·(Rows−1)+Cols)", func() mat.Matrix {
			return &lowrank.Dense32{Rows: 40, Cols: 30, Stride: 30, Data: make([]float32, 1100)}
		}, 5, every(shapeErr)},
	}
	return rows
}

// nonFinite is the outcome of a NaN or ±Inf at pos for every entry point.
func nonFinite(pos string) map[string]string {
	m := every(notFinite + pos)
	m["lowrank.RelError"] = nanOut
	return m
}

// withOK returns m with the named entry points set to ok (those that do
// not take the failing argument).
func withOK(m map[string]string, names ...string) map[string]string {
	for _, n := range names {
		m[n] = ok
	}
	return m
}

// entry is one exported entry point run on a hostile input.
type entry struct {
	name string
	run  func(a mat.Matrix, k int) error
}

// qbEntry wraps a QB-returning entry point with the QB oracle.
func qbEntry(name string, f func(a mat.Matrix, k int) (*lowrank.QB, error)) entry {
	return entry{name, func(a mat.Matrix, k int) error {
		q, err := f(a, k)
		if err != nil {
			return err
		}
		return oracle(a, q)
	}}
}

// oracle checks a QB of a finite input: finite orthonormal factors and an
// error below 1 (a projection never increases the norm). The reported
// error is checked by the fuzz targets and TestRankDeficient.
func oracle(a mat.Matrix, q *lowrank.QB) error {
	for _, x := range []mat.Matrix{q.Left(), q.Right()} {
		r, c := x.Dims()
		for i := range r {
			for j := range c {
				if v := x.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("oracle: factor element %v", v)
				}
			}
		}
	}
	_, k := q.Q().Dims()
	if e := testmat.OrthError(q.Q()); e > 1e-12*float64(k+1) {
		return fmt.Errorf("oracle: ‖QᵀQ − I‖ = %g", e)
	}
	if e := lowrank.RelError(a, q); !(e <= 1+1e-12) {
		return fmt.Errorf("oracle: relative error %v", e)
	}
	return nil
}

var entryPoints = []entry{
	qbEntry("sampling.QB", func(a mat.Matrix, k int) (*lowrank.QB, error) {
		return sampling.QB(a, k, &sampling.Options{Seed: 1, Oversample: 2, PowerIters: 1})
	}),
	{"sampling.SVD", func(a mat.Matrix, k int) error { _, err := sampling.SVD(a, k, &sampling.Options{Seed: 1}); return err }},
	qbEntry("sampling.Nystrom", func(a mat.Matrix, k int) (*lowrank.QB, error) {
		return sampling.Nystrom(a, k, &sampling.Options{Seed: 1, Oversample: 2})
	}),
	qbEntry("rsvd.QB", func(a mat.Matrix, k int) (*lowrank.QB, error) {
		return rsvd.QB(a, k, &rsvd.Options{Seed: 1, Oversample: 4, PowerIters: 2, Normalizer: rsvd.LU})
	}),
	{"rsvd.SVD", func(a mat.Matrix, k int) error {
		_, err := rsvd.SVD(a, k, &rsvd.Options{Seed: 1, PowerIters: 1})
		return err
	}},
	qbEntry("rsvd.AdaptiveQB", func(a mat.Matrix, _ int) (*lowrank.QB, error) {
		q, err := rsvd.AdaptiveQB(a, 0.1, &rsvd.AdaptiveOptions{Seed: 1, BlockSize: 4})
		if errors.Is(err, lowrank.ErrTolerance) {
			err = nil // the zero or flat case: the full-rank QB with its error
		}
		return q, err
	}),
	{"exact.TruncatedSVD", func(a mat.Matrix, k int) error {
		f, err := exact.TruncatedSVD(a, k)
		if err != nil {
			return err
		}
		for _, v := range f.Values(nil) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("oracle: singular value %v", v)
			}
		}
		return nil
	}},
	{"activation.Compress (bf16)", func(a mat.Matrix, k int) error {
		c, err := activation.New(activation.Config{Rank: activation.Fixed(max(k, 1)), MeasureError: true})
		if err != nil {
			return err
		}
		defer c.Close()
		if k < 1 {
			return fmt.Errorf("%w: k = %d", lowrank.ErrRank, k) // the rank is configuration, checked by New
		}
		h, _ := a.(lowrank.Matrix)
		s, err := c.Compress("layer", h)
		if err != nil {
			return err
		}
		var dst mat.Dense
		if err := s.WeightGradOutIn(&dst, testmat.Gaussian(rowsOf(a), 3, 1)); err != nil {
			return err
		}
		return s.Release()
	}},
	{"lowrank.RelError", func(a mat.Matrix, _ int) error {
		// The error of the zero approximation is exactly 1 for any finite
		// nonzero A (0 for A = 0), however extreme its entries; a
		// non-finite A gives NaN, as documented.
		m, n := a.Dims()
		if m == 0 || n == 0 {
			return nil
		}
		e := lowrank.RelError(a, lowrank.NewQB(mat.NewDense(m, 1, nil), mat.NewDense(1, n, nil), false))
		if lowrank.CheckFinite(a) != nil {
			if !math.IsNaN(e) {
				return fmt.Errorf("oracle: %v for a non-finite input", e)
			}
			return errNaN
		}
		if mat.Norm(a, math.Inf(1)) == 0 {
			if e != 0 {
				return fmt.Errorf("oracle: %v for the zero matrix", e)
			}
			return nil
		}
		if math.Abs(e-1) > 1e-15 {
			return fmt.Errorf("oracle: relative error of the zero approximation %v, want 1", e)
		}
		return nil
	}},
	{"bounds.NewExact", func(a mat.Matrix, _ int) error {
		_, err := bounds.NewExact(a)
		return err
	}},
}

func rowsOf(a mat.Matrix) int { r, _ := a.Dims(); return r }

// errNaN marks the documented NaN of lowrank.RelError on a non-finite input.
var errNaN = errors.New("NaN, as documented for a non-finite input")

// outcome classifies what an entry point did.
func outcome(run func() error) (got string) {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok && errors.Is(err, lowrank.ErrAlias) {
				got = aliasPan
				return
			}
			if err, ok := r.(error); ok && errors.Is(err, lowrank.ErrShape) {
				got = shapeErr
				return
			}
			got = fmt.Sprintf("PANIC %v", r)
		}
	}()
	err := run()
	var nf *lowrank.NotFiniteError
	switch {
	case err == nil:
		return ok
	case errors.Is(err, errNaN):
		return nanOut
	case errors.As(err, &nf):
		return fmt.Sprintf("%s(%d, %d)", notFinite, nf.Row, nf.Col)
	case errors.Is(err, lowrank.ErrNotFinite):
		return overflow
	case errors.Is(err, lowrank.ErrRank):
		return rankErr
	case errors.Is(err, lowrank.ErrShape):
		return shapeErr
	case errors.Is(err, lowrank.ErrEmpty):
		return emptyErr
	}
	return "error: " + err.Error()
}

// TestHostileInputs runs every exported entry point on every hostile input
// and asserts the documented outcome of each cell: a valid result, or the
// error (with position, for NaN and ±Inf) the documentation promises —
// never a panic other than the documented ones, a silent NaN or a hang.
func TestHostileInputs(t *testing.T) {
	rows := hostileRows()
	got := make([][]string, len(rows))
	for i, r := range rows {
		got[i] = make([]string, len(entryPoints))
		for j, e := range entryPoints {
			want := ok
			if w, ok := r.want[e.name]; ok {
				want = w
			}
			got[i][j] = outcome(func() error { return e.run(r.a(), r.k) })
			if got[i][j] != want {
				t.Errorf("%s / %s: %s, documented %s", r.name, e.name, got[i][j], want)
			}
		}
	}
	// The one contract that is a panic: a product into a matrix that
	// shares memory with an operand.
	a := base()
	if o := outcome(func() error {
		return cpu.Backend{}.Mul(a, 1, a.Slice(0, 40, 0, 30), false, mat.NewDense(30, 30, nil), false, 0)
	}); o != aliasPan {
		t.Errorf("cpu.Backend.Mul with c = a: %s, documented %s", o, aliasPan)
	}
	if *table != "" {
		writeTable(t, rows, got)
	}
}

func writeTable(t *testing.T, rows []hostile, got [][]string) {
	var b strings.Builder
	b.WriteString("| input (k) |")
	for _, e := range entryPoints {
		b.WriteString(" " + e.name + " |")
	}
	b.WriteString("\n|---|")
	for range entryPoints {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for i, r := range rows {
		fmt.Fprintf(&b, "| %s (%d) |", r.name, r.k)
		for j := range entryPoints {
			b.WriteString(" " + strings.ReplaceAll(got[i][j], notFinite, "NaN/Inf@") + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("| product into an operand (`cpu.Backend.Mul`, c = a) | " + aliasPan + " |\n")
	if err := os.WriteFile(*table, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
