#!/usr/bin/env bash
# Thirty-fourth session: the plateau spectrum beside SciPy's gesdd, three
# rounds alternating. Binary: go test -c -o /tmp/exact_head.test ./exact at
# eaf0cc7 (BenchmarkTruncatedSVD's spectrum=plateaus). Run from the
# repository root; output plateaus_vs_scipy.txt.
set -eu
cd exact
echo "# $(date -u) $(uptime)"
for r in 1 2 3; do
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 ../bench/results/exact_svd_2026-12-08_zen4/peer_plateaus.py | tail -1
  /tmp/exact_head.test -test.run '^$' -test.bench 'TruncatedSVD/spectrum=(plateaus|graded)' -test.benchtime 3x | grep Bench | awk '{printf "ours %s %.3f s (mean of 3)\n", $1, $3/1e9}'
done
echo "# $(date -u) $(uptime)"
