"""The baseline of bench/generation_bench.cpp: Hugging Face transformers' generate() on the same
weights, thread count, prompt length, new tokens and sampling settings.

    python3 generation_bench_hf.py MODEL_DIR THREADS PROMPT_LEN NEW_TOKENS BATCH...
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM

model_dir, threads, prompt_len, new_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
params = sum(p.numel() for p in model.parameters())
for batch in map(int, sys.argv[5:]):
    torch.manual_seed(0)
    ids = torch.randint(0, 150000, (batch, prompt_len))
    with torch.no_grad():
        t0 = time.perf_counter()
        model(input_ids=ids)  # prefill alone, for the prefill figure
        prefill = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_p=0.95,
                       top_k=0, max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)
        total = time.perf_counter() - t0
    decode = max(total - prefill, 1e-9)
    print(json.dumps({"impl": "transformers", "params": params, "batch": batch,
                      "prefill_tok_s": round(batch * prompt_len / prefill, 1),
                      "decode_tok_s": round(batch * new_tokens / decode, 1)}), flush=True)
