#!/usr/bin/env bash
# pack.sh DIR [KEEP ...]: moves every file under DIR except DIR/KEEP ...
# into one archive DIR/all.tgz (unpack with tar xzf all.tgz), for runs on
# a device that returns only a few files of its output folder (eight on
# the project's device: docs/gpu-demo.md, "The device run"). seeds.sh,
# ranksweep.sh and device.sh call it at their end when PACK=1. An all.tgz
# already in DIR is replaced.
set -eu
dir=$1
shift
cd "$dir"
keep=(-name all.tgz)
for k in "$@"; do
	keep+=(-o -path "./$k")
done
mapfile -t files < <(find . -type f ! \( "${keep[@]}" \) | sort)
[ ${#files[@]} -gt 0 ] || exit 0
tar czf all.tgz.tmp "${files[@]}"
rm -f "${files[@]}"
find . -mindepth 1 -type d -empty -delete
mv all.tgz.tmp all.tgz
echo "packed ${#files[@]} files into $dir/all.tgz"
