#!/usr/bin/env python3
"""transformers' Qwen2VLImageProcessor throughput, the baseline of image_processor_bench.

    python3 image_processor_bench_hf.py IMAGE... [--repeats N]

Needs `pip install transformers pillow numpy` (the PIL backend; torch/torchvision only for the
fast one). Same protocol as image_processor_bench.cpp: each image opened with PIL, converted to
RGB and processed alone (Qwen2.5-VL's official settings: max_pixels 12845056), one thread, one
warm-up pass, best of N. Prints one line: hf_transformers VERSION images/s=… image_tokens=…
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import transformers  # noqa: E402
from PIL import Image  # noqa: E402


def processor():
    kwargs = dict(min_pixels=3136, max_pixels=12845056)
    try:  # transformers >= 5: the PIL backend is its own class
        from transformers import Qwen2VLImageProcessorPil
        return Qwen2VLImageProcessorPil(**kwargs)
    except ImportError:
        from transformers import Qwen2VLImageProcessor
        return Qwen2VLImageProcessor(**kwargs)


def main():
    args = sys.argv[1:]
    repeats = 3
    if "--repeats" in args:
        i = args.index("--repeats")
        repeats = int(args[i + 1])
        del args[i:i + 2]
    if not args:
        sys.exit(__doc__)
    proc = processor()
    best, tokens = float("inf"), 0
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        tokens = 0
        for path in args:
            with Image.open(path) as im:
                out = proc(images=im.convert("RGB"), return_tensors="np")
            t, h, w = out["image_grid_thw"][0]
            tokens += int(t * h * w) // 4
        if r > 0:
            best = min(best, time.perf_counter() - t0)
    print(f"hf_transformers {transformers.__version__} ({type(proc).__name__}) images/s={len(args) / best:.1f} "
          f"image_tokens={tokens} (best of {repeats}, one thread)")


if __name__ == "__main__":
    main()
