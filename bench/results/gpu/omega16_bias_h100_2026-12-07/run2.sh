#!/usr/bin/env bash
# twenty-eighth session, second device call: the gpu suite again, with
# testSketchDeferred's Download into a Dense of another shape mended (the
# first call's panic stopped the suite after 7 tests).
set -u
: ${DEADLINE:=200}
. bench/gpudemo/lib.sh
step gpu gpu 150 gpu -test.v
tally gpu
finish
