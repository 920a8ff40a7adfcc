#!/usr/bin/env bash
# Thirty-first session: the exact SVD 4096x1024 with the Cholesky QR of W
# (exact/cholqr.go), against the code before (1c3123a, built
# as /tmp/exact_base.test; the new one as /tmp/exact_new.test): three rounds alternating
# base, new and SciPy (peer.py from docs/exact-svd.md, "Commands", in
# /tmp/peer.py). Run from the repository root.
cd exact
for r in 1 2 3; do
  echo "== round $r $(date -u +%T) $(uptime | sed 's/.*load/load/')"
  for v in base new; do
    bin=/tmp/exact_new.test; [ $v = base ] && bin=/tmp/exact_base.test
    echo "-- $v"
    $bin -test.run '^$' -test.bench 'TruncatedSVD/m=4096' -test.benchtime 3x | grep Bench
    $bin -test.run '^$' -test.bench 'TruncatedSVD/spectrum' -test.benchtime 3x | grep Bench
  done
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 /tmp/peer.py 3
done
echo "== end $(date -u +%T) $(uptime | sed 's/.*load/load/')"
