# The RL stage as users run it: rollouts are the same on 1 and 2 ranks, a 3-iteration
# rollout -> ppo loop under mpiexec -n 2 (GAE with a critic, and GRPO without) that is killed and
# restarted ends exactly where an uninterrupted one does, and bad input gets one clear line.
source "$(dirname "$0")/lib.sh"
TOK="$REPO/inputs/tiny/tokenizer.json"
PROMPTS="$REPO/inputs/tiny/rl_arith.jsonl"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 1 -o "$WORK/init.h5" >/dev/null || exit 1
# A policy that has learnt the answer format (SFT), so that rewards are not all zero.
$MPIEXEC 2 "$BIN/ovr_sft" --init "$WORK/init.h5" --tokenizer "$TOK" --data "$REPO/inputs/tiny/sft_arith.jsonl" \
  --output "$WORK/sft" --seq-len 256 --global-batch 4 --epochs 8 --lr 5e-3 --warmup-steps 5 --save-every 0 \
  --log-every 1000 >/dev/null || { echo "FAIL: SFT"; exit 1; }
POLICY0="$WORK/sft/$(cat "$WORK/sft/latest")"
RO=(--tokenizer "$TOK" --prompts-per-iteration 8 --n 4 --max-new-tokens 48 --seed 5)
PPO=(--warmup-steps 0 --policy-lr 5e-5 --critic-lr 5e-4 --seq-len 512 --minibatches 2 --critic-steps 2)

# 1. The same rollouts on 1 and on 2 ranks.
expect_status 0 "rollout on 1 rank" -- "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$PROMPTS" -o "$WORK/r1.h5" "${RO[@]}"
expect_output "iteration 0: reward" "iteration report"
expect_status 0 "rollout on 2 ranks" -- $MPIEXEC 2 "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$PROMPTS" -o "$WORK/r2.h5" "${RO[@]}"
for d in response_tokens response_lengths reward sample_group sample_index prompt_tokens dataset_index finish_reason extracted; do
  h5diff "$WORK/r1.h5" "$WORK/r2.h5" /rollout/$d /rollout/$d >/dev/null || { echo "FAIL: /rollout/$d differs between 1 and 2 ranks"; FAILED=1; }
done
# Log-probs: the same tokens through differently composed batches agree to float rounding.
values() {  # the dataset's numbers, one per line (its first DATA block; the second is the crc32 attribute)
  h5dump -m '%.9g' -y -w 0 -d /rollout/behaviour_logprobs "$1" | awk 'f && /}/ {exit} f {print} /DATA \{/ {f = 1}' | tr ',' '\n' \
    | grep -Eo -- '-?[0-9][0-9.e+-]*'
}
worst=$(paste <(values "$WORK/r1.h5") <(values "$WORK/r2.h5") | awk '{d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d} END {print m + 0}')
n=$(values "$WORK/r1.h5" | wc -l)
if [ "$n" -gt 100 ] && awk -v w="$worst" 'BEGIN { exit !(w < 1e-4) }'; then echo "ok: $n behaviour log-probs agree to $worst"
else echo "FAIL: behaviour log-probs: $n values, largest difference $worst"; FAILED=1; fi
echo "ok: rollouts on 1 and 2 ranks agree"

# 1b. A KV budget that forces preemptions: the same rollout file (tokens and rewards).
expect_status 0 "rollout under a tight KV budget" -- "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$PROMPTS" -o "$WORK/r_tight.h5" "${RO[@]}" --kv-cache-tokens 192
pre=$(tail -1 "$WORK/rollout_metrics.jsonl" | sed 's/.*"engine_preemptions":\([0-9]*\).*/\1/')
[ "${pre:-0}" -gt 0 ] || { echo "FAIL: no preemption under a 192-token KV budget"; FAILED=1; }
for d in response_tokens response_lengths reward finish_reason; do
  h5diff "$WORK/r1.h5" "$WORK/r_tight.h5" /rollout/$d /rollout/$d >/dev/null || { echo "FAIL: /rollout/$d differs under a tight KV budget"; FAILED=1; }
done
expect_status 0 "rollout on 2 ranks under a tight KV budget" -- $MPIEXEC 2 "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$PROMPTS" -o "$WORK/r2_tight.h5" "${RO[@]}" --kv-cache-tokens 192
for d in response_tokens response_lengths reward finish_reason; do
  h5diff "$WORK/r1.h5" "$WORK/r2_tight.h5" /rollout/$d /rollout/$d >/dev/null || { echo "FAIL: /rollout/$d differs on 2 ranks under a tight KV budget"; FAILED=1; }
done
echo "ok: $pre preemptions under a tight KV budget, the same rollouts on 1 and 2 ranks"

