#!/usr/bin/env python3
"""Training curves (PNG) from ovr's metrics JSONL files and rollout HDF5 files.

Inputs, any mix:
  - an RL run directory: rollouts/rollout_metrics.jsonl and policy/ppo_metrics.jsonl (when
    rollout_metrics.jsonl is absent, rollouts/iter_*.h5 are read instead); the rollouts/ or
    policy/ folder itself works too;
  - an SFT output directory holding metrics.jsonl;
  - explicit files: rollout_metrics.jsonl, ppo_metrics.jsonl, an SFT metrics.jsonl (told
    apart by their fields) or rollout iter_*.h5 files.

RL figures, against iteration: rl_reward.png (all, text and image prompts),
rl_response_length.png (mean, max and the max_new_tokens limit), rl_losses.png (policy and
value loss), rl_clip_fraction.png (policy and value), rl_throughput.png (tokens/s of rollout,
engine decode and PPO). The length-curriculum boundaries, the iterations where max_new_tokens
differs from the previous iteration's, are dashed vertical lines and are printed.
SFT figures, against step: sft_loss.png, sft_lr.png, sft_grad_norm.png, sft_throughput.png.

A resumed run can repeat an iteration (or step); the last line for it wins.
Inputs with the same label (--label PATH=NAME, else the run directory's name) are one run;
several runs are overlaid in each figure.

Example:
  postprocess/curves.py runs/tiny/rl --out figures/
"""
import argparse
import glob
import os
import sys

from ovr_files import InputError, Rollout, last_per_key, parse_labels, read_jsonl, require_file, run_main

PANEL_INCHES = (6.4, 4.0)
DPI = 100
KINDS = {  # a metrics file's kind, told by fields its first line must have
    "rollout": ("groups_all_correct", "max_new_tokens"),
    "ppo": ("policy_loss", "clip_fraction"),
    "sft": ("step", "loss", "lr"),
}
INDEX = {"rollout": "iteration", "ppo": "iteration", "sft": "step"}


def metrics_kind(path, rows):
    if not rows:
        raise InputError(f"{path}: empty metrics file")
    for kind, fields in KINDS.items():
        if all(f in rows[0] for f in fields):
            return kind
    raise InputError(f"{path}: not a rollout, PPO or SFT metrics file (line 1 lacks their fields)")


def rollout_row(path):
    """The per-iteration numbers rollout_metrics.jsonl would hold, from a rollout file."""
    import numpy as np

    with Rollout(path) as r:
        if not isinstance(r.meta.get("iteration"), int):
            raise InputError(f"{path}: root attribute 'rollout' has no integer 'iteration'")
        reward, lengths, is_image = r.array("reward"), r.array("response_lengths"), r.sample_is_image()
        finish = r.strings("finish_reason")

    def mean_or_none(values):
        return float(np.mean(values)) if len(values) else None

    return {"iteration": r.meta["iteration"], "max_new_tokens": r.meta.get("max_new_tokens"),
            "reward": mean_or_none(reward), "reward_text": mean_or_none(reward[~is_image]),
            "reward_image": mean_or_none(reward[is_image]), "response_length_mean": mean_or_none(lengths),
            "response_length_max": int(lengths.max()) if len(lengths) else None,
            "truncated": mean_or_none([f == "length" for f in finish])}


def sources_in(path):
    """-> [(kind, file)] for one command-line input."""
    if os.path.isdir(path):
        found = []
        for folder in (path, os.path.join(path, "rollouts")):
            if os.path.isfile(os.path.join(folder, "rollout_metrics.jsonl")):
                found.append(("rollout", os.path.join(folder, "rollout_metrics.jsonl")))
            else:
                found += [("rollout_h5", f) for f in sorted(glob.glob(os.path.join(folder, "iter_*.h5")))]
        for name in ("ppo_metrics.jsonl", os.path.join("policy", "ppo_metrics.jsonl")):
            if os.path.isfile(os.path.join(path, name)):
                found.append(("ppo", os.path.join(path, name)))
        if os.path.isfile(os.path.join(path, "metrics.jsonl")):
            found.append(("sft", os.path.join(path, "metrics.jsonl")))
        if not found:
            raise InputError(f"{path}: no rollout_metrics.jsonl, ppo_metrics.jsonl, metrics.jsonl "
                             "or iter_*.h5 here or under rollouts/ or policy/")
        return found
    require_file(path)
    return [("rollout_h5", path)] if path.endswith(".h5") else [(None, path)]


def run_directory(path):
    """The run an input belongs to: its folder, or two up for rollouts/x and policy/x."""
    path = os.path.abspath(path)
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    if os.path.basename(folder) in ("rollouts", "policy", "critic"):
        folder = os.path.dirname(folder)
    return folder


def short_names(folders):
    """Each folder's last path components, as few as keep the names apart."""
    for depth in range(1, 64):
        names = {f: "/".join(f.split(os.sep)[-depth:]) for f in folders}
        if len(set(names.values())) == len(names):
            return names
    return {f: f for f in folders}


