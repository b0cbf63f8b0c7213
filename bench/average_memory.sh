#!/usr/bin/env bash
# Peak memory of ovr_average on 4 inputs of more than 1 GB each, against its goal
# (<= 3 x the largest tensor + 200 MB) and against what holding the 4 models would take.
#
#   bash bench/average_memory.sh [WORKDIR]     (needs ~6 GB of disk; default /tmp/ovr_avg_bench)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-/tmp/ovr_avg_bench}"
BIN="$REPO/build/src"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1
mkdir -p "$WORK"
# A Qwen2-shaped fp32 model of ~1.1 GB: vocab 32000 x 2048 embeddings (262 MB each) are the
# largest tensors, as embeddings are in real models.
cat >"$WORK/config.json" <<'JSON'
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
 "hidden_size": 2048, "intermediate_size": 5504, "num_hidden_layers": 4, "num_attention_heads": 16,
 "num_key_value_heads": 2, "vocab_size": 32000, "tie_word_embeddings": false, "initializer_range": 0.02}
JSON
for s in 1 2 3 4; do
  [ -d "$WORK/in$s" ] || "$BIN/ovr_init" --model-config "$WORK/config.json" --seed $s -o "$WORK/in$s" >/dev/null
done
in_bytes=$(stat -c %s "$WORK/in1/model.safetensors")
largest=$(( 32000 * 2048 * 4 ))
run() {  # run LABEL COMMAND... : peak RSS (GNU time) and wall time of COMMAND
  local label="$1"; shift
  rm -rf "$WORK/out.h5" "$WORK/out"
  /usr/bin/time -f "%M %e" -o "$WORK/time.txt" "$@" >/dev/null
  read -r rss secs <"$WORK/time.txt"
  printf "%-52s %8d MB %8.1f s\n" "$label" "$(( rss / 1024 ))" "$secs"
}
echo "ovr_average memory: 4 inputs x $(( in_bytes / 1000000 )) MB, largest tensor $(( largest / 1000000 )) MB"
echo "goal: peak RSS <= 3 x largest + 200 MB = $(( (3 * largest) / 1000000 + 200 )) MB;" \
     "holding the 4 inputs alone would take $(( 4 * in_bytes / 1000000 )) MB"
printf "%-52s %11s %10s\n" "run" "peak RSS" "wall"
IN=("$WORK/in1" "$WORK/in2" "$WORK/in3" "$WORK/in4")
run "baseline: an ovr process that does nothing" "$BIN/ovr_inspect" --help
run "ovr_average -> .h5 (default 64MiB chunks)" "$BIN/ovr_average" -o "$WORK/out.h5" "${IN[@]}"
run "ovr_average -> .h5 (512MiB chunks: whole tensors)" "$BIN/ovr_average" --chunk-size 512MiB -o "$WORK/out.h5" "${IN[@]}"
run "ovr_average -> HF directory (default chunks)" "$BIN/ovr_average" -o "$WORK/out" "${IN[@]}"
