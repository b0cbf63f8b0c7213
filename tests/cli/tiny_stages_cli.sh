#!/usr/bin/env bash
# The README's main job, shortened: jobs/local/tiny.sh's base and cold-start stages on one seed
# under a non-default ATEN_CPU_CAPABILITY (other rounding of every matmul, as another machine
# has), checked against the targets the later stages need; and its one-line refusals.
source "$(dirname "$0")/lib.sh"
TINY=(env OVR_BIN="$BIN" ATEN_CPU_CAPABILITY=avx2 bash "$REPO/jobs/local/tiny.sh")

expect_status 2 "a seed that is not a number" -- "${TINY[@]}" --seed x "$WORK/bad"
expect_output "--seed needs a non-negative integer" "the bad seed is named"
expect_status 2 "--base without a checkpoint" -- "${TINY[@]}" --base "$WORK/nowhere" "$WORK/bad"
expect_output "no checkpoint there" "the missing base is named"

expect_status 0 "base and text-only SFT on seed 1 under ATEN_CPU_CAPABILITY=avx2 reach their targets" -- \
  "${TINY[@]}" --seed 1 --until sft "$WORK/run"
expect_output "check: base loss" "the base stage was checked"
expect_output "check: text accuracy after SFT" "the SFT stage was checked"
/usr/bin/python3 - "$WORK/run/summary.json" <<'PY' || { echo "FAIL: the stages' accuracies"; FAILED=1; }
import json, sys
s = json.load(open(sys.argv[1]))
acc, env = s["accuracy"], s["env"]
print(f"accuracy {acc}, env {env}, stage seconds {s['stage_seconds']}")
assert env["ATEN_CPU_CAPABILITY"] == "avx2", env
assert acc["sft"]["text"] >= 0.9, "text accuracy after SFT below 0.9"
assert acc["base"]["image"] == 0.0, "the base solves picture sums it was never taught"
assert acc["sft"]["image"] > acc["base"]["image"], "no transfer to pictures after the text-only SFT"
PY

# A stage that misses its target stops the run loudly: a base that trained far too little.
expect_status 1 "a base that did not learn stops the run" -- env OVR_TINY_BASE_EPOCHS=1 "${TINY[@]}" --seed 1 --until base "$WORK/short"
expect_output "stage 0 did not teach the base to read" "the failed stage and its loss are named"
[ -f "$WORK/short/FAILED" ] || { echo "FAIL: no FAILED marker in the work dir"; FAILED=1; }
finish
