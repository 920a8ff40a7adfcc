#!/usr/bin/env bash
# The same two binaries as run.sh, ten rounds alternating, the graded and
# activation-like 4096x1024 matrices only (two calls a benchmark); output
# ab.txt: binary, benchmark, ms per call, CPU ms per call.
cd exact
for r in $(seq 1 10); do for v in base new; do
  /tmp/exact_$v.test -test.run '^$' -test.bench 'TruncatedSVD/spectrum=(graded|activation)' -test.benchtime 2x | grep ns/op | awk -v v=$v '{print v, $1, $3/1e6, $5}'
done; done
