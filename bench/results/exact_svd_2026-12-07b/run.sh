#!/usr/bin/env bash
# Thirtieth session: the exact SVD 4096x1024 after the gemm yield and
# claimed pieces (50f4d12), against the same code before (68579a9, built
# in a git worktree as /tmp/exact_base.test): three rounds alternating
# base, new and SciPy (peer.py from docs/exact-svd.md, "Commands", in
# /tmp/peer.py). Run from the repository root.
cd exact
for r in 1 2 3; do
  echo "== round $r $(date -u +%T) $(uptime | sed 's/.*load/load/')"
  for v in base new; do
    bin=/tmp/exact.test; [ $v = base ] && bin=/tmp/exact_base.test
    echo "-- $v"
    $bin -test.run '^$' -test.bench 'TruncatedSVD/m=4096' -test.benchtime 3x | grep Bench
    $bin -test.run '^$' -test.bench 'TruncatedSVD/spectrum' -test.benchtime 3x | grep Bench
  done
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 /tmp/peer.py 3
done
echo "== end $(date -u +%T) $(uptime | sed 's/.*load/load/')"
