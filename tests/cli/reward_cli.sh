# ovr_inspect reward: rescoring JSONL outputs, line by line; a bad line names its number.
source "$(dirname "$0")/lib.sh"
printf '%s\n' '{"response": "so \\boxed{\\dfrac{1}{2}}.", "answer": "0.5"}' \
              '{"response": "\\boxed{3}", "answer": "4"}' \
              '{"response": "thinking... \\boxed{4}", "answer": "4", "finish_reason": "length"}' \
              '{"response": "no box", "answer": "4"}' >"$WORK/in.jsonl"
expect_status 0 "rescore four responses" -- sh -c "\"$BIN/ovr_inspect\" reward < \"$WORK/in.jsonl\""
[ "$(wc -l <"$WORK/out.txt")" = 4 ] || { echo "FAIL: expected 4 output lines"; FAILED=1; }
sed -n 1p "$WORK/out.txt" | grep -q '"reward":1' || { echo "FAIL: 1/2 = 0.5 not rewarded"; FAILED=1; }
sed -n 2p "$WORK/out.txt" | grep -q '"reason":"wrong"' || { echo "FAIL: wrong answer"; FAILED=1; }
sed -n 3p "$WORK/out.txt" | grep -q '"reason":"truncated"' || { echo "FAIL: truncated response"; FAILED=1; }
sed -n 4p "$WORK/out.txt" | grep -q '"reason":"no_answer"' || { echo "FAIL: no box"; FAILED=1; }
# Multiple choice: with the options, the chosen letter is scored as ovr_eval scores it.
printf '%s\n' '{"response": "\\boxed{\\textbf{(B)}}", "answer": "B", "options": ["1", "2", "3"]}' \
              '{"response": "\\boxed{2}", "answer": "B", "options": ["1", "2", "3"]}' \
              '{"response": "\\boxed{(B) 2}", "answer": "2", "options": ["1", "2", "3"]}' \
              '{"response": "\\boxed{C}", "answer": "B", "options": ["1", "2", "3"]}' >"$WORK/mc.jsonl"
expect_status 0 "rescore multiple-choice rows" -- sh -c "\"$BIN/ovr_inspect\" reward < \"$WORK/mc.jsonl\""
[ "$(grep -c '"reward":1' "$WORK/out.txt")" = 3 ] && sed -n 4p "$WORK/out.txt" | grep -q '"reason":"wrong"' \
  && echo "ok: multiple choice scored by the chosen letter" || { echo "FAIL: multiple choice"; cat "$WORK/out.txt"; FAILED=1; }
printf '%s\n' '{"response": "\\boxed{1}", "answer": "1"}' 'not json' >"$WORK/bad.jsonl"
expect_status 1 "malformed line" -- sh -c "\"$BIN/ovr_inspect\" reward < \"$WORK/bad.jsonl\""
expect_output "line 2" "line number named"
finish
