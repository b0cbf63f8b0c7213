#!/usr/bin/env bash
# ovr_sft start-up at corpus scale, 2 ranks, tiny model: seconds from launch to the first step and
# peak RSS per rank, for 10^4, 10^5 and 10^6 synthetic rows (the tiny arithmetic rows repeated),
# each against the 10^4 run of the same session. Today every rank tokenizes the whole corpus and
# keeps it in memory, so both grow with the corpus (the baseline for a tokenized dataset store,
# whose goal is per-rank memory flat after the first tokenization).
#
#   bash bench/sft_startup.sh [ROWS...]     (default: 10000 100000 1000000)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-/tmp/ovr_sft_startup}"
BIN="${OVR_BIN:-$REPO/build/src}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1 OMP_NUM_THREADS=1
rm -rf "$WORK"; mkdir -p "$WORK"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 0 -o "$WORK/init.h5" >/dev/null
ROWS=("$@"); [ ${#ROWS[@]} -gt 0 ] || ROWS=(10000 100000 1000000)
echo "rows      data MB  start-up s  peak RSS rank 0 MB  peak RSS rank 1 MB  start-up / first  RSS / first"
first_s="" first_rss=""
for n in "${ROWS[@]}"; do
  python3 - "$REPO/inputs/tiny/sft_arith.jsonl" "$WORK/data_$n.jsonl" "$n" <<'PY'
import sys
rows = [l for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2], "w") as f:
    for i in range(int(sys.argv[3])):
        f.write(rows[i % len(rows)])
PY
  start=$(date +%s.%N)
  mpirun -n 2 bash -c '/usr/bin/time -f "%M" -o "$0.rss.$OMPI_COMM_WORLD_RANK" "$@"' "$WORK/run_$n" \
    "$BIN/ovr_sft" --init "$WORK/init.h5" --tokenizer "$REPO/inputs/tiny/tokenizer.json" --data "$WORK/data_$n.jsonl" \
    --output "$WORK/out_$n" --seq-len 256 --global-batch 4 --stop-after-steps 1 --save-every 0 --log-every 1 >"$WORK/log_$n" 2>&1 || true
  end=$(date +%s.%N)
  grep -q "step 1/" "$WORK/log_$n" || { echo "ovr_sft failed on $n rows:"; tail -3 "$WORK/log_$n"; exit 1; }
  s=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }') r0=$(($(tail -1 "$WORK/run_$n.rss.0") / 1024)) r1=$(($(tail -1 "$WORK/run_$n.rss.1") / 1024))
  [ -n "$first_s" ] || first_s=$s first_rss=$r0
  awk -v n="$n" -v bytes="$(stat -c %s "$WORK/data_$n.jsonl")" -v s="$s" -v r0="$r0" -v r1="$r1" -v s1="$first_s" -v m1="$first_rss" \
    'BEGIN { printf "%-8s %8.1f %11.1f %19d %19d %17.1fx %12.1fx\n", n, bytes / 1e6, s, r0, r1, s / s1, r0 / m1 }'
done
