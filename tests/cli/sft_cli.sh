# ovr_sft as users run it: resume after an interruption is bitwise identical, a 2-rank run
# resumes on 1 rank, SIGTERM checkpoints and exits 75, the loss goes down, and bad rows and
# bad options get one clear error line.
source "$(dirname "$0")/lib.sh"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 1 -o "$WORK/init.h5" >/dev/null || exit 1
DATA="$REPO/inputs/tiny/sft_arith.jsonl"
SFT=("$BIN/ovr_sft" --init "$WORK/init.h5" --tokenizer "$REPO/inputs/tiny/tokenizer.json" --data "$DATA"
     --lr 3e-3 --warmup-steps 2 --weight-decay 0.1 --log-every 100)
SIZES=(--seq-len 256 --global-batch 4)  # given where a test does not change them

same_state() {  # same_state A B: /model, /optim and /state of two checkpoints are bit for bit equal
  for g in /model /optim /state; do
    h5diff "$1" "$2" $g $g >/dev/null || { echo "FAIL: $g differs between $1 and $2"; FAILED=1; return; }
  done
  echo "ok: $(basename "$1") identical"
}

# 1. Interrupted after 5 steps and resumed = uninterrupted (2 ranks, ZeRO-2 and ZeRO-1).
for stage in 2 1; do
  expect_status 0 "2 ranks, ZeRO-$stage, uninterrupted" -- $MPIEXEC 2 "${SFT[@]}" "${SIZES[@]}" --save-every 4 --epochs 2 --zero-stage $stage --output "$WORK/full$stage"
  expect_status 75 "2 ranks, stopped after 5 steps" -- $MPIEXEC 2 "${SFT[@]}" "${SIZES[@]}" --save-every 4 --epochs 2 --zero-stage $stage --output "$WORK/cut$stage" --stop-after-steps 5
  expect_output "exit status 75 asks to be requeued" "stop message"
  expect_status 0 "2 ranks, resumed" -- $MPIEXEC 2 "${SFT[@]}" "${SIZES[@]}" --save-every 4 --epochs 2 --zero-stage $stage --output "$WORK/cut$stage"
  expect_output "resumed from $WORK/cut$stage/step_00000005.h5 at step 5" "resume message"
  same_state "$WORK/full$stage/step_00000024.h5" "$WORK/cut$stage/step_00000024.h5"
  cmp <(cut -d, -f2- "$WORK/full$stage/metrics.jsonl" | sed 's/"step_s".*//; s/,"tokens_per_s".*//') \
      <(cut -d, -f2- "$WORK/cut$stage/metrics.jsonl" | sed 's/"step_s".*//; s/,"tokens_per_s".*//') >/dev/null \
    || { echo "FAIL: ZeRO-$stage metrics of the resumed run differ"; FAILED=1; }
done

# 2. The loss goes down on this small learnable dataset (2 epochs, 24 steps).
first=$(head -1 "$WORK/full2/metrics.jsonl" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
last=$(tail -1 "$WORK/full2/metrics.jsonl" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.75 * a) }'; then echo "ok: loss $first -> $last"
else echo "FAIL: loss did not go down enough: $first -> $last"; FAILED=1; fi

# 3. A 2-rank checkpoint resumes on 1 rank and continues to the same place (not bitwise: the sum
#    over ranks is grouped differently).
expect_status 75 "2 ranks, stopped after 8 steps" -- $MPIEXEC 2 "${SFT[@]}" "${SIZES[@]}" --save-every 4 --epochs 2 --output "$WORK/move" --stop-after-steps 8
expect_status 0 "resumed on 1 rank" -- "${SFT[@]}" "${SIZES[@]}" --save-every 4 --epochs 2 --output "$WORK/move"
expect_output "on 1 rank(s)" "resume on one rank"
a=$(tail -1 "$WORK/full2/metrics.jsonl" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
b=$(tail -1 "$WORK/move/metrics.jsonl" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
if awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-3 * a) }'; then echo "ok: final loss $a (2 ranks) vs $b (2 -> 1)"
else echo "FAIL: final loss after moving to 1 rank: $b, uninterrupted $a"; FAILED=1; fi

