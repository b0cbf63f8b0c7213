# Bad input gets one clear error line and the documented exit status (2: usage, 1: bad data).
source "$(dirname "$0")/lib.sh"

expect_status 0 "--help documents every option with its default" -- "$BIN/ovr_average" --help
expect_output "--weights" "average --help"
expect_output "Optimizer state is NOT averaged" "average --help"
expect_output "(=64MiB)" "average --help shows defaults"
expect_status 0 "ovr_convert --help" -- "$BIN/ovr_convert" --help
expect_output "--max-shard-size" "convert --help"
expect_status 0 "ovr_inspect --help lists commands" -- "$BIN/ovr_inspect" --help
expect_output "checkpoint" "inspect --help"

expect_status 2 "unknown option" -- "$BIN/ovr_average" --output "$WORK/o.h5" --frobnicate a b
expect_output "ovr_average: error: unrecognised option '--frobnicate'" "unknown option"
[ "$(wc -l <"$WORK/out.txt")" = 1 ] || { echo "FAIL: unknown option: more than one line"; FAILED=1; }
expect_status 2 "missing required --output" -- "$BIN/ovr_average" a b
expect_output "ovr_average: error: the option '--output' is required" "missing --output"
expect_status 2 "bad option value" -- "$BIN/ovr_convert" --step many a b.h5
expect_output "ovr_convert: error:" "bad value"
expect_status 2 "bad byte size" -- "$BIN/ovr_convert" --max-shard-size 5XB a b
expect_output "--max-shard-size: unknown unit" "bad byte size"
expect_status 2 "an unknown checkpoint role" -- "$BIN/ovr_convert" --role wizard a b.h5
expect_output "--role: expected policy, critic or average, got 'wizard'" "role named"
expect_status 2 "a negative step" -- "$BIN/ovr_convert" --step -3 a b.h5
expect_output "--step: must be >= 0" "step named"
expect_status 2 "weights of the wrong count" -- "$BIN/ovr_average" -o "$WORK/o.h5" --weights 1,2,3 a b
expect_output "--weights: 3 weights for 2 inputs" "weight count"
expect_status 2 "negative weight" -- "$BIN/ovr_average" -o "$WORK/o.h5" --weights 1,-2 a b
expect_status 2 "unknown inspect command" -- "$BIN/ovr_inspect" frobnicate
expect_status 2 "unreadable --config" -- "$BIN/ovr_convert" --config "$WORK/none.ini" a b

expect_status 1 "missing input file" -- "$BIN/ovr_convert" "$WORK/missing" "$WORK/out.h5"
expect_output "ovr_convert: error: $WORK/missing: no such file or directory" "missing input"
[ ! -e "$WORK/out.h5" ] && [ ! -e "$WORK/out.h5.tmp" ] || { echo "FAIL: output left behind after an error"; FAILED=1; }

# A config file plus a flag override, and --print-config showing the result.
printf 'max-shard-size = 1MB\nstep = 9\n' >"$WORK/c.ini"
expect_status 0 "--print-config with --config and an override" -- "$BIN/ovr_convert" --config "$WORK/c.ini" --step 3 --print-config a b
expect_output "max-shard-size = 1MB" "config file value"
expect_output "step = 3" "flag overrides file"

# A model config with a missing field: the error names the file and the field.
printf '{"model_type": "qwen2", "hidden_size": 8}' >"$WORK/bad_config.json"
expect_status 1 "model config missing a field" -- "$BIN/ovr_init" --model-config "$WORK/bad_config.json" -o "$WORK/m.h5"
expect_output "ovr_init: error: $WORK/bad_config.json: missing field 'vocab_size'" "model config field"

# Under MPI: a bad input on 2 ranks ends the job with an error, and no rank hangs.
expect_status 1 "missing input under mpiexec -n 2 exits, no hang" -- timeout 120 $MPIEXEC 2 "$BIN/ovr_average" -o "$WORK/o.h5" "$WORK/missing1" "$WORK/missing2"
expect_output "ovr_average: error: $WORK/missing1: no such file or directory" "one error line under MPI"
[ "$(grep -c error "$WORK/out.txt")" = 1 ] || { echo "FAIL: several error lines for one error"; cat "$WORK/out.txt"; FAILED=1; }
expect_status 1 "one rank fails while another waits in a collective: aborted, no hang" -- \
  timeout 120 $MPIEXEC 2 "$BIN/../tests/checkpoint_shards_mpi" fail-one "$WORK/x"
expect_output "simulated failure on one rank" "the failing rank's error line"
finish
