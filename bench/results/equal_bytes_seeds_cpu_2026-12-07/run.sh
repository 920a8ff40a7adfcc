#!/usr/bin/env bash
# The CPU equal-bytes sweep (per-op mode, every storage at the bytes of plain
# LoRAct at ratio 0.45, and the byte budget) at seeds 1-6, each seed
# pre-trained from scratch by its own first run. Run from the repository root.
set -u
go build -o /tmp/loract-bin ./cmd/loract
mkdir -p /tmp/eqb
for s in 1 2 3 4 5 6; do
  t0=$SECONDS
  { uptime; nice -n 10 /tmp/loract-bin demo -mode ops -sweep bytes -markdown -seed $s \
      -pretrained /tmp/eqb/pre64-s$s.gob; uptime; } > /tmp/eqb/seed$s.txt 2> /tmp/eqb/seed$s.log
  echo "seed $s rc=$? $((SECONDS - t0))s"
done
python3 bench/cpu/equal_bytes_seeds.py /tmp/eqb/seed{1..6}.txt
