package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cmd/loract/internal/progress"
	"github.com/loract/loract/cpu"
	"github.com/loract/loract/internal/npy"
	"github.com/loract/loract/lowrank"
	"github.com/loract/loract/rsvd"
)

func TestComparisonCheck(t *testing.T) {
	ok := Comparison{M: 40, N: 20, K: 5, Dtype: "fp32"}
	require.NoError(t, ok.Check("cpu"))
	require.NoError(t, ok.Check("gpu"))
	for _, tc := range []struct {
		c       Comparison
		backend string
		want    string
	}{
		{Comparison{M: 0, N: 20, K: 5, Dtype: "fp32"}, "cpu", "at least 1×1"},
		{Comparison{M: 40, N: 20, K: 0, Dtype: "fp32"}, "cpu", "rank k = 0"},
		{Comparison{M: 40, N: 20, K: 21, Dtype: "fp32"}, "cpu", "min(m, n) = 20"},
		{Comparison{M: 40, N: 20, K: 5, Dtype: "bf16"}, "cpu", `"bf16" is not one of the cpu backend's`},
		{Comparison{M: 40, N: 20, K: 5, Dtype: "fp64"}, "gpu", `"fp64" is not one of the gpu backend's`},
		{ok, "tpu", `unknown backend "tpu"`},
	} {
		err := tc.c.Check(tc.backend)
		require.Error(t, err, "%+v", tc.c)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// TestSettings: the headline settings come first, the fair grid adds
// each missing (method, p, q) once, and the exact SVD comes last.
func TestSettings(t *testing.T) {
	c := Comparison{M: 4096, N: 1024, K: 64, Fair: true, Exact: true}
	head, all := c.Settings()
	require.Len(t, head, 8)
	assert.Equal(t, all[:7], head[:7], "headline settings first")
	assert.Equal(t, Setting{Method: activation.Gaussian, SVDForm: true, P: 10, Q: 7, Norm: rsvd.LU}, head[5], "scikit-learn's default: q = 7 for k < 0.1·n")
	// 7 headline + 12 grid − 4 already there (rows q=0,1 and gaussian
	// q=0,1 at p=0) + the exact SVD.
	assert.Len(t, all, 7+12-4+1)
	for i, s := range all {
		for _, u := range all[:i] {
			assert.False(t, s.Same(u), "%v twice", s)
		}
	}
	assert.Equal(t, activation.ExactSVD, all[len(all)-1].Method)

	c = Comparison{M: 100, N: 50, K: 10}
	head, all = c.Settings()
	assert.Equal(t, head, all, "no grid, no exact")
	assert.Equal(t, 4, head[5].Q, "k ≥ 0.1·min(m, n): scikit-learn's q = 4")
}

// TestHeadline: the records of the headline settings are kept in order;
// the normaliser counts only where it acts.
func TestHeadline(t *testing.T) {
	rec := func(method, norm string, p, q int) Record {
		return Record{Peer: "loract", Method: method, Norm: norm, P: p, Q: q}
	}
	head := []Setting{{Method: activation.RowSampling, Q: 1}, {Method: activation.Gaussian}, {Method: activation.Gaussian, SVDForm: true, Q: 2, Norm: rsvd.QR}, {Method: activation.ExactSVD}}
	recs := []Record{
		rec("rows", "", 0, 0),       // not headline
		rec("rows", "", 0, 1),       // headline
		rec("gaussian", "lu", 0, 0), // q = 0: normaliser irrelevant
		rec("svd", "lu", 0, 2),      // wrong normaliser
		rec("svd", "qr", 0, 2),      // headline
		rec("exact", "", 0, 0),      // headline
		{Peer: "numpy", Method: "rows", Q: 1},
		rec("randomized_svd", "", 10, 7),
	}
	got := Headline(recs, head)
	assert.Equal(t, []Record{recs[1], recs[2], recs[4], recs[5]}, got)
}

func TestPeerArgs(t *testing.T) {
	c := Comparison{M: 64, N: 32, K: 4, Dtype: "bf16", Fair: true}
	cpuArgs, torchArgs := c.PeerArgs("/tmp/a.npy", 3, 9, false, "cuda", "bf16")
	assert.Equal(t, []string{"--input", "/tmp/a.npy", "--k", "4", "--repeats", "3", "--seed", "9", "--skip-exact", "--exact-once",
		"--methods", "rows,gaussian,randomized_svd,randomized_svd_grid,exact", "--power-iters", "0,1,2", "--oversample", "0,10"}, cpuArgs)
	assert.Equal(t, []string{"--input", "/tmp/a.npy", "--k", "4", "--repeats", "3", "--seed", "9", "--skip-exact", "--exact-once",
		"--device", "cuda", "--dtype", "bf16", "--methods", "rows,gaussian,svd_lowrank,exact", "--power-iters", "0,1,2", "--oversample", "0,10",
		"--niter", "0,1,2", "--torch-oversample", "0"}, torchArgs)
	c.Fair = false
	cpuArgs, _ = c.PeerArgs("a.npy", 1, 0, true, "cpu", "fp32")
	assert.NotContains(t, cpuArgs, "--skip-exact")
	assert.Equal(t, []string{"--power-iters", "0,1", "--oversample", "0"}, cpuArgs[len(cpuArgs)-4:])
}

// peerRecords returns what the stand-in peers print for a comparison of
// m×n at rank k: the NumPy rows QB at p = 0, q = 1, scikit-learn's
// default, the SciPy SVD, and one PyTorch record per script.
func peerRecords(m, n, k int, dtype string) map[Script][]Record {
	rec := func(peer, method string, p, q int, ms float64) Record {
		return Record{Peer: peer, Method: method, Device: "cpu", Dtype: dtype, M: m, N: n, K: k, P: p, Q: q,
			Ms: ms, Repeats: 1, RelError: 0.5}
	}
	return map[Script][]Record{
		CPUPeers:  {rec("numpy", "rows", 0, 1, 2), rec("sklearn", "randomized_svd", 10, 4, 9), rec("scipy", "exact", 0, 0, 30)},
		TorchPeer: {rec("torch", "svd_lowrank", 0, 2, 5)},
	}
}

func newTestSession(t *testing.T, peers Runner, have ...string) (*Session, *bytes.Buffer) {
	var log bytes.Buffer
	s := &Session{Log: progress.NewLog(&log), Peers: peers, Have: map[string]bool{}, Dir: t.TempDir(), Repeats: 1, Seed: 3,
		Torch: true, FairKernels: true, CPU: ParseCPUInfo(cpuinfo(avx512Flags)), Env: []string{"PATH=/usr/bin"}}
	for _, m := range have {
		s.Have[m] = true
	}
	return s, &log
}

// TestCompare runs the whole comparison on a small matrix with stand-in
// peers: the scripts get the input file and the grid, the BLAS kernel is
// chosen once per script and printed in the header, the records carry
// it, and the tables pair loract with the peers.
func TestCompare(t *testing.T) {
	const m, n, k = 96, 48, 4
	peers := &fakePeers{lib: "openblas", def: "Prescott", forced: map[string][2]string{"SkylakeX": {"SkylakeX", "ok"}},
		recs: peerRecords(m, n, k, "fp32")}
	s, log := newTestSession(t, peers, "numpy", "scipy", "sklearn", "torch")
	var out bytes.Buffer
	c := Comparison{M: m, N: n, K: k, Dtype: "fp32", Exact: true, Fair: true, Markdown: true}
	require.NoError(t, s.Compare(context.Background(), &out, cpu.Backend{}, c))

	// Each script: two probes (Prescott, then SkylakeX), one run under
	// SkylakeX with the comparison's arguments.
	require.Equal(t, 1, peers.runs(CPUPeers))
	require.Equal(t, 1, peers.runs(TorchPeer))
	var input string
	for _, call := range peers.calls {
		if call.args[0] == "--probe" {
			continue
		}
		assert.Equal(t, "SkylakeX", call.core, "%s runs its best kernel", call.script)
		require.Equal(t, "--input", call.args[0])
		input = call.args[1]
	}
	got, err := npy.ReadFile(input)
	require.NoError(t, err)
	require.IsType(t, &lowrank.Dense32{}, got)
	assert.Equal(t, Activation(m, n, 3).A32.Data, got.(*lowrank.Dense32).Data)

	_, all := c.Settings()
	require.Len(t, s.Records, len(all)+4, "loract's settings, then the 4 peer records")
	for _, r := range s.Records[:len(all)] {
		assert.True(t, r.Ok(), "%v: %s", r.Setting(), r.Error)
		assert.Empty(t, r.Kernel)
	}
	kernel := "openblas 0.3.21 SkylakeX, 2 threads (OPENBLAS_CORETYPE=SkylakeX; its own choice: Prescott)"
	for _, r := range s.Records[len(all):] {
		assert.Equal(t, kernel, r.Kernel, r.Label())
	}
	require.Len(t, s.Envs, 2)
	assert.Equal(t, kernel, s.Envs[0]["kernel"])
	assert.Equal(t, "Prescott", s.Envs[0]["kernel_default"])
	assert.Equal(t, "cpu_peers.py", s.Envs[0]["script"])

	o := out.String()
	assert.Contains(t, o, "peer BLAS kernel, cpu_peers.py: "+kernel)
	assert.Contains(t, o, "peer BLAS kernel, torch_peer.py: "+kernel)
	assert.Contains(t, o, "| rows | p=0 q=1 |")
	assert.Regexp(t, `\| rows \| p=0 q=1 \| [0-9.]+ \| [0-9.]+ \| numpy rows \| 2.00 \|`, o)
	assert.Regexp(t, `\| svd \| p=0 q=2 qr \| [0-9.]+ \| [0-9.]+ \| torch svd_lowrank \| 5.00 \|`, o)
	assert.Regexp(t, `\| exact \| - \| [0-9.]+ \| 1.000 \| scipy exact \| 30.0 \|`, o)
	assert.Contains(t, o, "Fair comparison")
	assert.Contains(t, log.String(), "cpu_peers.py: OpenBLAS chose Prescott on this SkylakeX CPU")
}

// TestComparePeerErrors: a missing module skips its peer without calling
// it; a script that fails leaves its records so far and the comparison
// goes on.
func TestComparePeerErrors(t *testing.T) {
	const m, n, k = 64, 32, 3
	c := Comparison{M: m, N: n, K: k, Dtype: "fp64"}
	ctx := context.Background()

	// No numpy: no peer runs, every loract row says so.
	peers := &fakePeers{lib: "openblas", def: "Cooperlake", recs: peerRecords(m, n, k, "fp64")}
	s, log := newTestSession(t, peers, "torch")
	var out bytes.Buffer
	require.NoError(t, s.Compare(ctx, &out, cpu.Backend{}, c))
	assert.Empty(t, peers.calls)
	assert.Contains(t, log.String(), "no peer runs")
	assert.Equal(t, 7, strings.Count(out.String(), "(no peer)"), out.String())
	assert.NotContains(t, out.String(), "peer BLAS kernel")

	// No torch: only the CPU peers run.
	peers = &fakePeers{lib: "openblas", def: "Cooperlake", recs: peerRecords(m, n, k, "fp64")}
	s, _ = newTestSession(t, peers, "numpy", "scipy", "sklearn")
	out.Reset()
	require.NoError(t, s.Compare(ctx, &out, cpu.Backend{}, c))
	assert.Equal(t, 1, peers.runs(CPUPeers))
	assert.Zero(t, peers.runs(TorchPeer))
	assert.Contains(t, out.String(), "peer BLAS kernel, cpu_peers.py: openblas 0.3.21 Cooperlake, 2 threads\n")

	// The CPU peer script fails after one record.
	peers = &fakePeers{lib: "openblas", def: "Cooperlake", recs: peerRecords(m, n, k, "fp64"),
		fail: map[Script]error{CPUPeers: errors.New("python3 cpu_peers.py: exit status 1: MemoryError")}}
	peers.recs[CPUPeers] = peers.recs[CPUPeers][:1]
	s, log = newTestSession(t, peers, "numpy", "torch")
	out.Reset()
	require.NoError(t, s.Compare(ctx, &out, cpu.Backend{}, c))
	assert.Contains(t, log.String(), "cpu_peers.py failed: python3 cpu_peers.py: exit status 1: MemoryError")
	assert.Equal(t, 1, peers.runs(TorchPeer), "the PyTorch peer still runs")
	assert.Contains(t, out.String(), "numpy rows", "the record before the failure is in the table")
	assert.Len(t, s.Records, 7+1+1)

	// The input cannot be written: Compare fails, naming the file.
	s, _ = newTestSession(t, peers, "numpy")
	s.Dir = filepath.Join(t.TempDir(), "gone")
	err := s.Compare(ctx, &out, cpu.Backend{}, c)
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
}

// TestCoreRows builds the core table from fixed records.
func TestCoreRows(t *testing.T) {
	sh := CoreShape{M: 8, N: 4, K: 2, Exact: true}
	rec := func(peer, method string, p, q int, ms float64) Record {
		return Record{Peer: peer, Method: method, P: p, Q: q, Ms: ms, CPUMs: ms, Repeats: 1, RelError: 0.2}
	}
	loract := []Record{rec("loract", "rows", 0, 0, 1), rec("loract", "gaussian", 0, 0, 2), rec("loract", "exact", 0, 0, 8)}
	peers := []Record{rec("numpy", "rows", 0, 0, 4), rec("sklearn", "randomized_svd", 0, 0, 5), rec("sklearn", "randomized_svd", 10, 7, 20),
		rec("scipy", "exact", 0, 0, 4)}
	rows := CoreRows(sh, "fp64", 0.1, loract, peers)
	require.Len(t, rows, 3)
	assert.Equal(t, "sampling.QB", rows[0].Func)
	assert.Equal(t, peers[0], rows[0].Same)
	assert.Equal(t, "rsvd.QB", rows[1].Func)
	assert.Equal(t, "not run", rows[1].Same.Error, "no NumPy gaussian record")
	assert.Equal(t, peers[2], rows[1].Default)
	assert.Equal(t, "exact.TruncatedSVD", rows[2].Func)
	assert.Equal(t, peers[3], rows[2].Same)
	var buf bytes.Buffer
	WriteCoreTable(&buf, rows)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 5)
	assert.Equal(t, "| sampling.QB | 8×4 k=2 | fp64 | 1.0 | 2.000 | 4.0 | 2.000 | 0.25 | 0.25 | 5.0 | 2.000 | 0.20 | 20.0 (q=7) | 2.000 | 0.05 |", lines[2])
	assert.Equal(t, "| rsvd.QB | 8×4 k=2 | fp64 | 2.0 | 2.000 | - | - | - | - | 5.0 | 2.000 | 0.40 | 20.0 (q=7) | 2.000 | 0.10 |", lines[3])
	assert.Equal(t, "| exact.TruncatedSVD | 8×4 k=2 | fp64 | 8.0 | 2.000 | 4.0 | 2.000 | 2.00 | 2.00 | - | - | - | - | - | - |", lines[4])
}

// TestCore runs the core table on a small shape with stand-in peers.
func TestCore(t *testing.T) {
	peers := &fakePeers{lib: "openblas", def: "Cooperlake"}
	s, _ := newTestSession(t, peers, "numpy", "sklearn", "scipy")
	var out bytes.Buffer
	require.NoError(t, s.Core(context.Background(), &out, []CoreShape{{M: 64, N: 32, K: 4, Exact: true}}, 1))
	assert.Equal(t, 2, peers.runs(CPUPeers), "fp64 and fp32")
	assert.Contains(t, peers.calls[1].args, "rows,gaussian,randomized_svd,randomized_svd_p0q0,exact", "the exact SVD in fp64")
	assert.NotContains(t, peers.calls[2].args, "rows,gaussian,randomized_svd,randomized_svd_p0q0,exact", "not in fp32")
	o := out.String()
	assert.Contains(t, o, "peer BLAS kernel, cpu_peers.py: openblas 0.3.21 Cooperlake")
	assert.Equal(t, 2+5, strings.Count(o, "\n|"), "header, separator, 2 + 2 QB rows and one exact row:\n%s", o)
	assert.Len(t, s.Records, 5)
}

// TestCoreRounds runs the core table in three rounds: the peers run three
// times per entry, every record is kept with its round, and the table's
// loract ÷ NumPy cells give the range over the rounds.
func TestCoreRounds(t *testing.T) {
	numpy := func(method string) Record {
		return Record{Peer: "numpy", Method: method, Device: "cpu", Dtype: "fp64", M: 64, N: 32, K: 4, Ms: 2, Repeats: 1, RelError: 0.5}
	}
	peers := &fakePeers{lib: "openblas", def: "Cooperlake", recs: map[Script][]Record{CPUPeers: {numpy("rows"), numpy("gaussian")}}}
	s, log := newTestSession(t, peers, "numpy", "sklearn", "scipy")
	var out bytes.Buffer
	require.Error(t, s.Core(context.Background(), &out, nil, 0), "no rounds")
	require.NoError(t, s.Core(context.Background(), &out, []CoreShape{{M: 64, N: 32, K: 4}}, 3))
	assert.Equal(t, 2*3, peers.runs(CPUPeers), "fp64 and fp32, three rounds each")
	rounds := map[int]int{}
	for _, r := range s.Records {
		if r.Peer == "loract" {
			rounds[r.Round]++
		}
	}
	assert.Equal(t, map[int]int{0: 4, 1: 4, 2: 4}, rounds, "two loract records per entry and round")
	o := out.String()
	assert.Equal(t, 4, strings.Count(o, "in 3 rounds)"), "every QB row has a NumPy peer:\n%s", o)
	// Rounds 1 and 3 run the peers before loract, round 2 after: in the
	// log, the first entry's loract lines come after its round-1 peers
	// line and before its round-2 one.
	lines := strings.Split(log.String(), "\n")
	at := func(pred func(string) bool) int {
		return slices.IndexFunc(lines, pred)
	}
	p1 := at(func(l string) bool { return strings.Contains(l, "peers on 64×32 k=4 fp64 (round 1 of 3)") })
	p2 := at(func(l string) bool { return strings.Contains(l, "peers on 64×32 k=4 fp64 (round 2 of 3)") })
	var loract []int
	for n, l := range lines[:max(p2, 0)] {
		if strings.Contains(l, "loract") && strings.Contains(l, "fp64") {
			loract = append(loract, n)
		}
	}
	require.True(t, p1 >= 0 && p2 > p1, "the peers' progress lines:\n%s", log)
	require.Len(t, loract, 4, "rounds 1 and 2 of loract's fp64 rows before round 2's peers:\n%s", log)
	assert.Greater(t, loract[0], p1, "round 1: peers, then loract")
	assert.Less(t, loract[3], p2, "round 2: loract, then peers")
}

// TestMergeRounds checks the merge of three rounds: medians of Ms and
// CPUMs, the smallest MsMin, summed repeats, records matched by setting
// (not position), and a failure in any round kept.
func TestMergeRounds(t *testing.T) {
	rec := func(method string, ms float64) Record {
		return Record{Peer: "numpy", Method: method, Ms: ms, CPUMs: 2 * ms, MsMin: ms - 1, Repeats: 7, RelError: 0.1}
	}
	bad := rec("gaussian", 0)
	bad.Error = "crashed"
	got := MergeRounds([][]Record{
		{rec("rows", 10), rec("gaussian", 20)},
		{rec("gaussian", 26), rec("rows", 14)}, // another order
		{rec("rows", 11), bad},
	})
	require.Len(t, got, 2)
	assert.Equal(t, Record{Peer: "numpy", Method: "rows", Ms: 11, CPUMs: 22, MsMin: 9, Repeats: 21, RelError: 0.1}, got[0])
	assert.Equal(t, "crashed", got[1].Error)
	assert.Equal(t, "not run in every round", MergeRounds([][]Record{{rec("rows", 1)}, {}})[0].Error)
	assert.Equal(t, []Record{rec("rows", 3)}, MergeRounds([][]Record{{rec("rows", 3)}}))
}

// TestPlotRuns runs the timing series of the plots on small shapes with
// stand-in peers.
func TestPlotRuns(t *testing.T) {
	peers := &fakePeers{lib: "openblas", def: "Cooperlake"}
	s, _ := newTestSession(t, peers, "numpy", "torch")
	recs, err := s.TimeVsSize(context.Background(), [][2]int{{64, 16}, {128, 32}})
	require.NoError(t, err)
	assert.Len(t, recs, 6, "rows, gaussian and exact at each size")
	for _, r := range recs {
		assert.True(t, r.Ok(), r.Error)
		assert.Equal(t, r.N/16, r.K)
	}
	assert.Equal(t, 2, peers.runs(CPUPeers))
	assert.Equal(t, 2, peers.runs(TorchPeer))

	recs, opt, err := s.ParetoGrid(context.Background(), 64, 32, 4, []int{0, 1}, []int{0, 2})
	require.NoError(t, err)
	assert.Len(t, recs, 2*2*2)
	assert.Equal(t, Activation(64, 32, 3).Optimal(4), opt)
	assert.Len(t, s.Records, 6+8)
}

// TestFmtRatio: two decimals, and three significant digits below 0.1,
// where 0.0142 must not read as the 0.01 of a target.
func TestFmtRatio(t *testing.T) {
	for r, want := range map[float64]string{0.52: "0.52", 1.234: "1.23", 0.0142: "0.0142", 0.1: "0.10", 0.0999: "0.0999"} {
		assert.Equal(t, want, fmtRatio(r), "%v", r)
	}
}
