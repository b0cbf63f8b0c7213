#!/usr/bin/env bash
# ovr_eval over every benchmark file of the shared fixtures (public data, read in place, never
# copied here), with a small random Qwen2.5-VL (inputs/tiny/transfer_config.json: vision tower
# included), greedy, 8 new tokens, on 1 and on 2 ranks. Prints per file: rows, problems loaded, bad
# rows (and the first reason), whether results.jsonl is the same on 1 and 2 ranks, and the seconds
# of each run. What it shows: every row of every published form loads (or is named as bad with its
# reason), and the evaluation does not depend on the number of ranks.
#
#   bash bench/eval_benchmarks.sh [WORKDIR]     (OVR_SHARED_FIXTURES: default ../shared/fixtures)
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${OVR_BIN:-$REPO/build/src}"
FIX="${OVR_SHARED_FIXTURES:-$REPO/../shared/fixtures}/benchmarks"
WORK="${1:-$REPO/runs/eval-benchmarks}"
[ -d "$FIX" ] || { echo "eval_benchmarks.sh: error: no $FIX (set OVR_SHARED_FIXTURES)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
mkdir -p "$WORK"
MODEL="$WORK/model.h5"
[ -f "$MODEL" ] || "$BIN/ovr_init" --model-config "$REPO/inputs/tiny/transfer_config.json" --seed 3 -o "$MODEL" >/dev/null
COMMON=(--model "$MODEL" --tokenizer "$REPO/inputs/tiny/tokenizer.json" --preprocessor "$REPO/inputs/tiny/preprocessor_config.json"
        --max-new-tokens 8)
printf '| file | benchmark | rows | loaded | bad rows (first reason) | 1 = 2 ranks | s (1 rank) | s (2 ranks) |\n|---|---|---:|---:|---|---|---:|---:|\n'
while read -r file name; do
  [ -f "$FIX/$file" ] || { printf '| %s | %s | (absent) | | | | | |\n' "$file" "$name"; continue; }
  rows=$(grep -c . "$FIX/$file")
  out="$WORK/$(echo "$file" | tr '/.' '__')"
  secs=()
  for np in 1 2; do
    t0=$(date +%s%N)
    mpirun -n $np "$BIN/ovr_eval" "${COMMON[@]}" --benchmark "$name" --data "$FIX/$file" -o "$out/np$np" </dev/null >"$out.np$np.log" 2>&1
    rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    secs+=("$((ms / 1000)).$(( ms % 1000 / 100 ))")
  done
  if [ "$rc" != 0 ]; then
    printf '| %s | %s | %s | 0 | %s (exit %s: %s) | | %s | %s |\n' "$file" "$name" "$rows" "$rows" "$rc" \
      "$(grep -m1 ": error" "$out.np2.log" | sed 's/.*error[^:]*: //' | cut -c1-110)" "${secs[0]}" "${secs[1]}"
    continue
  fi
  read -r loaded bad first < <(/usr/bin/python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
bad = s['bad_row_list']
print(s['problems'], len(bad), (bad[0]['reason'][:70] if bad else '-').replace('|', '/'))" "$out/np2/summary.json")
  same=$(cmp -s "$out/np1/results.jsonl" "$out/np2/results.jsonl" && echo yes || echo NO)
  printf '| %s | %s | %s | %s | %s (%s) | %s | %s | %s |\n' "$file" "$name" "$rows" "$loaded" "$bad" "$first" "$same" \
    "${secs[0]}" "${secs[1]}"
done <<'LIST'
math500/test.jsonl math500
mathvision_sample/testmini_sample.jsonl mathvision
aime24/test.jsonl aime24
amc23/test.jsonl amc23
mmmu_pro/standard_10_options.jsonl mmmu_pro
mmmu_pro/sample_with_images.jsonl mmmu_pro
mathvista/testmini.jsonl mathvista_testmini
mathverse/testmini_text_only.jsonl mathverse_text_only
mathverse/visualizer_sample.jsonl mathverse_visualizer
mathverse/visualizer_all.jsonl mathverse_visualizer
dynamath/sample.jsonl dynamath
dynamath/dataset.jsonl dynamath
LIST
