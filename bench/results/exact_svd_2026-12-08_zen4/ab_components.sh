#!/usr/bin/env bash
# Thirty-fourth session: the refinement's clusters split into connected
# components (exact/svd_gram.go, clusterComponents) against the code before
# it; output ab_components.txt (columns: round, binary, benchmark, ms,
# cpu-ms/op). Binaries, each with spectra_time_test.go.txt copied in as
# exact/zz_spectra_test.go (the geometric and plateau spectra): go test -c
# -o /tmp/exsp_base2.test ./exact at 4f12d31, and the same at 898bc0c (the change)
# as /tmp/exsp_comp.test. Eight rounds alternating, one call of
# each benchmark a round. Run from the repository root.
set -eu
cd exact
echo "# $(date -u) $(uptime)"
for r in 1 2 3 4 5 6 7 8; do
  for b in base2 comp; do
    /tmp/exsp_$b.test -test.run '^$' -test.bench 'TruncatedSVD/(spectrum|m=4096$)|SpectraTmp/(steps|geom=16|geom=20)' -test.benchtime 1x | grep Bench | awk -v b=$b -v r=$r '{print r, b, $1, int($3/1e6), $5}'
  done
done
echo "# $(date -u) $(uptime)"
