# HF -> HDF5 -> HF through the executables is byte-identical, and h5py reads our values.
source "$(dirname "$0")/lib.sh"
CFG="$REPO/inputs/tiny/config.json"
expect_status 0 "ovr_init a bf16 HF model, 3 shards" -- "$BIN/ovr_init" --model-config "$CFG" --dtype BF16 -o "$WORK/hf_init"
# Re-shard the model through HDF5 with small shards, then back to one file: every byte equal.
expect_status 0 "HF -> HDF5" -- "$BIN/ovr_convert" "$WORK/hf_init" "$WORK/model.h5"
expect_status 0 "HDF5 -> sharded HF" -- "$BIN/ovr_convert" --max-shard-size 200KB "$WORK/model.h5" "$WORK/hf_sharded"
ls "$WORK/hf_sharded" | grep -q "model-00001-of" || { echo "FAIL: not sharded"; FAILED=1; }
expect_status 0 "sharded HF -> HDF5 on 2 ranks" -- $MPIEXEC 2 "$BIN/ovr_convert" "$WORK/hf_sharded" "$WORK/model2.h5"
expect_status 0 "HDF5 -> HF" -- "$BIN/ovr_convert" "$WORK/model2.h5" "$WORK/hf_back"
cmp "$WORK/hf_init/model.safetensors" "$WORK/hf_back/model.safetensors" || { echo "FAIL: HF -> HDF5 -> HF not byte-identical"; FAILED=1; }
cmp "$WORK/hf_init/config.json" "$WORK/hf_back/config.json" || { echo "FAIL: config.json changed"; FAILED=1; }
expect_status 0 "inspect (JSON)" -- "$BIN/ovr_inspect" checkpoint --json "$WORK/model2.h5"
expect_output '"integrity": "ok:' "inspect json"
expect_status 1 "refuses to overwrite a directory" -- "$BIN/ovr_convert" "$WORK/model2.h5" "$WORK/hf_back"
expect_output "already exists (pass --overwrite to replace it)" "overwrite refusal"
expect_status 0 "--overwrite replaces it" -- "$BIN/ovr_convert" --overwrite "$WORK/model2.h5" "$WORK/hf_back"

# h5dump and h5py read the values (h5py sees bf16 as float32 through our HDF5 float type).
if command -v h5dump >/dev/null; then
  expect_status 0 "h5dump reads a bf16 dataset" -- h5dump -d "/model/model.norm.weight" "$WORK/model.h5"
  expect_output "1, 1, 1, 1" "h5dump values"
fi
if /usr/bin/python3 -c "import h5py, numpy" 2>/dev/null; then
  cat >"$WORK/check.py" <<'PY'
import json, struct, sys
import h5py, numpy as np
h5, st = sys.argv[1], sys.argv[2]
raw = open(st, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
with h5py.File(h5, "r") as f:
    assert f.attrs["format"] in (b"ovr-checkpoint", "ovr-checkpoint"), f.attrs["format"]
    checked = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        b, e = meta["data_offsets"]
        bits = np.frombuffer(raw[8 + n + b: 8 + n + e], dtype=np.uint16).astype(np.uint32) << 16
        want = bits.view(np.float32).reshape(meta["shape"])
        got = f["model"][name][()]
        assert got.dtype == np.float32, got.dtype
        assert np.array_equal(got, want), name
        checked += 1
print(f"h5py read {checked} bf16 tensors with the right values")
PY
  expect_status 0 "h5py reads every bf16 tensor's values" -- /usr/bin/python3 "$WORK/check.py" "$WORK/model.h5" "$WORK/hf_init/model.safetensors"
  expect_output "h5py read" "h5py"
fi
finish
