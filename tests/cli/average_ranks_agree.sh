# ovr_average under mpiexec -n 2 writes exactly what one rank writes, in every output format.
source "$(dirname "$0")/lib.sh"
CFG="$REPO/inputs/tiny/config.json"
for s in 1 2 3; do
  expect_status 0 "ovr_init seed $s" -- "$BIN/ovr_init" --model-config "$CFG" --seed $s --dtype BF16 -o "$WORK/in$s"
done
IN="$WORK/in1 $WORK/in2 $WORK/in3"
expect_status 0 "average on 1 rank (safetensors)" -- "$BIN/ovr_average" -o "$WORK/one.safetensors" --weights 1,2,1 $IN
expect_status 0 "average on 2 ranks (safetensors)" -- $MPIEXEC 2 "$BIN/ovr_average" -o "$WORK/two.safetensors" --weights 1,2,1 $IN
cmp "$WORK/one.safetensors" "$WORK/two.safetensors" || { echo "FAIL: 1-rank and 2-rank safetensors differ"; FAILED=1; }
expect_status 0 "average on 2 ranks (HDF5)" -- $MPIEXEC 2 "$BIN/ovr_average" -o "$WORK/two.h5" --weights 1,2,1 $IN
expect_status 0 "average on 3 ranks (HF dir, small shards)" -- $MPIEXEC 3 "$BIN/ovr_average" -o "$WORK/three" --max-shard-size 100KB --weights 1,2,1 $IN
[ -f "$WORK/three/model.safetensors.index.json" ] || { echo "FAIL: no shard index"; FAILED=1; }
expect_status 0 "HDF5 average back to one file" -- "$BIN/ovr_convert" "$WORK/two.h5" "$WORK/two_h5.safetensors"
cmp "$WORK/one.safetensors" "$WORK/two_h5.safetensors" || { echo "FAIL: HDF5 average differs"; FAILED=1; }
expect_status 0 "sharded average back to one file" -- "$BIN/ovr_convert" "$WORK/three" "$WORK/three.safetensors"
cmp "$WORK/one.safetensors" "$WORK/three.safetensors" || { echo "FAIL: sharded average differs"; FAILED=1; }
expect_status 0 "inspect the average" -- "$BIN/ovr_inspect" checkpoint "$WORK/two.h5"
expect_output "role               average" "role attribute"
expect_output "integrity: ok" "integrity"
# Weights whose normalisation would make NaN or zero tensors are refused, naming the option.
expect_status 2 "an infinite weight" -- "$BIN/ovr_average" -o "$WORK/inf.h5" --weights 1,inf,1 $IN
expect_output "--weights: 'inf' is not a finite non-negative number" "infinite weight named"
expect_status 2 "weights whose sum overflows" -- "$BIN/ovr_average" -o "$WORK/big.h5" --weights 1e308,1e308,1 $IN
expect_output "--weights: their sum overflows" "overflow named"
[ -e "$WORK/inf.h5" ] || [ -e "$WORK/big.h5" ] && { echo "FAIL: a refused average wrote a file"; FAILED=1; }
finish
