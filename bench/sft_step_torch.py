#!/usr/bin/env python3
"""The baseline of bench/sft_bench.sh: the same SFT training step in PyTorch (Python) with
transformers' Qwen2ForCausalLM: the same weights, rows, threads and fp32; forward, token-mean
cross-entropy, backward, gradient clipping and torch.optim.AdamW. Prints one JSON line.

  python sft_step_torch.py MODEL_DIR THREADS SEQ ROWS STEPS
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    model_dir, threads, seq, rows, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.train()
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (rows, seq), generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0, foreach=True)
    best, total = 1e30, 0.0
    for s in range(steps + 1):  # step 0 warms up
        t = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t
        if s > 0:
            best, total = min(best, dt), total + dt
    print(json.dumps({"bench": "sft_step", "impl": f"torch {torch.__version__} + transformers", "threads": threads,
                      "seq_len": seq, "rows": rows, "tokens_per_s": rows * seq * steps / total, "best_step_s": best,
                      "attn_implementation": model.config._attn_implementation}))


if __name__ == "__main__":
    main()
