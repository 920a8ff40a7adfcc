#!/usr/bin/env bash
# Thirty-fourth session: the refinement's smallAngle (exact/svd_gram.go)
# swept on the graded 4096×1024 exact SVD, with a temporary GEMM flop
# counter (flopcount.patch beside this script: internal/gemm counts
# 2·m·n·k per product, m·n·k per upper-triangle one, and
# BenchmarkTruncatedSVD reports GF/op). Builds one test binary per value
# from the working tree at its commit, then times them in rounds,
# alternating. Run from the repository root; the tree is restored after.
set -eu
git apply bench/results/exact_svd_2026-12-08_zen4/flopcount.patch
R=$PWD
trap 'cd $R && git checkout exact/exact_test.go internal/gemm/gemm.go exact/svd_gram.go' EXIT
vals="1e-4 1e-5 1e-6 1e-7 1e-8 1e-10"
for sa in $vals; do
  sed -i "s/\tsmallAngle      = .*/\tsmallAngle      = $sa/" exact/svd_gram.go
  go test -c -o /tmp/exact_sa_$sa.test ./exact/
done
cd exact
echo "# $(date -u) $(uptime)"
for sa in $vals; do
  echo "flops $sa: $(/tmp/exact_sa_$sa.test -test.run '^$' -test.bench 'TruncatedSVD/spectrum' -test.benchtime 1x | grep Bench | awk '{split($1,a,"/"); printf "%s %s GF/op  ", a[2], $5}')"
done
for r in 1 2 3 4 5 6 7 8; do
  for sa in 1e-4 1e-7 1e-8; do
    /tmp/exact_sa_$sa.test -test.run '^$' -test.bench 'TruncatedSVD/spectrum=graded' -test.benchtime 2x | grep Bench | awk -v s=$sa -v r=$r '{printf "round %d smallAngle %s: %.0f ms, %s GF/op, %s cpu-ms/op\n", r, s, $3/1e6, $5, $7}'
  done
done
echo "# $(date -u) $(uptime)"