# 4. SIGTERM: the step finishes, a checkpoint is written, exit 75; then the run completes.
"${SFT[@]}" "${SIZES[@]}" --output "$WORK/term" --epochs 40 --save-every 0 >"$WORK/term.txt" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$WORK/term/metrics.jsonl" ] && break; sleep 0.1; done
kill -TERM $pid; wait $pid; got=$?
if [ "$got" = 75 ] && grep -q "Terminated" "$WORK/term.txt" && [ -f "$WORK/term/latest" ]; then echo "ok: SIGTERM -> checkpoint $(cat "$WORK/term/latest"), exit 75"
else echo "FAIL: SIGTERM: exit $got"; sed 's/^/    /' "$WORK/term.txt" | tail -5; FAILED=1; fi
expect_status 0 "resumed after SIGTERM" -- "${SFT[@]}" "${SIZES[@]}" --output "$WORK/term" --epochs 40 --save-every 0
[ -f "$WORK/term/step_00000480.h5" ] || { echo "FAIL: no final checkpoint after SIGTERM + resume"; FAILED=1; }

# 4b. Through the launcher, 2 ranks: mpirun forwards SIGUSR1 to every rank, they checkpoint and
#     exit 75, and so does mpirun. SIGTERM is mpirun's own stop signal (Open MPI cannot forward
#     it): the ranks still checkpoint and exit 75, but mpirun's status is its own (1), as the
#     README says; a rerun resumes either way.
for sig in USR1 TERM; do
  $MPIEXEC 2 "${SFT[@]}" "${SIZES[@]}" --output "$WORK/mpi$sig" --epochs 40 --save-every 0 >"$WORK/mpi$sig.txt" 2>&1 &
  pid=$!
  for _ in $(seq 300); do [ -s "$WORK/mpi$sig/metrics.jsonl" ] && break; sleep 0.1; done
  kill -$sig $pid; wait $pid; got=$?
  want=$([ $sig = USR1 ] && echo 75 || echo 1)
  if [ "$got" = "$want" ] && grep -q "exit status 75 asks to be requeued" "$WORK/mpi$sig.txt" && [ -f "$WORK/mpi$sig/latest" ]; then
    echo "ok: SIG$sig to mpirun -> every rank checkpointed ($(cat "$WORK/mpi$sig/latest")), mpirun exit $got"
  else echo "FAIL: SIG$sig to mpirun: exit $got (expected $want)"; sed 's/^/    /' "$WORK/mpi$sig.txt" | tail -5; FAILED=1; fi
done
expect_status 0 "2 ranks resumed after SIGTERM to mpirun" -- $MPIEXEC 2 "${SFT[@]}" "${SIZES[@]}" --output "$WORK/mpiTERM" --epochs 40 --save-every 0
expect_output "resumed from $WORK/mpiTERM/step_" "resume after SIGTERM to mpirun"

# 5. --keep-last: only the newest step files stay.
expect_status 0 "keep the last 2 checkpoints" -- "${SFT[@]}" "${SIZES[@]}" --save-every 2 --keep-last 2 --output "$WORK/keep"
kept=$(cd "$WORK/keep" && ls step_*.h5 | tr '\n' ' ')
[ "$kept" = "step_00000010.h5 step_00000012.h5 " ] || { echo "FAIL: --keep-last 2 left: $kept"; FAILED=1; }

# 5b. A resume under another --init is refused before any state loads: another init of the same
#     model (its frozen vision weights differ), and another model (a tensor's shape differs).
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 2 -o "$WORK/init_seed2.h5" >/dev/null || exit 1
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/transfer_config.json" --seed 1 -o "$WORK/init_other.h5" >/dev/null || exit 1
REST=("${SFT[@]:3}")  # the command without its --init
expect_status 75 "a run to resume" -- "${SFT[@]}" "${SIZES[@]}" --save-every 4 --epochs 2 --output "$WORK/reinit" --stop-after-steps 4
expect_status 1 "resumed under another init of the model" -- "$BIN/ovr_sft" --init "$WORK/init_seed2.h5" "${REST[@]}" "${SIZES[@]}" --save-every 4 --epochs 2 --output "$WORK/reinit"
expect_output "is not the init this run started from" "init named"
expect_status 1 "resumed under another model" -- "$BIN/ovr_sft" --init "$WORK/init_other.h5" "${REST[@]}" "${SIZES[@]}" --save-every 4 --epochs 2 --output "$WORK/reinit"
expect_output "in --init $WORK/init_other.h5 (a checkpoint of another model)" "tensor named"
expect_status 0 "resumed under its own init" -- "${SFT[@]}" "${SIZES[@]}" --save-every 4 --epochs 2 --output "$WORK/reinit"

