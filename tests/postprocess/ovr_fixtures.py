"""Tiny inputs in ovr's formats for the postprocess tests, and a way to run the scripts."""
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POSTPROCESS = os.path.join(REPO, "postprocess")
TINY_TOKENIZER = os.path.join(REPO, "inputs", "tiny", "tokenizer.json")
TINY_IM_END = 258  # a special added token of inputs/tiny/tokenizer.json, whose ids 0..255 are the bytes
sys.path.insert(0, POSTPROCESS)  # the scripts import their helpers as top-level modules


def run_script(name, *args):
    """Run postprocess/NAME as a user would; -> CompletedProcess with text stdout/stderr."""
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, os.path.join(POSTPROCESS, name), *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=60)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")


def tiny_ids(text):
    """Token ids of `text` under the tiny tokenizer (one id per byte), ended by <|im_end|>."""
    return list(text.encode("utf-8")) + [TINY_IM_END]


def write_rollout(path, groups, iteration=0, max_new_tokens=64, omit=()):
    """A rollout file as docs/rollout-format.md describes it.

    groups: [(image, [(response text, reward, finish_reason)])]; datasets named in `omit` are
    left out, to test the reader's errors.
    """
    import h5py

    per_group = {"prompt_tokens": [], "prompt_lengths": [], "dataset_index": [], "id": [], "id_lengths": [],
                 "answer": [], "answer_lengths": [], "image": [], "image_lengths": []}
    per_sample = {"sample_group": [], "sample_index": [], "response_tokens": [], "response_lengths": [],
                  "behaviour_logprobs": [], "reward": [], "finish_reason": [], "finish_reason_lengths": [],
                  "extracted": [], "extracted_lengths": [], "reward_reason": [], "reward_reason_lengths": []}

    def add_string(table, name, text):
        raw = list(text.encode("utf-8"))
        table[name] += raw
        table[name + "_lengths"].append(len(raw))

    for g, (image, samples) in enumerate(groups):
        prompt = tiny_ids(f"question {g}")
        per_group["prompt_tokens"] += prompt
        per_group["prompt_lengths"].append(len(prompt))
        per_group["dataset_index"].append(g)
        add_string(per_group, "id", f"q{g}")
        add_string(per_group, "answer", "5")
        add_string(per_group, "image", image)
        for i, (text, reward, finish) in enumerate(samples):
            tokens = tiny_ids(text)
            per_sample["sample_group"].append(g)
            per_sample["sample_index"].append(i)
            per_sample["response_tokens"] += tokens
            per_sample["response_lengths"].append(len(tokens))
            per_sample["behaviour_logprobs"] += [-0.5] * len(tokens)
            per_sample["reward"].append(reward)
            add_string(per_sample, "finish_reason", finish)
            add_string(per_sample, "extracted", "5" if reward else "")
            add_string(per_sample, "reward_reason", "correct" if reward else "wrong")
    dtypes = {"prompt_tokens": "<i4", "response_tokens": "<i4", "sample_index": "<i4", "behaviour_logprobs": "<f4",
              "reward": "<f4", "id": "u1", "answer": "u1", "image": "u1", "finish_reason": "u1", "extracted": "u1",
              "reward_reason": "u1"}
    with h5py.File(path, "w") as f:
        f.attrs["format"] = np.bytes_("ovr-checkpoint")
        f.attrs["format_version"] = 1
        f.attrs["step"] = iteration
        f.attrs["role"] = np.bytes_("rollouts")
        f.attrs["rollout"] = np.bytes_(json.dumps({"iteration": iteration, "seed": 0, "max_new_tokens": max_new_tokens}))
        group = f.create_group("rollout")
        for name, values in {**per_group, **per_sample}.items():
            if name in omit:
                continue
            array = np.asarray(values, dtype=dtypes.get(name, "<i8"))
            dataset = group.create_dataset(name, data=array)
            dataset.attrs["crc32"] = np.uint32(zlib.crc32(array.tobytes()))


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])