# 2. Three iterations, uninterrupted; then killed part-way and restarted: the same final state.
export OVR_BIN="$BIN" OVR_NP=2
killed_and_restarted() {  # DIR PPO_OPTIONS...: the loop killed (-9) after its first rollout, then run again
  local dir=$1; shift
  setsid bash "$REPO/jobs/local/rl.sh" "$dir" "$POLICY0" "$PROMPTS" 3 "${RO[@]}" -- "$@" >"$dir.txt" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do [ -f "$dir/rollouts/iter_000001.h5" ] && break; sleep 0.1; done
  sleep 0.5
  kill -KILL -- -$pid 2>/dev/null; wait $pid 2>/dev/null
  [ -f "$dir/policy/step_00000003.h5" ] && { echo "FAIL: $dir: the loop finished before it was killed"; FAILED=1; }
  expect_status 0 "RL loop restarted after kill -9 ($dir)" -- bash "$REPO/jobs/local/rl.sh" "$dir" "$POLICY0" "$PROMPTS" 3 \
    "${RO[@]}" -- "$@"
}
expect_status 0 "RL loop, 3 iterations" -- bash "$REPO/jobs/local/rl.sh" "$WORK/full" "$POLICY0" "$PROMPTS" 3 "${RO[@]}" -- "${PPO[@]}"
expect_output "RL: 3 iterations done" "loop end"
killed_and_restarted "$WORK/cut" "${PPO[@]}"
for who in policy critic; do
  for g in /model /optim /state; do
    h5diff "$WORK/full/$who/step_00000003.h5" "$WORK/cut/$who/step_00000003.h5" $g $g >/dev/null \
      || { echo "FAIL: $who $g differs after kill and restart"; FAILED=1; }
  done
done
echo "ok: killed and restarted loop = uninterrupted loop"
lines=$(wc -l <"$WORK/full/policy/ppo_metrics.jsonl")
[ "$lines" = 3 ] || { echo "FAIL: $lines PPO metric lines"; FAILED=1; }

# 2a. Retention: only the newest steps keep optimizer state; older policy steps are weights only
#     (every OVR_SNAPSHOT_EVERY-th) or gone, older critics and rollouts go; results are unchanged,
#     also when killed (-9) just as a step is committed and its retention starts.
has_optim() { h5ls "$1" | grep -q '^optim'; }
has_optim "$WORK/full/policy/step_00000003.h5" && has_optim "$WORK/full/critic/step_00000003.h5" \
  || { echo "FAIL: the newest steps lost their optimizer state"; FAILED=1; }
for k in 0 1 2; do
  has_optim "$WORK/full/policy/step_0000000$k.h5" && { echo "FAIL: policy step $k kept its optimizer state"; FAILED=1; }
done
[ "$(cd "$WORK/full/critic" && ls step_*)" = step_00000003.h5 ] || { echo "FAIL: older critic steps kept: $(ls "$WORK/full/critic")"; FAILED=1; }
export OVR_SNAPSHOT_EVERY=2 OVR_KEEP_ROLLOUTS=1
mkdir -p "$WORK/thin"
setsid bash "$REPO/jobs/local/rl.sh" "$WORK/thin" "$POLICY0" "$PROMPTS" 3 "${RO[@]}" -- "${PPO[@]}" >"$WORK/thin.txt" 2>&1 &
pid=$!
for _ in $(seq 1200); do [ -f "$WORK/thin/policy/step_00000002.h5" ] && break; sleep 0.05; done
kill -KILL -- -$pid 2>/dev/null; wait $pid 2>/dev/null
expect_status 0 "RL loop with retention, killed as step 2 was committed, restarted" -- bash "$REPO/jobs/local/rl.sh" "$WORK/thin" "$POLICY0" "$PROMPTS" 3 "${RO[@]}" -- "${PPO[@]}"
expect_output "RL: iteration 2 done; disk: policy " "disk per iteration printed"
unset OVR_SNAPSHOT_EVERY OVR_KEEP_ROLLOUTS
kept="$(cd "$WORK/thin" && ls policy/step_* critic/step_* rollouts/iter_* | tr '\n' ' ')"
[ "$kept" = "critic/step_00000003.h5 policy/step_00000000.h5 policy/step_00000002.h5 policy/step_00000003.h5 rollouts/iter_000002.h5 " ] \
  || { echo "FAIL: retention kept: $kept"; FAILED=1; }
has_optim "$WORK/thin/policy/step_00000002.h5" && { echo "FAIL: snapshot step 2 kept its optimizer state"; FAILED=1; }
for who in policy critic; do
  for g in /model /optim /state; do
    h5diff "$WORK/full/$who/step_00000003.h5" "$WORK/thin/$who/step_00000003.h5" $g $g >/dev/null \
      || { echo "FAIL: retention changed $who $g"; FAILED=1; }
  done