# 6. Bad input: one line naming what is wrong.
expect_status 1 "malformed row" -- "${SFT[@]}" "${SIZES[@]}" --data "$REPO/tests/fixtures/sft/bad_rows.jsonl" --output "$WORK/bad"
expect_output "bad_rows.jsonl:2: not valid JSON" "file and line of the bad row"
expect_status 1 "a directory as --data" -- "$BIN/ovr_sft" --init "$WORK/init.h5" --tokenizer "$REPO/inputs/tiny/tokenizer.json" --data "$WORK" --output "$WORK/dir_data"
expect_output ": is a directory (expected a JSONL file)" "directory named"
expect_status 0 "malformed rows skipped" -- "${SFT[@]}" --data "$REPO/tests/fixtures/sft/bad_rows.jsonl" --output "$WORK/skip" --skip-bad-rows --seq-len 256 --global-batch 1
expect_output "3 malformed rows skipped" "skip count"
expect_status 1 "missing data file" -- "${SFT[@]}" "${SIZES[@]}" --data "$WORK/nope.jsonl" --output "$WORK/bad"
expect_output "nope.jsonl: cannot open" "missing file named"
expect_status 2 "global batch not divisible" -- $MPIEXEC 2 "${SFT[@]}" --seq-len 256 --global-batch 3 --output "$WORK/bad"
expect_output "--global-batch 3 is not a multiple of --micro-batch 1 x 2 ranks" "batch message"
expect_status 2 "ZeRO stage 3" -- "${SFT[@]}" "${SIZES[@]}" --zero-stage 3 --output "$WORK/bad"
expect_output "--zero-stage: expected 1 or 2" "stage message"
expect_status 2 "unknown module" -- "${SFT[@]}" "${SIZES[@]}" --train decoder --output "$WORK/bad"
expect_output "--train: expected llm, vision, merger or all" "train message"
expect_status 2 "negative epsilon" -- "${SFT[@]}" "${SIZES[@]}" --adam-eps -1 --output "$WORK/bad"
expect_status 2 "bad schedule" -- "${SFT[@]}" "${SIZES[@]}" --lr-schedule step --output "$WORK/bad"
expect_status 2 "both batch sizes" -- "${SFT[@]}" "${SIZES[@]}" --global-batch-tokens 1024 --output "$WORK/bad"
expect_output "--global-batch and --global-batch-tokens both given" "both batch options named"
expect_status 2 "a NaN gradient clip" -- "${SFT[@]}" "${SIZES[@]}" --max-grad-norm nan --output "$WORK/bad"
expect_output "--max-grad-norm: must be a finite number, got nan" "clip named"
expect_status 2 "a negative count" -- "${SFT[@]}" "${SIZES[@]}" --keep-last -3 --output "$WORK/bad"
expect_output "--keep-last: must be >= 0, got -3" "count named"
expect_status 2 "a negative seed" -- "${SFT[@]}" "${SIZES[@]}" --seed -1 --output "$WORK/bad"
expect_output "--seed: must be between 0 and 2^63 - 1" "seed named"
expect_status 1 "resume with another --seq-len" -- "${SFT[@]}" --seq-len 200 --global-batch 4 --epochs 2 --output "$WORK/full2"
expect_output "written for seq_len = 256, this run has 200" "changed settings named"
[ ! -e "$WORK/bad/latest" ] || { echo "FAIL: a failed run left a checkpoint"; FAILED=1; }
finish
