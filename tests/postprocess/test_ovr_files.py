"""postprocess/ovr_files.py: JSONL errors with line numbers, rollout reading, token decoding."""
import json
import os
import tempfile
import unittest

import h5py

from .ovr_fixtures import TINY_TOKENIZER, tiny_ids, write_jsonl, write_rollout
from ovr_files import InputError, Rollout, TokenDecoder, last_per_key, read_jsonl

# Rows of the shared fixture qwen2_5_vl_tokenizer/reference_encodings.jsonl (Hugging Face's
# encodings of these texts under Qwen2.5-VL's tokenizer), copied so the test reads nothing outside
# the repository. The last row's special tokens are skipped on decode.
QWEN_REFERENCE = [
    ("UNwantéd,running", [1861, 52657, 15083, 11, 27173]),
    ("\\boxed{(-\\infty, 3) \\cup (5, \\infty)}",
     [59, 79075, 90, 4080, 59, 258, 36958, 11, 220, 18, 8, 1124, 36665, 320, 20, 11, 1124, 258, 36958, 9139]),
    ("描述这张图片的内容。", [53481, 108893, 45930, 104597, 1773]),
    ("👨\u200d👩\u200d👧\u200d👦", [145367, 378, 235, 145233, 378, 235, 145665, 378, 235, 145988]),
    ("user\nWhat is shown?",  # "<|im_start|>user\n<|vision_start|><|image_pad|>x4<|vision_end|>What is shown?<|im_end|>"
     [151644, 872, 198, 151652, 151655, 151655, 151655, 151655, 151653, 3838, 374, 6839, 30, 151645]),
]
# The byte-level vocabulary strings of the ids above, copied from that tokenizer.json's model.vocab.
QWEN_VOCAB = {8: ')', 11: ',', 18: '3', 20: '5', 30: '?', 59: '\\', 90: '{', 198: 'Ċ', 220: 'Ġ', 235: 'į', 258: 'in',
              320: 'Ġ(', 374: 'Ġis', 378: 'âĢ', 872: 'user', 1124: 'Ġ\\', 1773: 'ãĢĤ', 1861: 'UN', 3838: 'What',
              4080: '(-', 6839: 'Ġshown', 9139: ')}', 15083: 'Ã©d', 27173: 'running', 36665: 'cup', 36958: 'fty',
              45930: 'åĽ¾çīĩ', 52657: 'want', 79075: 'boxed', 53481: 'æııè¿°', 104597: 'çļĦåĨħå®¹', 108893: 'è¿Ļå¼ł',
              145233: 'ðŁĳ©', 145367: 'ðŁĳ¨', 145665: 'ðŁĳ§', 145988: 'ðŁĳ¦'}
QWEN_SPECIALS = {151644: "<|im_start|>", 151645: "<|im_end|>", 151652: "<|vision_start|>",
                 151653: "<|vision_end|>", 151655: "<|image_pad|>"}


class ReadJsonl(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "m.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def test_malformed_line_is_named_with_its_number(self):
        write_jsonl(self.path, [{"iteration": 0}, "", "{not json", {"iteration": 2}])
        with self.assertRaisesRegex(InputError, r"m\.jsonl:3: malformed JSON"):
            read_jsonl(self.path)

    def test_missing_and_mistyped_fields_are_named(self):
        write_jsonl(self.path, [{"iteration": 0}, {"reward": 1}])
        with self.assertRaisesRegex(InputError, r"m\.jsonl:2: missing field 'iteration'"):
            read_jsonl(self.path, {"iteration": int})
        write_jsonl(self.path, [{"iteration": "zero"}])
        with self.assertRaisesRegex(InputError, r"m\.jsonl:1: field 'iteration' has the wrong type"):
            read_jsonl(self.path, {"iteration": int})

    def test_missing_file_is_named(self):
        with self.assertRaisesRegex(InputError, r"m\.jsonl: no such file"):
            read_jsonl(self.path)

    def test_last_row_per_iteration_wins_and_rows_are_sorted(self):
        rows = [{"iteration": 1, "v": "a"}, {"iteration": 0, "v": "b"}, {"iteration": 1, "v": "c"}]
        self.assertEqual([r["v"] for r in last_per_key(rows, "iteration")], ["b", "c"])


class DecodeTokens(unittest.TestCase):
    def test_qwen_reference_encodings_decode_to_their_text(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "tokenizer.json")
            added = [{"id": i, "content": c, "special": True} for i, c in QWEN_SPECIALS.items()]
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"model": {"type": "BPE", "vocab": {t: i for i, t in QWEN_VOCAB.items()}},
                           "added_tokens": added}, f)
            decoder = TokenDecoder(path)
        for text, ids in QWEN_REFERENCE:
            self.assertEqual(decoder.decode(ids), text)

    def test_tiny_tokenizer_skips_special_tokens_and_keeps_plain_added_ones(self):
        decoder = TokenDecoder(TINY_TOKENIZER)
        self.assertEqual(decoder.decode(tiny_ids("2+3=5, é ✓")), "2+3=5, é ✓")
        self.assertEqual(decoder.decode([270] + list(b"x")), "<tool_call>x")  # 270: <tool_call>, not special

    def test_split_utf8_is_replaced_not_fatal(self):
        self.assertEqual(TokenDecoder(TINY_TOKENIZER).decode(list("é".encode())[:1]), "\ufffd")


class ReadRollout(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "iter_000003.h5")

    def tearDown(self):
        self.dir.cleanup()

    def test_groups_and_samples_are_read_back(self):
        write_rollout(self.path, [("", [("a", 1.0, "eos"), ("bb", 0.0, "length")]), ("img/1.png", [("ccc", 1.0, "eos")])],
                      iteration=3, max_new_tokens=128)
        with Rollout(self.path) as r:
            self.assertEqual(r.meta, {"iteration": 3, "seed": 0, "max_new_tokens": 128})
            self.assertEqual(r.strings("finish_reason"), ["eos", "length", "eos"])
            self.assertEqual([len(t) for t in r.responses()], [2, 3, 4])
            self.assertEqual(list(r.sample_is_image()), [False, False, True])

    def test_missing_dataset_is_named(self):
        write_rollout(self.path, [("", [("a", 1.0, "eos")])], omit=("reward",))
        with Rollout(self.path) as r, self.assertRaisesRegex(InputError, r"iter_000003\.h5: missing dataset /rollout/reward"):
            r.array("reward")

    def test_checksum_mismatch_is_reported(self):
        write_rollout(self.path, [("", [("a", 1.0, "eos")])])
        with h5py.File(self.path, "r+") as f:
            f["rollout/reward"][0] = 0.0
        with Rollout(self.path) as r, self.assertRaisesRegex(InputError, r"/rollout/reward: checksum mismatch"):
            r.array("reward")

    def test_a_file_that_is_not_hdf5_is_named(self):
        with open(self.path, "w") as f:
            f.write("not hdf5")
        with self.assertRaisesRegex(InputError, r"iter_000003\.h5: not a readable HDF5 file"):
            Rollout(self.path)


if __name__ == "__main__":
    unittest.main()
