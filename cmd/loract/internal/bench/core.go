package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
)

// CoreShape is a shape of the core library timing table; Exact adds the
// exact SVD (float64 input only).
type CoreShape struct {
	M, N, K int
	Exact   bool
}

// CoreShapes are the shapes of 'loract bench -core': 8192×4096 k=128 and
// 4096×1024 k=64, the exact SVD at the latter.
var CoreShapes = []CoreShape{{8192, 4096, 128, false}, {4096, 1024, 64, true}}

// CoreRow is one row of the core table: a loract function on one shape
// and input type, beside the same algorithm in NumPy/SciPy (Same),
// scikit-learn's randomized_svd at p = 0, q = 0 (P0Q0) and at its
// defaults (Default).
type CoreRow struct {
	Func, Shape, Dtype  string
	Loract              Record
	Opt                 float64
	Same, P0Q0, Default Record
	// Rounds holds loract ÷ Same (wall time) of each round when the
	// table was measured in more than one (Core), in order.
	Rounds []float64
}

// FindPeer returns the record of peer's method at p, q (any setting for
// the exact SVD), or a record with Error "not run".
func FindPeer(peers []Record, peer, method string, p, q int) Record {
	for _, r := range peers {
		if r.Peer == peer && r.Method == method && (method == "exact" || (r.P == p && r.Q == q)) {
			return r
		}
	}
	return Record{Peer: peer, Method: method, Error: "not run"}
}

// sklearnDefault returns scikit-learn's record at its default
// oversampling (p = 10), or a record with Error "not run".
func sklearnDefault(peers []Record) Record {
	for _, r := range peers {
		if r.Peer == "sklearn" && r.Method == "randomized_svd" && r.P == 10 {
			return r
		}
	}
	return Record{Peer: "sklearn", Method: "randomized_svd", Error: "not run"}
}

// CoreRows builds the rows of one shape and input type from loract's
// records (sampling.QB, rsvd.QB, then the exact SVD if present) and the
// CPU peers' records.
func CoreRows(sh CoreShape, dtype string, opt float64, loract, peers []Record) []CoreRow {
	var rows []CoreRow
	shape := Shape(sh.M, sh.N, sh.K)
	for _, l := range loract {
		row := CoreRow{Shape: shape, Dtype: dtype, Loract: l, Opt: opt}
		switch l.Method {
		case "rows", "gaussian":
			row.Func = map[string]string{"rows": "sampling.QB", "gaussian": "rsvd.QB"}[l.Method]
			row.Same = FindPeer(peers, "numpy", l.Method, 0, 0)
			row.P0Q0 = FindPeer(peers, "sklearn", "randomized_svd", 0, 0)
			row.Default = sklearnDefault(peers)
		case "exact":
			row.Func = "exact.TruncatedSVD"
			row.Same = FindPeer(peers, "scipy", "exact", 0, 0)
		default:
			continue
		}
		rows = append(rows, row)
	}
	return rows
}

