#!/bin/sh
# Usage: bench_sgemm.sh TEST_BINARY ROUNDS THREADS [KERNEL]
#
# Rounds of ours (BenchmarkSgemm with micro-kernel KERNEL, default avx512)
# against NumPy float32 (numpy_sgemm.py: numpy.dot = OpenBLAS sgemm) with
# OpenBLAS's own choice of kernel (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
# unset) and with its SkylakeX and Haswell kernels forced, on THREADS
# threads. Each round runs all of them back to back inside one flock on
# /tmp/loract-bench.lock, so that timings of others who take the lock do
# not overlap, and prints the load average before and after.
# summarize_sgemm.py turns the output into a best-of-rounds table.
set -e
bin=$1 rounds=$2 p=$3 kern=${4:-avx512}
dir=$(dirname "$0")
for r in $(seq "$rounds"); do
	flock /tmp/loract-bench.lock sh -c "
		echo round $r threads $p start \$(date -u +%FT%TZ) load \$(cat /proc/loadavg)
		GOMAXPROCS=$p '$bin' -test.run XXX -test.bench 'BenchmarkSgemm\$/kernel=$kern/' -test.benchtime 3x
		env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=$p /usr/bin/python3 '$dir/numpy_sgemm.py' 3
		env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=$p /usr/bin/python3 '$dir/numpy_sgemm.py' 3
		env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=$p /usr/bin/python3 '$dir/numpy_sgemm.py' 3
		echo round $r end \$(date -u +%FT%TZ) load \$(cat /proc/loadavg)
	"
done
