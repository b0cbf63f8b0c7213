# ovr_score as users run it: the scores are ovr_sft's loss (the mean over a step equals the loss
# ovr_sft reports for the same documents), the same on 1 and 2 ranks, rules keep exactly what they
# say (rows copied unchanged), saved scores are filtered again without a model, and bad input gets
# one clear line.
source "$(dirname "$0")/lib.sh"
TOK="$REPO/inputs/tiny/tokenizer.json"
DATA="$REPO/inputs/tiny/sft_arith.jsonl"
"$BIN/ovr_init" --model-config "$REPO/inputs/tiny/config.json" --seed 1 -o "$WORK/init.h5" >/dev/null || exit 1
SC=(--model "$WORK/init.h5" --tokenizer "$TOK" --data "$DATA" --seq-len 256)
py() { /usr/bin/python3 -c "$@"; }

# 1. 1 and 2 ranks (different batches and paddings): the same documents, losses equal to rounding.
expect_status 0 "score on 1 rank, drop the top 25%" -- "$BIN/ovr_score" "${SC[@]}" --drop-top 0.25 -o "$WORK/s1"
expect_output "kept 72 of 96 documents (dropped: 24 top 25% by loss" "the summary line"
expect_status 0 "score on 2 ranks" -- $MPIEXEC 2 "$BIN/ovr_score" "${SC[@]}" --drop-top 0.25 --batch-tokens 700 -o "$WORK/s2"
py "
import json, sys
a = [json.loads(l) for l in open('$WORK/s1/scores.jsonl')]
b = [json.loads(l) for l in open('$WORK/s2/scores.jsonl')]
assert len(a) == 96 and [x['source'] for x in a] == [x['source'] for x in b], 'documents differ'
assert all(x['targets'] == y['targets'] and x['tokens'] == y['tokens'] for x, y in zip(a, b)), 'counts differ'
worst = max(abs(x['loss'] - y['loss']) / x['loss'] for x, y in zip(a, b))
assert worst < 1e-5, f'losses differ by {worst}'
print(f'ok: 96 scores on 1 and 2 ranks agree (largest relative difference {worst:.1e})')
" || { echo "FAIL: scores on 1 and 2 ranks"; FAILED=1; }

# 2. The mean loss over all documents, weighted by targets, is what ovr_sft reports for a step that
#    holds exactly these documents (one per row, before its first update).
expect_status 0 "one SFT step over all 96 documents" -- "$BIN/ovr_sft" --init "$WORK/init.h5" --tokenizer "$TOK" --data "$DATA" \
  --seq-len 256 --no-packing --global-batch 96 --micro-batch 8 --output "$WORK/sft"
py "
import json
s = [json.loads(l) for l in open('$WORK/s1/scores.jsonl')]
mean = sum(x['loss'] * x['targets'] for x in s) / sum(x['targets'] for x in s)
sft = json.loads(open('$WORK/sft/metrics.jsonl').readline())
assert sft['targets'] == sum(x['targets'] for x in s), 'targets differ'
assert abs(mean - sft['loss']) < 1e-6 * sft['loss'], f'{mean} vs {sft[\"loss\"]}'
print(f'ok: mean score {mean:.9f} = ovr_sft step loss {sft[\"loss\"]:.9f}')
" || { echo "FAIL: scores do not match the SFT loss"; FAILED=1; }

# 3. The kept rows are the input's lines, unchanged, and exactly the 72 lowest-loss documents.
py "
import json
rows = open('$DATA').read().splitlines()
s = [json.loads(l) for l in open('$WORK/s1/scores.jsonl')]
kept = open('$WORK/s1/curated.jsonl').read().splitlines()
order = sorted(range(len(s)), key=lambda i: -s[i]['loss'])
want = [rows[int(s[i]['source'].rsplit(':', 1)[1]) - 1] for i in sorted(order[24:])]
assert kept == want, 'curated rows are not the 72 lowest-loss input lines'
r = json.load(open('$WORK/s1/report.json'))
assert r['kept'] == 72 and r['dropped_by']['drop_top'] == 24 and sum(r['histogram']['kept']) == 72
print('ok: curated.jsonl holds the 72 lowest-loss rows verbatim')
" || { echo "FAIL: curated rows"; FAILED=1; }

# 4. Other rules on the saved scores, no model: a loss threshold and a length limit.
p50=$(py "import json; print(json.load(open('$WORK/s1/report.json'))['loss_quantiles']['p50'])")
expect_status 0 "rules on saved scores" -- "$BIN/ovr_score" --data "$DATA" --from-scores "$WORK/s1/scores.jsonl" --max-loss "$p50" \
  --max-tokens 110 -o "$WORK/again"
n=$(wc -l <"$WORK/again/curated.jsonl")
want=$(py "
import json
s = [json.loads(l) for l in open('$WORK/s1/scores.jsonl')]
print(sum(1 for x in s if x['loss'] <= $p50 and x['tokens'] <= 110))")
[ "$n" = "$want" ] && [ "$n" -gt 0 ] && echo "ok: --max-loss p50 --max-tokens 110 kept $n rows" || { echo "FAIL: rules kept $n rows, expected $want"; FAILED=1; }

# 5. Bad input.
expect_status 2 "a fraction of 1" -- "$BIN/ovr_score" "${SC[@]}" --drop-top 1 -o "$WORK/bad"
expect_output "--drop-top: must be in [0, 1)" "fraction named"
expect_status 2 "no model and no scores" -- "$BIN/ovr_score" --data "$DATA" -o "$WORK/bad"
expect_output "--model: required (or --from-scores FILE)" "model named"
printf '{"source": "x:1", "tokens": 3}\n' >"$WORK/bad_scores.jsonl"
expect_status 1 "a malformed scores file" -- "$BIN/ovr_score" --data "$DATA" --from-scores "$WORK/bad_scores.jsonl" -o "$WORK/bad"
expect_output "$WORK/bad_scores.jsonl:1: expected {\"source\", \"tokens\", \"targets\", \"loss\"}" "line named"
expect_status 1 "a malformed data row" -- "$BIN/ovr_score" "${SC[@]/$DATA/$REPO/tests/fixtures/sft/bad_rows.jsonl}" -o "$WORK/bad"
expect_output "bad_rows.jsonl:" "row named"
[ ! -e "$WORK/bad/curated.jsonl" ] || { echo "FAIL: a refused run wrote curated.jsonl"; FAILED=1; }
finish
