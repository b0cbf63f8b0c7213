# A full disk under every checkpoint writer, on a real tmpfs of a few MB (skipped, exit 77, where
# this user cannot mount one): each run ends within a time bound (no hang in HDF5's collective
# close), with exit status 1 and one error line naming the file and the cause (no signal death),
# and nothing under the final name, no temporary file left and no `latest` moved. Then the same
# run on a disk with room succeeds.
source "$(dirname "$0")/lib.sh"
DISK="$WORK/disk"
mkdir -p "$DISK"
mount_disk() {  # mount_disk SIZE: a fresh tmpfs of SIZE at $DISK
  umount "$DISK" 2>/dev/null
  mount -t tmpfs -o "size=$1" tmpfs "$DISK" 2>/dev/null
}
if ! mount_disk 1m; then
  echo "skip: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): the full-disk checks did not run"
  exit 77
fi
trap 'umount "$DISK" 2>/dev/null' EXIT
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 1 -o "$WORK/init.h5" >/dev/null || exit 1
"$BIN/ovr_convert" "$WORK/init.h5" "$WORK/init.safetensors" >/dev/null || exit 1

# expect_clean_failure WHAT FINAL_NAME -- COMMAND...: exit 1 in time, one error line (one per rank at
# most, where ranks failed on different tensors), nothing left.
expect_clean_failure() {
  local what=$1 final=$2; shift 3
  expect_status 1 "$what" -- timeout 120 "$@"
  local lines
  lines=$(grep -v "mca_fbtl_posix_pwritev\|PMIX ERROR" "$WORK/out.txt" | grep ": error" | tee "$WORK/errors.txt" | wc -l)
  grep -q "No space left on device" "$WORK/errors.txt" || { echo "FAIL: $what: the cause is not named"; FAILED=1; }
  [ "$lines" -ge 1 ] && [ "$lines" -le 2 ] || { echo "FAIL: $what: $lines error lines"; sed 's/^/    /' "$WORK/out.txt" | head; FAILED=1; }
  [ -e "$final" ] && { echo "FAIL: $what: $final exists"; FAILED=1; }
  local left
  left=$(find "$DISK" -name '*.tmp' | head -1)
  [ -z "$left" ] || { echo "FAIL: $what: $left left behind"; FAILED=1; }
}

# 1. A converted checkpoint on 1 and 2 ranks: the disk fills during the data (1 MB) or only when
#    HDF5 flushes its metadata at close (the 1-rank case that used to rename a torn file into
#    place and then segfault at exit).
for np in 1 2; do
  mount_disk 1m
  expect_clean_failure "ovr_convert to HDF5 on $np rank(s), disk full" "$DISK/out.h5" -- \
    $MPIEXEC $np "$BIN/ovr_convert" "$WORK/init.safetensors" "$DISK/out.h5"
  mount_disk 1m
  expect_clean_failure "ovr_convert to safetensors on $np rank(s), disk full" "$DISK/out.safetensors" -- \
    $MPIEXEC $np "$BIN/ovr_convert" "$WORK/init.h5" "$DISK/out.safetensors"
done
mount_disk 1m
expect_clean_failure "ovr_average on 2 ranks, disk full" "$DISK/avg.h5" -- \
  $MPIEXEC 2 "$BIN/ovr_average" -o "$DISK/avg.h5" "$WORK/init.h5" "$WORK/init.h5"

# 2. SFT checkpoints on 2 ranks: the disk fills in the model (independent writes of one rank), in
#    the optimizer shards (collective writes of every rank: the case that hung in MPI_Finalize).
SFT=(--init "$WORK/init.h5" --tokenizer "$REPO/inputs/tiny/tokenizer.json" --data "$REPO/inputs/tiny/sft_arith.jsonl"
     --output "$DISK/sft" --seq-len 256 --global-batch 4 --epochs 1 --lr 5e-3 --warmup-steps 1 --save-every 0 --log-every 1000)
for size in 1m 2200k 3m; do
  mount_disk $size
  expect_clean_failure "ovr_sft on 2 ranks, a ${size} disk" "$DISK/sft/step_00000012.h5" -- $MPIEXEC 2 "$BIN/ovr_sft" "${SFT[@]}"
  [ -e "$DISK/sft/latest" ] && { echo "FAIL: ovr_sft on a ${size} disk: latest written"; FAILED=1; }
done

# 3. A rollout file: no file and no metrics line for it.
mount_disk 8k
expect_clean_failure "ovr_rollout on 2 ranks, disk full" "$DISK/iter_000000.h5" -- $MPIEXEC 2 "$BIN/ovr_rollout" \
  --policy "$WORK/init.h5" --prompts "$REPO/inputs/tiny/rl_arith.jsonl" -o "$DISK/iter_000000.h5" \
  --tokenizer "$REPO/inputs/tiny/tokenizer.json" --prompts-per-iteration 8 --n 4 --max-new-tokens 48
[ -s "$DISK/rollout_metrics.jsonl" ] && { echo "FAIL: a metrics line for a rollout file never written"; FAILED=1; }

# 3b. Evaluation results, written by both ranks at their offsets: no results.jsonl, no summary.
mount_disk 8k
expect_clean_failure "ovr_eval on 2 ranks, disk full" "$DISK/ev/results.jsonl" -- $MPIEXEC 2 "$BIN/ovr_eval" \
  --model "$WORK/init.h5" --tokenizer "$REPO/inputs/tiny/tokenizer.json" --benchmark arith --fields question=prompt \
  --data "$REPO/inputs/tiny/rl_arith.jsonl" --limit 8 --k 4 --max-new-tokens 48 -o "$DISK/ev"
[ -e "$DISK/ev/summary.json" ] && { echo "FAIL: a summary for results never written"; FAILED=1; }

# 4. With room, the same run commits.
mount_disk 16m
expect_status 0 "ovr_sft on 2 ranks with room" -- timeout 120 $MPIEXEC 2 "$BIN/ovr_sft" "${SFT[@]}"
[ "$(cat "$DISK/sft/latest" 2>/dev/null)" = step_00000012.h5 ] || { echo "FAIL: no committed checkpoint with room"; FAILED=1; }
finish