// Core times the core library table on shapes: sampling.QB and rsvd.QB
// (package-level functions, default options: p = 0, q = 0) with float64
// and float32 input, the exact SVD where the shape asks, each beside the
// same algorithm in NumPy/OpenBLAS and scikit-learn's randomized_svd
// (p=0 q=0, and its default) run in the same session, and writes the
// Markdown table to out.
//
// With rounds > 1 every shape and input type is measured that many times
// in a row, the peers first in rounds 1, 3, … (Record.Round 0, 2, …) and
// loract first in rounds 2, 4, …, so that a machine whose speed drifts over minutes (a shared
// one) moves both sides alike; each table entry is then the median over
// the rounds of the rounds' medians (MergeRounds), and the loract ÷ NumPy
// cell also gives the range of the rounds' own ratios.
func (s *Session) Core(ctx context.Context, out io.Writer, shapes []CoreShape, rounds int) error {
	if rounds < 1 {
		return fmt.Errorf("bench: %d rounds: need at least one", rounds)
	}
	var rows []CoreRow
	for _, sh := range shapes {
		x := s.Matrix(sh.M, sh.N)
		opt := x.Optimal(sh.K)
		for _, dt := range []string{"fp64", "fp32"} {
			exact := sh.Exact && dt == "fp64"
			var peersR, lractR [][]Record
			for r := range rounds {
				var peers, lrecs []Record
				var err error
				peersFirst := r%2 == 0
				if peersFirst {
					peers, err = s.corePeers(ctx, x, sh, dt, exact, opt, r, rounds)
				}
				if err == nil {
					lrecs = s.coreLoract(x, sh, dt, exact, opt, r)
				}
				if err == nil && !peersFirst {
					peers, err = s.corePeers(ctx, x, sh, dt, exact, opt, r, rounds)
				}
				if err != nil {
					return err
				}
				peersR, lractR = append(peersR, peers), append(lractR, lrecs)
			}
			rs := CoreRows(sh, dt, opt, MergeRounds(lractR), MergeRounds(peersR))
			for r := 0; rounds > 1 && r < rounds; r++ {
				for i, l := range CoreRows(sh, dt, opt, lractR[r], peersR[r]) {
					if l.Loract.Ok() && l.Same.Ok() {
						rs[i].Rounds = append(rs[i].Rounds, l.Loract.Ms/l.Same.Ms)
					}
				}
			}
			rows = append(rows, rs...)
		}
	}
	for _, k := range s.Kernels() {
		fmt.Fprintf(out, "\npeer BLAS kernel, %s", k)
	}
	fmt.Fprintln(out)
	WriteCoreTable(out, rows)
	return nil
}

// corePeers runs the CPU peers of one core table entry (round r of
// rounds), or returns nil where they are not installed.
func (s *Session) corePeers(ctx context.Context, x *Matrix, sh CoreShape, dt string, exact bool, opt float64, r, rounds int) ([]Record, error) {
	if !s.HasPeer(CPUPeers) {
		return nil, nil
	}
	path, err := s.Input(x, dt)
	if err != nil {
		return nil, err
	}
	methods := "rows,gaussian,randomized_svd,randomized_svd_p0q0"
	if exact {
		methods += ",exact"
	}
	s.Logf("NumPy/scikit-learn/SciPy peers on %s %s%s", Shape(sh.M, sh.N, sh.K), dt, roundNote(r, rounds))
	peers := s.RunPeer(ctx, CPUPeers, []string{"--input", path, "--k", strconv.Itoa(sh.K),
		"--repeats", strconv.Itoa(s.Repeats), "--seed", strconv.FormatUint(s.Seed, 10), "--methods", methods, "--exact-once"}, opt)
	for i := range peers {
		peers[i].Round = r
	}
	s.Records = append(s.Records, peers...)
	return peers, nil
}

// coreLoract times loract's functions of one core table entry (round r).
func (s *Session) coreLoract(x *Matrix, sh CoreShape, dt string, exact bool, opt float64, r int) []Record {
	a := x.Input(dt)
	var lrecs []Record
	for _, m := range []activation.Method{activation.RowSampling, activation.Gaussian} {
		lrecs = append(lrecs, RunLoract(cpu.Backend{}, a.(lowrank.Matrix), a, sh.K, Setting{Method: m, HostAPI: true}, 1, s.Repeats, s.Seed))
	}
	if exact {
		lrecs = append(lrecs, RunLoract(cpu.Backend{}, a.(lowrank.Matrix), a, sh.K, Setting{Method: activation.ExactSVD}, 0, 1, s.Seed))
	}
	for i := range lrecs {
		lrecs[i].Round = r
		s.Show(lrecs[i], opt)
	}
	s.Records = append(s.Records, lrecs...)
	return lrecs
}

func roundNote(r, rounds int) string {
	if rounds == 1 {
		return ""
	}
	return fmt.Sprintf(" (round %d of %d)", r+1, rounds)
}

