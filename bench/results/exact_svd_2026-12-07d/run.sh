#!/usr/bin/env bash
# Thirty-second session: the exact SVD 4096x1024 after this session's
# changes (the tridiagonalization's panel in rows, DotAxpy's reduction in
# assembly, tiled transposes, Cholesky QR for the eigenvectors'
# orthonormalization and the blocked Cholesky's upper-triangle update,
# tri.MulUpper, the series of √(I − S) for the simultaneous rotations, the
# partial Gram update and the R route's first round from WᵀW), against the
# code before: base = 0198b96 (built as /tmp/exact_base.test), new = HEAD
# (/tmp/exact_new.test; `go test -c -o /tmp/exact_new.test ./exact`). Four
# rounds alternating base, new and SciPy (peer.py from docs/exact-svd.md,
# "Commands", in /tmp/peer.py; OpenBLAS 0.3.21 at its Cooperlake kernel).
# Run from the repository root.
cd exact
for r in 1 2 3 4; do
  echo "== round $r $(date -u +%T) $(uptime | sed 's/.*load/load/')"
  for v in base new; do
    bin=/tmp/exact_new.test; [ $v = base ] && bin=/tmp/exact_base.test
    echo "-- $v"
    $bin -test.run '^$' -test.bench 'TruncatedSVD/(dtype=f32|m=4096)' -test.benchtime 3x | grep Bench
    $bin -test.run '^$' -test.bench 'TruncatedSVD/spectrum' -test.benchtime 3x | grep Bench
  done
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 /tmp/peer.py 3
done
echo "== end $(date -u +%T) $(uptime | sed 's/.*load/load/')"
