# lib.sh: helpers for a one-call device run script (source it from the
# repository root on the device, after `set -u`). It unpacks the carried
# .gpubin/*.gz, makes the scratch folder $S, writes the card and the start
# time into $S/rc.txt, and defines:
#   left                    seconds left before DEADLINE (default 560);
#   pack                    $S into $OUT/all.tgz, and $OUT/rc.txt (the
#                           device returns at most eight files);
#   step NAME DIR LIMIT OUT ARGS...
#                           .gpubin/NAME.test ARGS in DIR within LIMIT
#                           seconds into $S/OUT.txt, skipped if fewer are left;
#   demo BIN OUT            .gpubin/BIN demo -device gpu -torch=false
#                           -markdown -json into $S/OUT.{txt,log,json};
#   stepb BIN OUT           .gpubin/BIN bench -step -workers 0 -batch into
#                           $S/OUT.{md,log,jsonl};
#   tally SUITE...          the pass, skip and fail counts of $S/SUITE.txt;
#   finish                  the total time, pack, rc.txt and every failure.
# Each step appends its exit status and seconds to $S/rc.txt and packs.
S=$(mktemp -d); R=$PWD; T0=$SECONDS
export LD_LIBRARY_PATH=/usr/local/cuda/lib64 GOMODCACHE=$R/.gpubin/gomodcache
(cd .gpubin && gunzip -f ./*.gz && chmod +x ./*.test $(ls | grep -v -e '\.' -e gomodcache))
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; date -u; } > $S/rc.txt 2>&1
pack() { (cd $S && tar czf $OUT/all.tgz .); cp $S/rc.txt $OUT/rc.txt; }
left() { echo $((${DEADLINE:-560} - (SECONDS - T0))); }
step() { local name=$1 dir=$2 limit=$3 out=$4 t0=$SECONDS; shift 4
  [ $(left) -lt $limit ] && { echo "$out skipped, $(left)s left" >> $S/rc.txt; return; }
  (cd $dir && timeout $limit $R/.gpubin/$name.test "$@" > $S/$out.txt 2>&1)
  echo "$out rc=$? $((SECONDS - t0))s (limit ${limit}s)" >> $S/rc.txt; pack; }
demo() { local bin=$1 out=$2 t0=$SECONDS
  [ $(left) -lt 45 ] && { echo "$out skipped" >> $S/rc.txt; return; }
  timeout 45 .gpubin/$bin demo -device gpu -torch=false -markdown -json $S/$out.json > $S/$out.txt 2> $S/$out.log
  echo "$out rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
stepb() { local bin=$1 out=$2 t0=$SECONDS
  [ $(left) -lt 60 ] && { echo "$out skipped" >> $S/rc.txt; return; }
  timeout 60 .gpubin/$bin bench -step -workers 0 -batch -json $S/$out.jsonl > $S/$out.md 2> $S/$out.log
  echo "$out rc=$? $((SECONDS - t0))s" >> $S/rc.txt; pack; }
tally() { local f; for f in "$@"; do [ -f $S/$f.txt ] && echo "$f: $(grep -c -E '^--- PASS' $S/$f.txt) pass, $(grep -c -E '^--- SKIP' $S/$f.txt) skip, $(grep -c -E '^--- FAIL' $S/$f.txt) fail" >> $S/rc.txt; done; }
finish() { echo "total $((SECONDS - T0))s" >> $S/rc.txt; pack; cat $S/rc.txt
  grep -h -B3 -A25 -E -- '^--- FAIL' $S/*.txt | head -60; }
