#!/usr/bin/env bash
# Thirty-fifth session (AMD EPYC, Zen 4): the exact SVD 4096×1024 table,
# four rounds alternating base = 689606d (go test -c -o
# /tmp/exact_base.test ./exact), new = b02a9ed (relaxed pairs on R orthonormalized once;
# /tmp/exact_head.test) and SciPy
# (peer.py from docs/exact-svd.md, "Commands", in /tmp/peer.py, and
# ../exact_svd_2026-12-08_zen4/peer_plateaus.py; OpenBLAS 0.3.21 at its Cooperlake
# kernel). Run from the repository root; output table.txt.
cd exact
for r in 1 2 3 4; do
  echo "== round $r $(date -u +%T) $(uptime | sed 's/.*load/load/')"
  for v in base new; do
    bin=/tmp/exact_head.test; [ $v = base ] && bin=/tmp/exact_base.test
    echo "-- $v"
    $bin -test.run '^$' -test.bench 'TruncatedSVD/(dtype=f32|m=4096)' -test.benchtime 3x | grep Bench
    $bin -test.run '^$' -test.bench 'TruncatedSVD/spectrum' -test.benchtime 3x | grep Bench
  done
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 /tmp/peer.py 3
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 ../bench/results/exact_svd_2026-12-08_zen4/peer_plateaus.py | tail -1
done
echo "== end $(date -u +%T) $(uptime | sed 's/.*load/load/')"
