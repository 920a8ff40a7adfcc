#!/usr/bin/env bash
# Thirty-fifth session: the refinement on R with relaxed pairs and one
# orthonormalization (exact/svd_gram.go refine, exact/cholqr.go
# orthonormalizeColumns) against the code before it; output ab_relaxed.txt
# (columns: round, binary, benchmark, ms, cpu-ms/op). Binaries, each with
# bench/results/exact_svd_2026-12-08_zen4/spectra_time_test.go.txt copied in
# as exact/zz_spectra_test.go (the geometric and step spectra): go test -c
# -o /tmp/exsp_base.test ./exact at 689606d, and the same with the change
# as /tmp/exsp_relax.test. Eight rounds alternating, one call of each
# benchmark a round. Run from the repository root.
set -eu
cd exact
echo "# $(date -u) $(uptime)"
for r in 1 2 3 4 5 6 7 8; do
  for b in base relax; do
    /tmp/exsp_$b.test -test.run '^$' -test.bench 'TruncatedSVD/(spectrum|m=4096$)|SpectraTmp/(steps|geom=8|geom=12|geom=16|geom=20)' -test.benchtime 1x | grep Bench | awk -v b=$b -v r=$r '{print r, b, $1, int($3/1e6), $5}'
  done
done
echo "# $(date -u) $(uptime)"
