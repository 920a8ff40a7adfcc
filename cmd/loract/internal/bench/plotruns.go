package bench

import (
	"context"
	"strconv"

	"github.com/loract/loract/activation"
	"github.com/loract/loract/cpu"
)

// TimeSizes are the shapes of the time-vs-size plot (k = n/16).
var TimeSizes = [][2]int{{1024, 256}, {2048, 512}, {4096, 1024}, {8192, 2048}}

// timeExactMax is the largest m·n at which the time-vs-size runs include
// the exact SVD (seconds at 4096×1024, minutes beyond).
const timeExactMax = 4096 * 1024

// TimeVsSize times, on each m×n of sizes at k = n/16 with float32 input,
// loract's row-sampled and Gaussian QB (p = 0, q = 0) and the exact SVD
// (up to 4096×1024), and the peers' versions (NumPy, scikit-learn's
// default randomized_svd, SciPy's SVD; PyTorch's rows, svd_lowrank and
// SVD on the CPU). The records join s.Records and are returned.
func (s *Session) TimeVsSize(ctx context.Context, sizes [][2]int) ([]Record, error) {
	var recs []Record
	for i, sz := range sizes {
		m, n := sz[0], sz[1]
		k := max(1, n/16)
		s.Logf("time vs size %d/%d: %s", i+1, len(sizes), Shape(m, n, k))
		x := s.Matrix(m, n)
		opt := x.Optimal(k)
		settings := []Setting{{Method: activation.RowSampling}, {Method: activation.Gaussian}}
		exact := m*n <= timeExactMax
		if exact {
			settings = append(settings, Setting{Method: activation.ExactSVD})
		}
		recs = append(recs, s.TimeLoract(cpu.Backend{}, x.A32, nil, k, settings, opt)...)
		if !s.HasPeer(CPUPeers) {
			continue
		}
		path, err := s.Input(x, "fp32")
		if err != nil {
			return recs, err
		}
		common := []string{"--input", path, "--k", strconv.Itoa(k), "--repeats", strconv.Itoa(s.Repeats), "--exact-once"}
		if !exact {
			common = append(common, "--skip-exact")
		}
		recs = append(recs, s.RunPeer(ctx, CPUPeers, append(common, "--methods", "rows,gaussian,randomized_svd,exact"), opt)...)
		if s.HasPeer(TorchPeer) {
			recs = append(recs, s.RunPeer(ctx, TorchPeer, append(common, "--methods", "rows,svd_lowrank,exact", "--device", "cpu"), opt)...)
		}
	}
	s.Records = append(s.Records, recs...)
	return recs, nil
}

// ParetoGrid times every method × q ∈ qs × p ∈ ps on the m×n matrix at
// rank k (float32): loract's row-sampled and Gaussian QB, scikit-learn's
// randomized_svd on the same grid and at its default, PyTorch's
// svd_lowrank with niter ∈ qs. It returns the records (which join
// s.Records) and the optimal error.
func (s *Session) ParetoGrid(ctx context.Context, m, n, k int, qs, ps []int) ([]Record, float64, error) {
	x := s.Matrix(m, n)
	opt := x.Optimal(k)
	s.Logf("Pareto front on %s: q ∈ %v, p ∈ %v", Shape(m, n, k), qs, ps)
	var settings []Setting
	for _, meth := range []activation.Method{activation.RowSampling, activation.Gaussian} {
		for _, q := range qs {
			for _, p := range ps {
				settings = append(settings, Setting{Method: meth, P: p, Q: q})
			}
		}
	}
	recs := s.TimeLoract(cpu.Backend{}, x.A32, nil, k, settings, opt)
	if s.HasPeer(CPUPeers) {
		path, err := s.Input(x, "fp32")
		if err != nil {
			return recs, opt, err
		}
		common := []string{"--input", path, "--k", strconv.Itoa(k), "--repeats", strconv.Itoa(s.Repeats), "--power-iters", ints(qs...), "--oversample", ints(ps...)}
		recs = append(recs, s.RunPeer(ctx, CPUPeers, append(common, "--methods", "randomized_svd,randomized_svd_grid"), opt)...)
		if s.HasPeer(TorchPeer) {
			recs = append(recs, s.RunPeer(ctx, TorchPeer, append(common, "--methods", "svd_lowrank", "--niter", ints(qs...), "--device", "cpu"), opt)...)
		}
	}
	s.Records = append(s.Records, recs...)
	return recs, opt, nil
}
