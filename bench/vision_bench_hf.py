"""Baseline of bench/vision_bench.cpp: transformers' Qwen2VL image processor (PIL) and the
Qwen2.5-VL vision tower on the same images, weights, max_pixels and threads.

    python3 vision_bench_hf.py MODEL_DIR THREADS MAX_PIXELS IMAGE...
"""
import json
import sys
import time

import torch
from PIL import Image
from transformers import Qwen2_5_VLForConditionalGeneration

model_dir, threads, max_pixels, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
torch.set_num_threads(threads)
try:
    from transformers import Qwen2VLImageProcessorPil as Processor
except ImportError:
    from transformers import Qwen2VLImageProcessor as Processor
proc = Processor(min_pixels=3136, max_pixels=max_pixels)
model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
visual = model.model.visual
best, tokens = float("inf"), 0
with torch.no_grad():
    for _ in range(3):
        t0 = time.perf_counter()
        tokens = 0
        for f in files:
            out = proc(images=Image.open(f).convert("RGB"), return_tensors="pt")
            feats = visual(out["pixel_values"], grid_thw=out["image_grid_thw"])
            feats = getattr(feats, "pooler_output", feats)
            tokens += sum(x.shape[0] for x in feats) if isinstance(feats, (list, tuple)) else feats.shape[0]
        best = min(best, time.perf_counter() - t0)
print(json.dumps({"impl": "transformers", "images": len(files), "llm_tokens": int(tokens),
                  "images_per_s": round(len(files) / best, 3)}))
