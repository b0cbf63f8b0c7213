#!/usr/bin/env bash
# SFT figures (bench/sft_bench.cpp), baselines in the same run:
#   1. training tokens/s and MFU of one rank, against the fp32 matmul peak of the same LibTorch,
#      and against a PyTorch (Python) step of the same model (bench/sft_step_torch.py);
#   2. optimizer state per rank on 1 and 2 ranks (goal: about 1/N);
#   3. ZeRO gradient reduce-scatter against one bare MPI_Reduce_scatter_block of the same bytes.
#
#   bash bench/sft_bench.sh [PYTHON]     PYTHON: an interpreter with torch + transformers
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-python3}"
WORK="${WORK:-/tmp/ovr_sft_bench}"
THREADS="${THREADS:-2}" SEQ="${SEQ:-512}" ROWS="${ROWS:-2}" STEPS="${STEPS:-5}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$WORK"
[ -f "$WORK/model/model.safetensors" ] || "$REPO/build/src/ovr_init" --model-config "$REPO/bench/configs/qwen2_50m.json" --seed 1 -o "$WORK/model" >/dev/null
B="$REPO/build/bench/sft_bench"
echo "== training step: ~50M-parameter Qwen2 (bench/configs/qwen2_50m.json), $ROWS x $SEQ tokens, $THREADS threads, fp32"
"$B" step "$WORK/model" "$THREADS" "$SEQ" "$ROWS" "$STEPS" | tee "$WORK/step.jsonl"
"$PY" "$REPO/bench/sft_step_torch.py" "$WORK/model" "$THREADS" "$SEQ" "$ROWS" "$STEPS" 2>/dev/null | tee -a "$WORK/step.jsonl"
echo "== ZeRO optimizer state and gradient communication (1 thread per rank)"
for np in 1 2; do for stage in 1 2; do
  mpiexec -n $np "$B" comm "$WORK/model" $stage 5 | tee -a "$WORK/comm.jsonl"
done; done
"$PY" - "$WORK/step.jsonl" "$WORK/comm.jsonl" <<'PY'
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1])]
ovr, ref = steps[0], steps[1]
print(f"training: ovr {ovr['tokens_per_s']:.0f} tok/s, MFU {100*ovr['mfu']:.1f}% of the measured matmul peak "
      f"({ovr['matmul_peak_flops_per_s']/1e9:.1f} GFLOP/s); {ref['impl']} ({ref['attn_implementation']}) "
      f"{ref['tokens_per_s']:.0f} tok/s: {ovr['tokens_per_s']/ref['tokens_per_s']:.2f}x (goal >= 1x)")
comm = [json.loads(l) for l in open(sys.argv[2])]
one = {c["stage"]: c for c in comm if c["ranks"] == 1}
for c in comm:
    print(f"ranks {c['ranks']} ZeRO-{c['stage']}: optimizer state {c['optimizer_state_bytes_per_rank']/2**20:.0f} MiB/rank "
          f"(master+moments {c['master_and_moments_bytes_per_rank']/2**20:.0f} MiB, "
          f"{c['master_and_moments_bytes_per_rank']/one[c['stage']]['master_and_moments_bytes_per_rank']:.2f} of 1 rank); "
          f"reduce-scatter {c['ovr_reduce_s']*1e3:.1f} ms vs bare MPI {c['bare_mpi_reduce_scatter_s']*1e3:.1f} ms "
          f"= {100*c['ovr_vs_bare_bandwidth']:.0f}% of its bandwidth")
PY
