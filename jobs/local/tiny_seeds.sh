#!/usr/bin/env bash
# The tiny default's claim over seeds and CPU arithmetic, with the control beside it.
#
#   bash jobs/local/tiny_seeds.sh [--seeds "0 1 2 3 4"] [--capabilities "default avx2 avx512"] [--table-only] [WORKDIR]
#
# For each ATEN_CPU_CAPABILITY (LibTorch's CPU kernels: each rounds matmuls differently, as another
# machine would) and each seed, it runs jobs/local/tiny.sh (base -> text-only SFT -> RL -> average)
# and the control (--no-text-sft: RL from the same base, without the cold start), each in
# WORKDIR/CAPABILITY/seed_N[-control] (default WORKDIR: runs/tiny-seeds), then prints one table:
# picture / text accuracy after each stage per run, the control's picture accuracy after RL, and
# the median and minimum over the runs. A capability the processor lacks falls back to a lower
# one inside LibTorch (the table says which was asked for). The claim holds for a run when picture
# accuracy rises at every stage to >= 0.5 after RL with text >= 0.9 after SFT, and the control ends
# at most half as high. Exit 0 when it holds for every run, 1 otherwise. About 12-16 minutes per seed
# and capability on 2 cores. A run whose full pipeline and control both finished in WORKDIR earlier is
# kept, so a sweep cut short is continued by running the same command again. --table-only prints
# the table of the runs already in WORKDIR (a sweep cut short, or one still running) and runs nothing.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SEEDS="0 1 2 3 4" CAPS="default avx2 avx512" WORK="" TABLE_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) SEEDS="${2:-}"; shift 2 ;;
    --capabilities) CAPS="${2:-}"; shift 2 ;;
    --table-only) TABLE_ONLY=1; shift ;;
    -h|--help) sed -n '4,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "tiny_seeds.sh: error: unknown option $1" >&2; exit 2 ;;
    *) WORK=$1; shift ;;
  esac
done
for s in $SEEDS; do [[ "$s" =~ ^[0-9]+$ ]] || { echo "tiny_seeds.sh: error: --seeds: '$s' is not a seed" >&2; exit 2; }; done
for c in $CAPS; do [[ "$c" =~ ^(default|avx2|avx512)$ ]] || { echo "tiny_seeds.sh: error: --capabilities: '$c' is not default, avx2 or avx512" >&2; exit 2; }; done
[ -n "$SEEDS" ] && [ -n "$CAPS" ] || { echo "tiny_seeds.sh: error: no seeds or no capabilities" >&2; exit 2; }
WORK="${WORK:-$REPO/runs/tiny-seeds}"
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
for cap in $CAPS; do mkdir -p "$WORK/$cap"; done

[ "$TABLE_ONLY" = 1 ] || for seed in $SEEDS; do  # seeds outermost: a sweep cut short has covered every capability
  for cap in $CAPS; do
    run="$WORK/$cap/seed_$seed"
    if [ -f "$run/summary.json" ] && [ -f "$run-control/summary.json" ]; then
      echo "== ATEN_CPU_CAPABILITY=$cap seed $seed: finished in an earlier sweep, kept"; continue
    fi
    echo "== ATEN_CPU_CAPABILITY=$cap seed $seed: full pipeline, then the control ($(date +%H:%M:%S))"
    rm -rf "$run" "$run-control"  # a run cut short is started again, not resumed half-way
    ATEN_CPU_CAPABILITY=$cap bash "$REPO/jobs/local/tiny.sh" --seed "$seed" "$run" > "$run.log" 2>&1
    grep -E "^(picture accuracy|tiny.sh: STOPPED)" "$run.log" | sed 's/^/   /'
    if [ -f "$run/base/latest" ]; then
      ATEN_CPU_CAPABILITY=$cap bash "$REPO/jobs/local/tiny.sh" --seed "$seed" --no-text-sft --base "$run/base" "$run-control" \
        > "$run-control.log" 2>&1
      grep -E "^(control|tiny.sh: STOPPED)" "$run-control.log" | sed 's/^/   /'
    fi
  done
done

"$PY" - "$WORK" $CAPS -- $SEEDS <<'EOF'
import json, os, statistics, sys
work = sys.argv[1]
cut = sys.argv.index("--")
caps, seeds = sys.argv[2:cut], sys.argv[cut + 1:]

def load(path):
    try:
        return json.load(open(os.path.join(path, "summary.json")))["accuracy"]
    except (OSError, ValueError, KeyError):
        return None

def failed(path):
    if not os.path.isdir(path):
        return "not run"
    try:
        return open(os.path.join(path, "FAILED")).read().strip().replace("tiny.sh: STOPPED: ", "")
    except OSError:
        return "no summary yet (running, or see its log)"

rows, all_hold = [], True
print("| capability | seed | base img / txt | SFT img / txt | RL img / txt | average img | control RL img | claim |")
print("|---|---:|---|---|---|---:|---:|---|")
for cap in caps:
    for seed in seeds:
        run = os.path.join(work, cap, f"seed_{seed}")
        full, ctrl = load(run), load(run + "-control")
        if not full or "rl" not in full:
            all_hold = False
            why = failed(run)
            print(f"| {cap} | {seed} | {why if why == 'not run' else 'stopped: ' + why} | | | | | no |")
            continue
        c = ctrl["rl"]["image"] if ctrl and "rl" in ctrl else None
        img = [full[s]["image"] for s in ("base", "sft", "rl")]
        holds = (img[0] < img[1] < img[2] and img[2] >= 0.5 and full["sft"]["text"] >= 0.9
                 and c is not None and c <= img[2] / 2)
        verdict = "yes" if holds else ("no control yet" if c is None else "NO")
        all_hold &= holds
        rows.append([img[0], full["base"]["text"], img[1], full["sft"]["text"], img[2], full["rl"]["text"],
                     full["average"]["image"], c if c is not None else float("nan")])
        f = lambda x: f"{x:.2f}"
        print(f"| {cap} | {seed} | {f(img[0])} / {f(full['base']['text'])} | {f(img[1])} / {f(full['sft']['text'])} | "
              f"{f(img[2])} / {f(full['rl']['text'])} | {f(full['average']['image'])} | {'-' if c is None else f(c)} | "
              f"{verdict} |")
if rows:
    for name, fn in (("median", statistics.median), ("minimum", min), ("maximum", max)):
        col = [fn([r[i] for r in rows if r[i] == r[i]] or [float("nan")]) for i in range(8)]
        print(f"| {name} | | {col[0]:.2f} / {col[1]:.2f} | {col[2]:.2f} / {col[3]:.2f} | {col[4]:.2f} / {col[5]:.2f} | "
              f"{col[6]:.2f} | {col[7]:.2f} | |")
print(f"the claim {'holds for every run' if all_hold else 'does NOT hold for every run'} "
      f"({len(rows)} of {len(caps) * len(seeds)} runs finished)")
sys.exit(0 if all_hold else 1)
EOF
