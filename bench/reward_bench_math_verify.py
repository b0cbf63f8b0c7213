#!/usr/bin/env python3
"""math-verify on the reward case tables: the baseline of reward_bench (same cases, same run).

    python3 reward_bench_math_verify.py CASES.jsonl [MORE.jsonl ...]

Needs `pip install math-verify`. Each case is put to math-verify as
tests/fixtures/reward/make_math_verify_expectations.py does (parse the response, parse the
reference as \\boxed{ANSWER}, verify); one pass over the cases that are not hostile_* or depth_* (where math-verify
hits its 5 s timeout) is timed after a warm-up pass; agreement counts every case. Prints one line:
    math-verify VERSION  verdicts/s  agree/total
"""
import json
import sys
import time
from importlib.metadata import version

from math_verify import parse, verify


def verdict(case):
    if case.get("truncated", False):
        return 0
    answer = case["answer"]
    if "\\boxed" in answer or "\\fbox" in answer:
        gold = parse(answer)
    else:
        gold = parse("\\boxed{" + answer + "}") or parse("$" + answer + "$")
    pred = parse(case["response"])
    if not gold or not pred:
        return 0
    return int(bool(verify(gold, pred)))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cases = []
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            cases += [json.loads(line) for line in f if line.strip()]
    slow = ("hostile_", "depth_")  # math-verify's 5 s timeout on some: timed apart, as reward_bench does
    hostile = [c for c in cases if c["id"].startswith(slow)]
    timed = [c for c in cases if not c["id"].startswith(slow)]
    for c in timed:
        verdict(c)
    start = time.perf_counter()
    agree = sum(verdict(c) == c["expected"] for c in timed)
    elapsed = time.perf_counter() - start
    agree += sum(verdict(c) == c["expected"] for c in hostile)
    name = "math-verify " + version("math-verify")
    print(f"{name:<28} {len(timed) / elapsed:12.0f} {agree:10d}/{len(cases)}   "
          f"(rate over the {len(timed)} cases that are not hostile_* or depth_*)", flush=True)


if __name__ == "__main__":
    main()
