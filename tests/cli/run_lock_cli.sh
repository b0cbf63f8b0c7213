# One run per output directory: a second run on a directory in use is refused with one line naming
# the holder, and the first is unharmed; ranks do not outlive a launcher killed with -9, so a rerun
# right after takes the directory over and resumes.
source "$(dirname "$0")/lib.sh"
TOK="$REPO/inputs/tiny/tokenizer.json"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 1 -o "$WORK/init.h5" >/dev/null || exit 1
SFT=(--init "$WORK/init.h5" --tokenizer "$TOK" --data "$REPO/inputs/tiny/sft_arith.jsonl" --seq-len 256 --global-batch 4
     --epochs 12 --warmup-steps 5 --save-every 20 --log-every 1000)
wait_for() {  # wait_for FILE: up to 60 s
  for _ in $(seq 600); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "FAIL: $1 never appeared"; FAILED=1; return 1
}

# 1. Two SFT runs on one --output.
$MPIEXEC 2 "$BIN/ovr_sft" "${SFT[@]}" --lr 5e-3 --output "$WORK/sft" >"$WORK/first.txt" 2>&1 &
first=$!
wait_for "$WORK/sft/metrics.jsonl"
expect_status 1 "a second ovr_sft on the same --output" -- $MPIEXEC 2 "$BIN/ovr_sft" "${SFT[@]}" --lr 1e-2 --output "$WORK/sft"
expect_output "is in use by ovr_sft (pid" "the holder named"
wait $first
status=$?
[ "$status" = 0 ] || { echo "FAIL: the first run ended with $status"; sed 's/^/    /' "$WORK/first.txt" | tail -5; FAILED=1; }
steps=$(wc -l <"$WORK/sft/metrics.jsonl")
uniq_steps=$(/usr/bin/python3 -c "import json,sys; print(len({json.loads(l)['step'] for l in open(sys.argv[1])}))" "$WORK/sft/metrics.jsonl")
[ "$steps" = "$uniq_steps" ] || { echo "FAIL: metrics.jsonl mixes two runs ($steps lines, $uniq_steps steps)"; FAILED=1; }
echo "ok: the first run finished unharmed ($steps steps)"

# 2. mpirun killed with -9 while its ranks generate (no MPI call for many seconds, so without the
#    launcher watcher they would run on to the end): the ranks end within 2 s, and a rerun on the
#    same output takes the directory at once.
for i in $(seq 16); do echo "{\"id\": \"$i\", \"question\": \"What is $i+1?\", \"answer\": \"$((i + 1))\"}"; done >"$WORK/sums.jsonl"
EVAL=(--model "$WORK/init.h5" --tokenizer "$TOK" --benchmark sums --data "$WORK/sums.jsonl" --instruction none -o "$WORK/eval")
setsid $MPIEXEC 2 "$BIN/ovr_eval" "${EVAL[@]}" --max-new-tokens 4000 --kv-cache-tokens 200000 >"$WORK/killed.txt" 2>&1 &
launcher=$!
for _ in $(seq 600); do [ "$(pgrep -f "ovr_eval .*$WORK/eval" | wc -l)" -ge 3 ] && break; sleep 0.1; done
sleep 3  # into generation
kill -KILL $launcher 2>/dev/null; wait $launcher 2>/dev/null
sleep 2
left=$(pgrep -f "ovr_eval .*$WORK/eval" | wc -l)
[ "$left" = 0 ] || { echo "FAIL: $left ranks still running 2 s after their launcher was killed"; FAILED=1; pkill -KILL -f "ovr_eval .*$WORK/eval"; }
[ -e "$WORK/eval/summary.json" ] && { echo "FAIL: the killed evaluation finished before it was killed"; FAILED=1; }
expect_status 0 "a rerun after the launcher was killed" -- $MPIEXEC 2 "$BIN/ovr_eval" "${EVAL[@]}" --max-new-tokens 8

# 3. Two RL loops on one run directory.
POLICY0="$WORK/sft/$(cat "$WORK/sft/latest")"
export OVR_BIN="$BIN" OVR_NP=2
RL=("$POLICY0" "$REPO/inputs/tiny/rl_arith.jsonl" 2 --tokenizer "$TOK" --prompts-per-iteration 8 --n 4 --max-new-tokens 32
    -- --warmup-steps 0 --seq-len 512)
bash "$REPO/jobs/local/rl.sh" "$WORK/rl" "${RL[@]}" >"$WORK/rl_first.txt" 2>&1 &
first=$!
wait_for "$WORK/rl/.ovr-lock.holder"
expect_status 1 "a second rl.sh on the same directory" -- bash "$REPO/jobs/local/rl.sh" "$WORK/rl" "${RL[@]}"
expect_output "is in use by another RL loop (rl.sh (pid" "the loop named"
wait $first || { echo "FAIL: the first RL loop failed"; tail -3 "$WORK/rl_first.txt"; FAILED=1; }
grep -q "RL: 2 iterations done" "$WORK/rl_first.txt" || { echo "FAIL: the first RL loop did not finish"; FAILED=1; }
finish
