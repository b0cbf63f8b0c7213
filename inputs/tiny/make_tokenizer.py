#!/usr/bin/env python3
"""Writes inputs/tiny/tokenizer.json: Qwen2.5-VL's tokenizer reduced to its 256 byte tokens.

The tiny default model (vocab 512) cannot use Qwen's 151,665-token vocabulary. This tokenizer
keeps everything else of Qwen2.5-VL's tokenizer.json (NFC, the pre-tokenizer regex, byte-level
BPE, the same 22 added tokens in the same order), with no merges: every UTF-8 byte is one token,
ids 0-255 in GPT-2's byte-to-unicode order, and the added tokens follow from id 256. So the text
is character-level (for ASCII) and the chat template, image placeholders and special tokens work
exactly as with the real model. Run: python3 inputs/tiny/make_tokenizer.py
"""
import json
import os

REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
         r"\s*[\r\n]+|\s+(?!\S)|\s+")
ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
         "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
         "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
         "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
         "<|repo_name|>", "<|file_sep|>"]
NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
               "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"}


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map (as in HF tokenizers' ByteLevel)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main():
    byte_chars = bytes_to_unicode()
    vocab = {byte_chars[b]: b for b in range(256)}
    bytelevel = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 256 + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": t not in NOT_SPECIAL} for i, t in enumerate(ADDED)],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": REGEX}, "behavior": "Isolated", "invert": False}, bytelevel]},
        "post_processor": bytelevel, "decoder": bytelevel,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenizer.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", out, "ids:", {t: 256 + i for i, t in enumerate(ADDED) if t.startswith("<|im") or "vision" in t or "image" in t or "endoftext" in t})


if __name__ == "__main__":
    main()
