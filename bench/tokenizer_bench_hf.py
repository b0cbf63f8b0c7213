#!/usr/bin/env python3
"""Hugging Face `tokenizers` (Rust) encode throughput on MATH500, the baseline of tokenizer_bench.

    python3 tokenizer_bench_hf.py TOKENIZER_JSON MATH500_JSONL [REPEATS]

Needs `pip install tokenizers`. One thread (RAYON_NUM_THREADS=1; single-text encode does not use
threads anyway). Same protocol as tokenizer_bench.cpp: problems and solutions encoded one text at a
time without special tokens, one warm-up pass, best of REPEATS. Prints one line:
    hf_tokenizers VERSION MB/s=… tokens=…
The per-call Python overhead is measured too (encode_batch, which has none per text, is timed as
well) and the faster of the two is reported, so the baseline is not handicapped by Python.
"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import tokenizers  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    tok = tokenizers.Tokenizer.from_file(sys.argv[1])
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    texts = []
    with open(sys.argv[2], encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                texts += [row["problem"], row["solution"]]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    tokens = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for t in texts:
            tok.encode(t, add_special_tokens=False)
        best = min(best, time.perf_counter() - t0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        tok.encode_batch(texts, add_special_tokens=False)
        best = min(best, time.perf_counter() - t0)
    print(f"hf_tokenizers {tokenizers.__version__} MB/s={nbytes / best / 1e6:.2f} tokens={tokens} "
          f"(best of {repeats} one-by-one and {repeats} encode_batch runs, one thread)")


if __name__ == "__main__":
    main()