done
h5diff "$WORK/full/policy/step_00000002.h5" "$WORK/thin/policy/step_00000002.h5" /model /model >/dev/null \
  || { echo "FAIL: the weights-only snapshot of step 2 differs from the full run's"; FAILED=1; }
echo "ok: retention keeps what resume and averaging need, and changes no result"

# 2b. The same with GRPO (no critic): killed part-way and restarted = uninterrupted; no critic files.
GRPO=(--advantage grpo --warmup-steps 0 --policy-lr 5e-5 --seq-len 512 --minibatches 2)
expect_status 0 "GRPO loop, 3 iterations" -- bash "$REPO/jobs/local/rl.sh" "$WORK/gfull" "$POLICY0" "$PROMPTS" 3 "${RO[@]}" -- "${GRPO[@]}"
killed_and_restarted "$WORK/gcut" "${GRPO[@]}"
for g in /model /optim /state; do
  h5diff "$WORK/gfull/policy/step_00000003.h5" "$WORK/gcut/policy/step_00000003.h5" $g $g >/dev/null \
    || { echo "FAIL: GRPO policy $g differs after kill and restart"; FAILED=1; }
done
[ -e "$WORK/gfull/critic" ] && { echo "FAIL: GRPO made a critic directory"; FAILED=1; }
[ "$(grep -c '"advantage":"grpo"' "$WORK/gfull/policy/ppo_metrics.jsonl")" = 3 ] || { echo "FAIL: GRPO metric lines"; FAILED=1; }
grep -q '"value_loss"' "$WORK/gfull/policy/ppo_metrics.jsonl" && { echo "FAIL: GRPO reports a value loss"; FAILED=1; }
h5diff -q "$WORK/full/policy/step_00000001.h5" "$WORK/gfull/policy/step_00000001.h5" /model /model >/dev/null \
  && { echo "FAIL: GRPO and GAE made the same update"; FAILED=1; }
echo "ok: GRPO loop killed and restarted = uninterrupted, no critic"

# 3. An image prompt goes through the vision tower in rollout and in PPO.
IMG="$REPO/tests/fixtures/image_processor/images/pattern_56x84.png"
printf '%s\n' "{\"id\": \"img\", \"prompt\": \"What is 2+3?\", \"image\": \"$IMG\", \"answer\": \"5\"}" \
  '{"id": "txt", "prompt": "What is 1+1?", "answer": "2"}' >"$WORK/mm.jsonl"
mkdir -p "$WORK/mm"
expect_status 0 "rollout with an image prompt" -- "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$WORK/mm.jsonl" \
  -o "$WORK/mm/iter_000000.h5" --tokenizer "$TOK" --prompts-per-iteration 2 --n 2 --max-new-tokens 16
grep -q '"reward_image":[0-9]' "$WORK/mm/rollout_metrics.jsonl" || { echo "FAIL: no image reward reported"; FAILED=1; }
# The same under a KV budget that preempts (image samples resume at their M-RoPE positions).
mkdir -p "$WORK/mm_tight" "$WORK/mm_roomy"
for kv in 1048576 128; do
  d=$([ $kv = 128 ] && echo mm_tight || echo mm_roomy)
  expect_status 0 "image rollout, KV budget $kv" -- "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$WORK/mm.jsonl" \
    -o "$WORK/$d/iter_000000.h5" --tokenizer "$TOK" --prompts-per-iteration 2 --n 3 --max-new-tokens 48 --kv-cache-tokens $kv
done
grep -q '"engine_preemptions":0' "$WORK/mm_tight/rollout_metrics.jsonl" && { echo "FAIL: no preemption with images"; FAILED=1; }
h5diff "$WORK/mm_roomy/iter_000000.h5" "$WORK/mm_tight/iter_000000.h5" /rollout/response_tokens /rollout/response_tokens >/dev/null \
  || { echo "FAIL: image rollouts differ under a tight KV budget"; FAILED=1; }
expect_status 0 "PPO on rollouts with an image" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/mm/iter_000000.h5" \
  --policy-output "$WORK/mm/p" --critic-output "$WORK/mm/c" --warmup-steps 0 --seq-len 256
[ -f "$WORK/mm/p/step_00000001.h5" ] || { echo "FAIL: no policy after PPO with images"; FAILED=1; }