def load_runs(inputs, labels):
    """-> {label: {"rollout": rows, "ppo": rows, "sft": rows}}, each deduplicated and sorted."""
    runs = {}
    for given in inputs:
        key = labels.get(os.path.normpath(given)) or run_directory(given)
        run = runs.setdefault(key, {"rollout": [], "ppo": [], "sft": []})
        for kind, path in sources_in(given):
            if kind == "rollout_h5":
                run["rollout"].append(rollout_row(path))
                continue
            kind = kind or metrics_kind(path, read_jsonl(path))
            run[kind] += read_jsonl(path, {INDEX[kind]: int})
    for run in runs.values():
        for kind in run:
            run[kind] = last_per_key(run[kind], INDEX[kind])
    names = short_names([k for k in runs if os.path.isabs(k)])
    return {names.get(key, key): run for key, run in runs.items()}


def curriculum_boundaries(rollout_rows):
    """-> [(iteration, previous max_new_tokens, new max_new_tokens)] where the limit changes."""
    changes = []
    for before, after in zip(rollout_rows, rollout_rows[1:]):
        if before.get("max_new_tokens") != after.get("max_new_tokens") and after.get("max_new_tokens") is not None:
            changes.append((after["iteration"], before.get("max_new_tokens"), after["max_new_tokens"]))
    return changes


def series(rows, x, y, name, **style):
    points = [(r[x], r[y]) for r in rows if isinstance(r.get(y), (int, float)) and not isinstance(r.get(y), bool)]
    return (name, [p[0] for p in points], [p[1] for p in points], style)


def plot(path, xlabel, panels, boundaries=()):
    """panels: [(y label, [series])] drawn side by side; no file when every series is empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(ylabel, [s for s in lines if s[1]]) for ylabel, lines in panels]
    if not any(lines for _, lines in panels):
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(PANEL_INCHES[0] * len(panels), PANEL_INCHES[1]),
                             dpi=DPI, squeeze=False)
    for ax, (ylabel, lines) in zip(axes[0], panels):
        for name, xs, ys, style in lines:
            ax.plot(xs, ys, label=name, marker="o" if len(xs) == 1 else None, **style)  # one point: no line to see
        for iteration, _, new in boundaries:
            ax.axvline(iteration, color="grey", linestyle="--", linewidth=0.8)
            ax.annotate(f"max {new}", (iteration, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                        rotation=90, va="top", ha="right", color="grey")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return True


def rl_figures(runs):
    """-> [(file name, panels)] for the RL figures."""
    def per_run(kind, y, suffix="", **style):
        # one colour per run, one line style per quantity
        return [series(run[kind], "iteration", y, f"{label}{suffix}", color=f"C{i}", **style)
                for i, (label, run) in enumerate(runs.items())]

    return [
        ("rl_reward.png", [("reward", per_run("rollout", "reward") + per_run("rollout", "reward_text", " text", linestyle=":")
                            + per_run("rollout", "reward_image", " image", linestyle="-."))]),
        ("rl_response_length.png", [("response tokens", per_run("rollout", "response_length_mean", " mean")
                                     + per_run("rollout", "response_length_max", " max", linestyle=":")
                                     + per_run("rollout", "max_new_tokens", " limit", linestyle="--", linewidth=0.8,
                                             drawstyle="steps-post"))]),
        ("rl_losses.png", [("policy loss", per_run("ppo", "policy_loss")), ("value loss", per_run("ppo", "value_loss"))]),
        ("rl_clip_fraction.png", [("clip fraction", per_run("ppo", "clip_fraction", " policy")
                                   + per_run("ppo", "value_clip_fraction", " value", linestyle=":"))]),
        ("rl_throughput.png", [("tokens / s", per_run("rollout", "tokens_per_s", " rollout")
                                + per_run("rollout", "engine_decode_tokens_per_s", " engine decode", linestyle=":")
                                + per_run("ppo", "tokens_per_s", " PPO", linestyle="--"))]),
    ]


def sft_figures(runs):
    def per_run(y):
        return [series(run["sft"], "step", y, label, color=f"C{i}") for i, (label, run) in enumerate(runs.items())]

    return [("sft_loss.png", [("loss", per_run("loss"))]), ("sft_lr.png", [("learning rate", per_run("lr"))]),
            ("sft_grad_norm.png", [("gradient norm", per_run("grad_norm"))]),
            ("sft_throughput.png", [("tokens / s", per_run("tokens_per_s"))])]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="RL run or SFT directories, metrics JSONL files, rollout .h5 files")
    parser.add_argument("--out", default="curves", metavar="DIR", help="folder for the PNG files (default: curves)")
    parser.add_argument("--label", action="append", metavar="PATH=NAME", help="run name for an input (repeatable)")
    args = parser.parse_args()

    runs = load_runs(args.inputs, parse_labels(args.label, parser))
    boundaries = sorted({b for run in runs.values() for b in curriculum_boundaries(run["rollout"])})
    for label, run in runs.items():
        for iteration, before, after in curriculum_boundaries(run["rollout"]):
            print(f"{label}: curriculum: iteration {iteration}: max_new_tokens {before} -> {after}")
    os.makedirs(args.out, exist_ok=True)
    written = []
    for name, panels in rl_figures(runs):
        if plot(os.path.join(args.out, name), "iteration", panels, boundaries):
            written.append(name)
    for name, panels in sft_figures(runs):
        if plot(os.path.join(args.out, name), "step", panels):
            written.append(name)
    if not written:
        raise InputError("the inputs hold no metrics to plot")
    for name in written:
        print(os.path.join(args.out, name))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