// MergeRounds combines the records of several rounds of the same
// measurements (as Core makes them), matching each record of the first
// round with the one of the same peer, method, normaliser, type, shape
// and setting in each later round: Ms and CPUMs become the median over the
// rounds, MsMin the smallest, Repeats the sum, the errors stay the first
// round's. A measurement that failed in some round, or is missing from
// one, keeps the first failure (or a "not run in every round" error).
func MergeRounds(rounds [][]Record) []Record {
	if len(rounds) == 0 {
		return nil
	}
	out := append([]Record(nil), rounds[0]...)
	if len(rounds) == 1 {
		return out
	}
	same := func(a, b Record) bool {
		return a.Peer == b.Peer && a.Method == b.Method && a.Norm == b.Norm && a.Dtype == b.Dtype &&
			a.M == b.M && a.N == b.N && a.K == b.K && a.P == b.P && a.Q == b.Q
	}
	for i := range out {
		ms, cpuMs := []float64{out[i].Ms}, []float64{out[i].CPUMs}
		for _, rs := range rounds[1:] {
			if !out[i].Ok() {
				break
			}
			j := slices.IndexFunc(rs, func(r Record) bool { return same(out[i], r) })
			switch {
			case j < 0:
				out[i].Error = "not run in every round"
			case !rs[j].Ok():
				out[i] = rs[j]
			default:
				r := rs[j]
				ms, cpuMs = append(ms, r.Ms), append(cpuMs, r.CPUMs)
				if r.MsMin > 0 && (out[i].MsMin == 0 || r.MsMin < out[i].MsMin) {
					out[i].MsMin = r.MsMin // 0 is "not recorded"
				}
				out[i].Repeats += r.Repeats
			}
		}
		if out[i].Ok() {
			slices.Sort(ms)
			slices.Sort(cpuMs)
			out[i].Ms, out[i].CPUMs, out[i].Round = median(ms), median(cpuMs), 0
		}
	}
	return out
}

// WriteCoreTable writes the core rows as a Markdown table: times, errors
// ÷ optimal, loract ÷ peer in time and in CPU time.
func WriteCoreTable(out io.Writer, rows []CoreRow) {
	fmt.Fprintf(out, "\n| loract | shape | input | loract ms | err/opt | same algorithm in NumPy/SciPy: ms | err/opt | loract ÷ NumPy | (CPU time) | sklearn randomized_svd p=0 q=0: ms | err/opt | loract ÷ it | sklearn default p=10 q=auto: ms | err/opt | loract ÷ it |\n")
	fmt.Fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	cell := func(r Record, opt float64) (string, string) {
		if !r.Ok() {
			return "-", "-"
		}
		return fmt.Sprintf("%.1f", r.Ms), fmt.Sprintf("%.3f", r.Err()/opt)
	}
	ratio := func(l, p Record) string {
		if !l.Ok() || !p.Ok() {
			return "-"
		}
		return fmtRatio(l.Ms / p.Ms)
	}
	for _, r := range rows {
		lm, le := cell(r.Loract, r.Opt)
		sm, se := cell(r.Same, r.Opt)
		pm, pe := cell(r.P0Q0, r.Opt)
		dm, de := cell(r.Default, r.Opt)
		if r.Default.Ok() {
			dm = fmt.Sprintf("%s (q=%d)", dm, r.Default.Q)
		}
		cpuRatio := "-"
		if r.Loract.Ok() && r.Same.Ok() && r.Loract.CPUMs > 0 && r.Same.CPUMs > 0 {
			cpuRatio = fmtRatio(r.Loract.CPUMs / r.Same.CPUMs)
		}
		same := ratio(r.Loract, r.Same)
		if len(r.Rounds) > 1 {
			same = fmt.Sprintf("%s (%s–%s in %d rounds)", same, fmtRatio(slices.Min(r.Rounds)), fmtRatio(slices.Max(r.Rounds)), len(r.Rounds))
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Func, r.Shape, r.Dtype, lm, le, sm, se, same, cpuRatio, pm, pe, ratio(r.Loract, r.P0Q0), dm, de, ratio(r.Loract, r.Default))
	}
}
