#!/usr/bin/env bash
# Thirty-fifth session (Zen 4): the graded 4096×1024 exact SVD beside SciPy,
# ten rounds alternating b02a9ed's test binary (go test -c -o
# /tmp/exact_head.test ./exact; three calls, mean) and peer_graded.py (min of
# three, OpenBLAS 0.3.21 Cooperlake, 2 threads). Output graded_rounds.txt.
# Run from the repository root.
set -eu
D=$(pwd)/bench/results/exact_svd_2026-12-08b_zen4
cd exact
echo "# $(date -u) $(uptime)"
for r in 1 2 3 4 5 6 7 8 9 10; do
  ours=$(/tmp/exact_head.test -test.run '^$' -test.bench 'TruncatedSVD/spectrum=graded' -test.benchtime 3x | awk '/Bench/{print $3/1e9}')
  peer=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 $D/peer_graded.py | awk '{print $NF=="s" ? $(NF-1) : $NF}')
  echo "$r ours $ours scipy $peer ratio $(python3 -c "print(round($ours/$peer, 2))")"
done
echo "# $(date -u) $(uptime)"
