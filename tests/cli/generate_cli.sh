# ovr_inspect generate: greedy output equals transformers' on the parity model; text prompts
# through the tokenizer and chat template; bad input gets one error line.
source "$(dirname "$0")/lib.sh"
FIX="$REPO/tests/fixtures"
# Row 0 of the parity fixture: 8 prompt ids, and the 16 ids transformers generated greedily.
PROMPT=$(/usr/bin/python3 -c "import json; print(','.join(map(str, json.load(open('$FIX/qwen2_5_vl_tiny/parity.json'))['gen_output_ids'][0][:8])))")
WANT=$(/usr/bin/python3 -c "import json; print(json.load(open('$FIX/qwen2_5_vl_tiny/parity.json'))['gen_output_ids'][0][8:])")
expect_status 0 "greedy generation from the parity model" -- "$BIN/ovr_inspect" generate --model "$FIX/qwen2_5_vl_tiny" \
  --prompt-ids "$PROMPT" --greedy --max-new-tokens 16
GOT=$(/usr/bin/python3 -c "import json,sys; print(json.load(open('$WORK/out.txt'))['samples'][0]['ids'])" 2>/dev/null)
[ "$GOT" = "$WANT" ] || { echo "FAIL: generated $GOT, transformers generated $WANT"; FAILED=1; }

# The same model as an ovr HDF5 checkpoint.
expect_status 0 "convert the parity model to HDF5" -- "$BIN/ovr_convert" "$FIX/qwen2_5_vl_tiny" "$WORK/tiny.h5"
expect_status 0 "greedy generation from the HDF5 checkpoint" -- "$BIN/ovr_inspect" generate --model "$WORK/tiny.h5" \
  --prompt-ids "$PROMPT" --greedy --max-new-tokens 16
GOT=$(/usr/bin/python3 -c "import json,sys; print(json.load(open('$WORK/out.txt'))['samples'][0]['ids'])" 2>/dev/null)
[ "$GOT" = "$WANT" ] || { echo "FAIL: from HDF5: generated $GOT, expected $WANT"; FAILED=1; }

# A text prompt through the real Qwen2.5-VL tokenizer and chat template, on a small random model
# with the full vocabulary; 3 samples with top-p, reproducible with the same seed.
cat >"$WORK/config.json" <<'JSON'
{"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
 "num_attention_heads": 2, "num_key_value_heads": 1, "tie_word_embeddings": true, "eos_token_id": 151645}
JSON
expect_status 0 "init a full-vocabulary model" -- "$BIN/ovr_init" --model-config "$WORK/config.json" -o "$WORK/vocab_model"
cp "$FIX/qwen2_5_vl_tokenizer/tokenizer.json" "$WORK/vocab_model/"
for run in a b; do
  expect_status 0 "chat prompt, 3 samples (run $run)" -- "$BIN/ovr_inspect" generate --model "$WORK/vocab_model" \
    --prompt "What is 2+3? Answer in \\boxed{}." --chat --n 3 --temperature 0.8 --top-p 0.9 --seed 5 --max-new-tokens 6
  cp "$WORK/out.txt" "$WORK/run_$run.json"
done
expect_output '"prompt_text": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+3?' "chat template"
expect_output '"finish_reason"' "samples"
same=$(/usr/bin/python3 -c "import json; a, b = (json.load(open('$WORK/run_' + r + '.json'))['samples'] for r in 'ab'); print(a == b and len(a) == 3)")
[ "$same" = "True" ] || { echo "FAIL: same seed, different samples"; FAILED=1; }

# Images: a tiny Qwen2.5-VL with the full vocabulary and a vision tower; two fixture PNGs of
# different sizes in one user turn.
cat >"$WORK/vl_config.json" <<'JSON'
{"model_type": "qwen2_5_vl", "vocab_size": 151936, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
 "num_attention_heads": 2, "num_key_value_heads": 1, "tie_word_embeddings": true, "eos_token_id": 151645,
 "image_token_id": 151655, "vision_start_token_id": 151652,
 "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
 "vision_config": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
                   "fullatt_block_indexes": [1]}}
JSON
expect_status 0 "init a tiny Qwen2.5-VL" -- "$BIN/ovr_init" --model-config "$WORK/vl_config.json" -o "$WORK/vl_model"
cp "$FIX/qwen2_5_vl_tokenizer/tokenizer.json" "$WORK/vl_model/"
IMG="$FIX/image_processor/images"
expect_status 0 "generate with two images" -- "$BIN/ovr_inspect" generate --model "$WORK/vl_model" --chat --greedy \
  --prompt "How many squares?" --image "$IMG/pattern_56x84.png" --image "$IMG/checker_noise_84x56.png" --max-new-tokens 4
expect_output '<|vision_start|><|image_pad|><|image_pad|><|image_pad|><|image_pad|><|image_pad|><|image_pad|><|vision_end|>' "image pads in the prompt"
expect_output '"finish_reason"' "samples with images"
expect_status 2 "--image without --chat" -- "$BIN/ovr_inspect" generate --model "$WORK/vl_model" --prompt x --image "$IMG/pattern_56x84.png"
expect_status 1 "--image that is not an image" -- "$BIN/ovr_inspect" generate --model "$WORK/vl_model" --chat --prompt x --image "$WORK/vl_config.json"
expect_output "ovr_inspect: error: $WORK/vl_config.json" "bad image named"

expect_status 2 "both --prompt and --prompt-ids" -- "$BIN/ovr_inspect" generate --model "$WORK/vocab_model" --prompt x --prompt-ids 1
expect_status 2 "bad temperature" -- "$BIN/ovr_inspect" generate --model "$WORK/vocab_model" --prompt-ids 1 --temperature 0
expect_status 2 "token id outside the vocabulary" -- "$BIN/ovr_inspect" generate --model "$FIX/qwen2_5_vl_tiny" --prompt-ids 1,600
expect_output "outside the model's vocabulary of 512" "vocabulary check"
expect_status 1 "missing model" -- "$BIN/ovr_inspect" generate --model "$WORK/nope" --prompt-ids 1
expect_output "ovr_inspect: error: $WORK/nope: no such file or directory" "missing model"
finish
