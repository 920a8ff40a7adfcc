package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/loract/loract/cmd/loract/internal/bench"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/lowrank"
)

// core prints the core library timing table: sampling.QB and rsvd.QB
// (package-level functions, default options: p = 0, q = 0) at 8192×4096
// k=128 and 4096×1024 k=64 with float64 and float32 input, and the exact
// SVD at 4096×1024, each beside the same algorithm in NumPy/OpenBLAS and
// scikit-learn's randomized_svd (p=0 q=0, and its default) run in the same
// session.
func (b *benchRun) core(ctx context.Context, dir string, out io.Writer) error {
	type shape struct{ m, n, k int }
	shapes := []shape{{8192, 4096, 128}, {4096, 1024, 64}}
	type row struct {
		fn, shape, dtype string
		l                bench.Record
		opt              float64
		same, p0, def    bench.Record
	}
	var rows []row
	for _, sh := range shapes {
		b.progress("building the %d×%d activation-like matrix (seed %d)", sh.m, sh.n, b.seed)
		x := bench.Activation(sh.m, sh.n, b.seed)
		opt := x.Optimal(sh.k)
		for _, dt := range []string{"fp64", "fp32"} {
			a := x.Input(dt)
			var peers []bench.Record
			if b.py.Exe != "" && b.py.Have["numpy"] {
				path, err := writeInput(dir, x, dt)
				if err != nil {
					return err
				}
				methods := "rows,gaussian,randomized_svd,randomized_svd_p0q0"
				if sh.m == 4096 && dt == "fp64" {
					methods += ",exact"
				}
				b.progress("NumPy/scikit-learn/SciPy peers on %s %s", bench.Shape(sh.m, sh.n, sh.k), dt)
				recs, env, err := b.py.RunScript(ctx, b.cpuPy, []string{"--input", path, "--k", strconv.Itoa(sh.k),
					"--repeats", strconv.Itoa(b.repeats), "--seed", strconv.FormatUint(b.seed, 10), "--methods", methods, "--exact-once"},
					b.env, func(r bench.Record) { b.show(r, opt) })
				if err != nil {
					b.progress("cpu peers failed: %v", err)
				}
				peers = recs
				b.envs = append(b.envs, env)
				b.records = append(b.records, recs...)
			}
			find := func(peer, method string, p, q int) bench.Record {
				for _, r := range peers {
					if r.Peer == peer && r.Method == method && (method == "exact" || (r.P == p && r.Q == q)) {
						return r
					}
				}
				return bench.Record{Error: "not run"}
			}
			var def bench.Record
			for _, r := range peers {
				if r.Peer == "sklearn" && r.P == 10 {
					def = r
				}
			}
			for _, s := range []struct {
				fn     string
				method string
			}{{"sampling.QB", "rows"}, {"rsvd.QB", "gaussian"}} {
				l := bench.RunLoract(cpu.Backend{}, a.(lowrank.Matrix), a, sh.k, bench.Setting{Method: s.method, HostAPI: true}, 1, b.repeats, b.seed)
				b.show(l, opt)
				b.records = append(b.records, l)
				rows = append(rows, row{s.fn, bench.Shape(sh.m, sh.n, sh.k), dt, l, opt, find("numpy", s.method, 0, 0), find("sklearn", "randomized_svd", 0, 0), def})
			}
			if sh.m == 4096 && dt == "fp64" {
				l := bench.RunLoract(cpu.Backend{}, a.(lowrank.Matrix), a, sh.k, bench.Setting{Method: "exact"}, 0, 1, b.seed)
				b.show(l, opt)
				b.records = append(b.records, l)
				rows = append(rows, row{"exact.TruncatedSVD", bench.Shape(sh.m, sh.n, sh.k), dt, l, opt, find("scipy", "exact", 0, 0), bench.Record{}, bench.Record{}})
			}
		}
	}
	fmt.Fprintf(out, "\n| loract | shape | input | loract ms | err/opt | same algorithm in NumPy/SciPy: ms | err/opt | loract ÷ NumPy | (CPU time) | sklearn randomized_svd p=0 q=0: ms | err/opt | loract ÷ it | sklearn default p=10 q=auto: ms | err/opt | loract ÷ it |\n")
	fmt.Fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	cell := func(r bench.Record, opt float64) (string, string) {
		if !r.Ok() {
			return "-", "-"
		}
		return fmt.Sprintf("%.1f", r.Ms), fmt.Sprintf("%.3f", r.Err()/opt)
	}
	ratio := func(l, p bench.Record) string {
		if !l.Ok() || !p.Ok() {
			return "-"
		}
		return fmt.Sprintf("%.2f", l.Ms/p.Ms)
	}
	for _, r := range rows {
		lm, le := cell(r.l, r.opt)
		sm, se := cell(r.same, r.opt)
		pm, pe := cell(r.p0, r.opt)
		dm, de := cell(r.def, r.opt)
		defName := dm
		if r.def.Ok() {
			defName = fmt.Sprintf("%s (q=%d)", dm, r.def.Q)
		}
		cpuRatio := "-"
		if r.l.Ok() && r.same.Ok() && r.l.CPUMs > 0 && r.same.CPUMs > 0 {
			cpuRatio = fmt.Sprintf("%.2f", r.l.CPUMs/r.same.CPUMs)
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.fn, r.shape, r.dtype, lm, le, sm, se, ratio(r.l, r.same), cpuRatio, pm, pe, ratio(r.l, r.p0), defName, de, ratio(r.l, r.def))
	}
	return nil
}
