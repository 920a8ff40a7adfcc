#!/usr/bin/env bash
# Three rounds of ours then SciPy (SciPy first in round 2), exact SVD 4096x1024.
cd /work/main/exact
for r in 1 2 3; do
  echo "== round $r $(date -u +%T) $(uptime | sed 's/.*load/load/')"
  if [ $r = 2 ]; then env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 /tmp/peer.py 3; fi
  /tmp/exact.test -test.run '^$' -test.bench 'TruncatedSVD/m=4096' -test.benchtime 3x | grep Bench
  /tmp/exact.test -test.run '^$' -test.bench 'TruncatedSVD/dtype=f32/m=4096' -test.benchtime 3x | grep Bench
  /tmp/exact.test -test.run '^$' -test.bench 'TruncatedSVD/spectrum' -test.benchtime 3x | grep Bench
  if [ $r != 2 ]; then env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 /tmp/peer.py 3; fi
done
echo "== end $(date -u +%T) $(uptime | sed 's/.*load/load/')"
