#!/usr/bin/env bash
# Thirty-fourth session: clusterAngle (exact/svd_gram.go) against the code
# before it, ten rounds alternating, the 4096×1024 exact SVD of the three
# spectra of BenchmarkTruncatedSVD (activation-like, graded, rank 100). Binaries: go test -c -o /tmp/exact_base.test
# ./exact at 4f12d31, and the same at the commit that added clusterAngle as
# /tmp/exact_new.test. Run from the repository root.
set -eu
cd exact
echo "# $(date -u) $(uptime)"
for r in $(seq 10); do
  for b in base new; do
    /tmp/exact_$b.test -test.run '^$' -test.bench 'TruncatedSVD/spectrum' -test.benchtime 2x | grep Bench | awk -v b=$b -v r=$r '{split($1,a,"/"); printf "round %d %s %s: %.0f ms, %s cpu-ms/op\n", r, b, a[2], $3/1e6, $5}'
  done
done
echo "# $(date -u) $(uptime)"
