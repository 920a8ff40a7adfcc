#!/usr/bin/env bash
# Thirty-third session (AMD EPYC, Zen 4): the exact SVD 4096x1024 with the
# refinement's cluster step deferred while the tangents between the cluster
# and the other columns exceed √ε (a patch to refineColumns in
# exact/svd_gram.go, described in docs/exact-svd.md, "Thirty-third
# session"; not kept, so not in the tree), against the code as committed:
# base = 6e550d4 (built as /tmp/exact_base.test), new = 6e550d4 with the
# patch (/tmp/exact_new.test; `go test -c -o /tmp/exact_new.test ./exact`).
# Four rounds alternating base, new and SciPy (peer.py from
# docs/exact-svd.md, "Commands", in /tmp/peer.py; OpenBLAS 0.3.21 at its
# Cooperlake kernel). Run from the repository root.
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
