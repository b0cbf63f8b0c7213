"""Reading what ovr writes (JSONL metrics, eval summaries, rollout HDF5) and decoding tokens.

Every problem with an input is raised as InputError with a message that names the file (and
the line, for JSONL), so each script can print one line and exit 1 instead of a traceback.
"""
import json
import os
import sys
import zlib

import numpy as np


class InputError(Exception):
    """A missing or malformed input; the message already names the file."""


def run_main(main):
    """Run a script's main(); bad input becomes one line on stderr and exit status 1."""
    prog = os.path.basename(sys.argv[0])
    try:
        return main()
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1


def parse_labels(pairs, parser):
    """--label PATH=NAME options -> {normalised path: name}; a malformed one is a usage error."""
    labels = {}
    for pair in pairs or []:
        path, sep, name = pair.rpartition("=")
        if not sep or not path or not name:
            parser.error(f"--label expects PATH=NAME, got '{pair}'")
        labels[os.path.normpath(path)] = name
    return labels


def require_file(path):
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, expected a file")


def read_json(path):
    require_file(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None


def read_jsonl(path, required=None):
    """One dict per non-blank line; `required` maps keys every line must have to their type(s)."""
    require_file(path)
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{line_no}: malformed JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{line_no}: expected a JSON object")
            for key, kind in (required or {}).items():
                if key not in row:
                    raise InputError(f"{path}:{line_no}: missing field '{key}'")
                if not isinstance(row[key], kind):
                    raise InputError(f"{path}:{line_no}: field '{key}' has the wrong type ({row[key]!r})")
            rows.append(row)
    return rows


def last_per_key(rows, key):
    """Keep the last row for each value of `key` (a resumed run repeats iterations), sorted."""
    latest = {}
    for row in rows:
        latest[row[key]] = row
    return [latest[k] for k in sorted(latest)]


class Rollout:
    """One rollout HDF5 file (docs/rollout-format.md), read dataset by dataset on demand."""

    def __init__(self, path):
        import h5py  # only the scripts that read rollouts pay for the import

        require_file(path)
        self.path = path
        try:
            self._file = h5py.File(path, "r")
        except OSError as e:
            raise InputError(f"{path}: not a readable HDF5 file ({e})") from None
        if "rollout" not in self._file:
            raise InputError(f"{path}: missing group /rollout (not a rollout file)")
        self._group = self._file["rollout"]
        try:
            self.meta = json.loads(self._file.attrs.get("rollout", b"{}"))
        except json.JSONDecodeError:
            raise InputError(f"{path}: root attribute 'rollout' is not valid JSON") from None

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def array(self, name):
        """A whole dataset, its CRC-32 checked as the format requires on every full read."""
        if name not in self._group:
            raise InputError(f"{self.path}: missing dataset /rollout/{name}")
        dataset = self._group[name]
        values = dataset[()]
        stored = dataset.attrs.get("crc32")
        if stored is not None:
            computed = zlib.crc32(np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<")).tobytes())
            if computed != int(stored):
                raise InputError(f"{self.path}: dataset /rollout/{name}: checksum mismatch "
                                 f"(stored crc32 {int(stored):08x}, computed {computed:08x}); the file is corrupt")
        return values

    def ragged(self, name, lengths_name=None):
        """A flat dataset split into rows by its `*_lengths` companion."""
        values = self.array(name)
        lengths = self.array(lengths_name or f"{name}_lengths")
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        if offsets[-1] != len(values):
            raise InputError(f"{self.path}: /rollout/{name} holds {len(values)} values "
                             f"but its lengths sum to {offsets[-1]}")
        return [values[offsets[i]:offsets[i + 1]] for i in range(len(lengths))]

    def strings(self, name):
        return [bytes(row).decode("utf-8", errors="replace") for row in self.ragged(name)]

    def responses(self, name="response_tokens"):
        return self.ragged(name, "response_lengths")

    def sample_is_image(self):
        """Per sample: True when its group's prompt had an image (non-empty `image`)."""
        group_has_image = np.array([bool(s) for s in self.strings("image")], dtype=bool)
        groups = self.array("sample_group")
        if len(groups) and (groups.min() < 0 or groups.max() >= len(group_has_image)):
            raise InputError(f"{self.path}: /rollout/sample_group refers to a group that does not exist")
        return group_has_image[groups]


def _byte_level_alphabet():
    """GPT-2's byte -> printable unicode character table, reversed (character -> byte)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


class TokenDecoder:
    """Hugging Face byte-level BPE tokenizer.json -> ids to text, special added tokens skipped."""

    def __init__(self, path):
        spec = read_json(path)
        try:
            vocab = spec["model"]["vocab"]
            added = spec.get("added_tokens", [])
        except (KeyError, TypeError):
            raise InputError(f"{path}: not a tokenizer.json (no model.vocab)") from None
        char_to_byte = _byte_level_alphabet()
        self._bytes = {}
        for token, token_id in vocab.items():
            try:
                self._bytes[token_id] = bytes(char_to_byte[c] for c in token)
            except KeyError:  # as the Hugging Face decoder does: a token outside the alphabet is literal text
                self._bytes[token_id] = token.encode("utf-8")
        for token in added:
            # added tokens are stored as literal text, not in the byte-level alphabet
            self._bytes[token["id"]] = b"" if token.get("special") else token["content"].encode("utf-8")

    def decode(self, ids):
        # An id outside the vocabulary (a model whose embedding is padded past the tokenizer
        # can sample one) is skipped, as Hugging Face's decode does.
        raw = b"".join(self._bytes.get(int(i), b"") for i in ids)
        return raw.decode("utf-8", errors="replace")
