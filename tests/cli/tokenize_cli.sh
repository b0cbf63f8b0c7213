# ovr_inspect tokenize: JSONL text -> ids -> text, as users pipe it, and its errors.
source "$(dirname "$0")/lib.sh"
TOK="$REPO/tests/fixtures/qwen2_5_vl_tokenizer"

printf '{"text": "You should'"'"'ve done this"}\n\n{"text": "<|im_start|>user\\nHi<|im_end|>", "id": 7}\n' >"$WORK/in.jsonl"
expect_status 0 "encode two lines (and skip a blank one)" -- sh -c "'$BIN/ovr_inspect' tokenize --tokenizer '$TOK/tokenizer.json' <'$WORK/in.jsonl' >'$WORK/ids.jsonl'"
# The first line's ids are a row of the reference encodings (Hugging Face's).
grep -qxF '{"ids":[2610,1265,3003,2814,419]}' "$WORK/ids.jsonl" || { echo "FAIL: ids of line 1"; cat "$WORK/ids.jsonl"; FAILED=1; }
grep -qxF '{"ids":[151644,872,198,13048,151645]}' "$WORK/ids.jsonl" || { echo "FAIL: ids of line 2"; cat "$WORK/ids.jsonl"; FAILED=1; }
[ "$(wc -l <"$WORK/ids.jsonl")" = 2 ] || { echo "FAIL: expected 2 output lines"; FAILED=1; }

# --decode gives the text back; a model directory works as --tokenizer.
expect_status 0 "decode the ids" -- sh -c "'$BIN/ovr_inspect' tokenize --tokenizer '$TOK' --decode <'$WORK/ids.jsonl' >'$WORK/text.jsonl'"
grep -qxF '{"text":"You should'"'"'ve done this"}' "$WORK/text.jsonl" || { echo "FAIL: decoded line 1"; cat "$WORK/text.jsonl"; FAILED=1; }
grep -qxF '{"text":"<|im_start|>user\nHi<|im_end|>"}' "$WORK/text.jsonl" || { echo "FAIL: decoded line 2"; cat "$WORK/text.jsonl"; FAILED=1; }

printf '{"text": "ok"}\n{"txt": "typo"}\n' >"$WORK/bad.jsonl"
expect_status 1 "a line without text" -- sh -c "'$BIN/ovr_inspect' tokenize --tokenizer '$TOK' <'$WORK/bad.jsonl'"
expect_output 'ovr_inspect: error: stdin line 2: expected {"text": string}' "error names the line"
printf '{"ids": [1, 2]}\n{"ids": [1, "x"]}\n' >"$WORK/bad_ids.jsonl"
expect_status 1 "ids that are not ids" -- sh -c "'$BIN/ovr_inspect' tokenize --tokenizer '$TOK' --decode <'$WORK/bad_ids.jsonl'"
expect_output 'ovr_inspect: error: stdin line 2: "ids" holds "x", not a token id' "error names the line and the value"
printf 'not json\n' >"$WORK/not_json.jsonl"
expect_status 1 "not JSON" -- sh -c "'$BIN/ovr_inspect' tokenize --tokenizer '$TOK' <'$WORK/not_json.jsonl'"
expect_output "stdin line 1: not valid JSON" "error names the line"
expect_status 1 "missing tokenizer" -- sh -c "'$BIN/ovr_inspect' tokenize --tokenizer '$WORK/none.json' </dev/null"
expect_output "$WORK/none.json: no such file" "error names the file"
expect_status 2 "no --tokenizer" -- sh -c "'$BIN/ovr_inspect' tokenize </dev/null"
finish