# 4. Bad input.
printf '%s\n' '{"prompt": "x", "answer": "1"}' '{"prompt": 5, "answer": "1"}' >"$WORK/bad.jsonl"
expect_status 1 "malformed prompt row" -- "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$WORK/bad.jsonl" -o "$WORK/x.h5" "${RO[@]}"
expect_output "bad.jsonl:2: expected \"prompt\" (text) or \"messages\"" "row named"
expect_status 2 "bad length schedule" -- "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$PROMPTS" -o "$WORK/x.h5" --tokenizer "$TOK" --length-schedule 5:100
expect_output "--length-schedule" "option named"
expect_status 2 "dual clip below 1" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --critic-output "$WORK/c" --dual-clip 0.5
expect_status 2 "unknown advantage estimator" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --advantage ppo
expect_output "--advantage: expected gae, grpo or rloo, got 'ppo'" "estimator named"
expect_status 2 "gae without a critic directory" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p"
expect_output "--critic-output" "option named"
expect_status 2 "more minibatches than samples" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --critic-output "$WORK/c" --minibatches 1000
expect_output "--minibatches 1000: more than the 32 samples" "minibatches named"
expect_status 2 "a NaN learning rate" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --critic-output "$WORK/c" --policy-lr nan
expect_output "--policy-lr: must be a finite number" "learning rate named"
expect_status 2 "a reference without a KL coefficient" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --critic-output "$WORK/c" --reference "$POLICY0"
expect_output "--reference is used only with --kl-coef > 0" "reference named"
# Networks of another architecture are refused before any weight is read, naming file and tensor.
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/transfer_config.json" --seed 1 -o "$WORK/other.h5" >/dev/null || exit 1
expect_status 1 "a policy of another model than the rollouts'" -- "$BIN/ovr_ppo" --policy "$WORK/other.h5" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --critic-output "$WORK/c"
expect_output "$WORK/r1.h5 (the policy that generated these rollouts): " "rollouts' model named"
expect_output "(another model)" "difference named"
expect_status 1 "a reference of another model" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --critic-output "$WORK/c" --reference "$WORK/other.h5" --kl-coef 0.1
expect_output "--reference $WORK/other.h5: " "reference named with its tensor"
expect_status 1 "a critic of another model" -- "$BIN/ovr_ppo" --policy "$POLICY0" --critic "$WORK/other.h5" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --critic-output "$WORK/c"
expect_output "--critic $WORK/other.h5: " "critic named with its tensor"
expect_status 2 "an infinite clip" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --critic-output "$WORK/c" --clip-high inf
expect_output "--clip-high: must be a finite number, got inf" "clip named"
expect_status 2 "a negative seed" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$WORK/r1.h5" --policy-output "$WORK/p" --critic-output "$WORK/c" --seed -1
expect_output "--seed: must be between 0 and 2^63 - 1" "seed named"
expect_status 2 "an infinite temperature" -- "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$PROMPTS" -o "$WORK/x.h5" "${RO[@]}" --temperature inf
expect_status 2 "a negative top-k" -- "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$PROMPTS" -o "$WORK/x.h5" "${RO[@]}" --top-k -1
expect_output "--top-k: must be >= 0, got -1" "top-k named"
[ -e "$WORK/p/step_00000001.h5" ] && { echo "FAIL: a refused update wrote a policy"; FAILED=1; }
[ -e "$WORK/c/step_00000001.h5" ] && { echo "FAIL: a refused update wrote a critic"; FAILED=1; }
/usr/bin/python3 -c "
import json
print(json.dumps({'id': 'long', 'prompt': 'What is ' + '1+' * 2500 + '1?', 'answer': '2501'}))" >"$WORK/long_prompt.jsonl"
expect_status 1 "a rollout prompt over the context" -- "$BIN/ovr_rollout" --policy "$POLICY0" --prompts "$WORK/long_prompt.jsonl" -o "$WORK/long.h5" "${RO[@]}"
expect_output "long_prompt.jsonl:1: the prompt's" "row named"
expect_output "exceed the model's context of 4096" "context named"
expect_status 1 "a checkpoint given as rollouts" -- "$BIN/ovr_ppo" --policy "$POLICY0" --rollouts "$POLICY0" --policy-output "$WORK/p" --critic-output "$WORK/c"
expect_output "not a rollout file" "wrong file named"
expect_status 1 "rollout files given to ovr_average" -- "$BIN/ovr_average" -o "$WORK/avg_of_rollouts.h5" "$WORK/r1.h5" "$WORK/r2.h5"
expect_output "$WORK/r1.h5: holds no model tensors (role 'rollouts': not a model checkpoint)" "the rollout file named"
[ ! -e "$WORK/avg_of_rollouts.h5" ] || { echo "FAIL: an average of rollout files was written"; FAILED=1; }
[ ! -e "$WORK/x.h5" ] || { echo "FAIL: a failed rollout left a file"; FAILED=1; }
finish
