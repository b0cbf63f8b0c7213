#!/usr/bin/env python3
"""The loss histogram of an ovr_score run as a PNG: kept and dropped documents stacked per bin,
the drop threshold marked, and the counts per rule in the title.

Input: the run's directory or its report.json (written by ovr_score). Output: --out PNG
(default: curation.png beside report.json).

Example:
  postprocess/curation_plot.py runs/curate --out figures/curation.png
"""
import argparse
import os

from ovr_files import InputError, read_json, run_main


def load_report(path):
    if os.path.isdir(path):
        path = os.path.join(path, "report.json")
    report = read_json(path)
    for key in ("documents", "kept", "dropped_by", "histogram", "loss_threshold"):
        if key not in report:
            raise InputError(f"{path}: no \"{key}\" (not an ovr_score report)")
    h = report["histogram"]
    if len(h.get("kept", [])) != len(h.get("dropped", [])) or not h.get("kept"):
        raise InputError(f"{path}: histogram bins missing or of different lengths")
    return path, report


def plot(report, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = report["histogram"]
    bins = len(h["kept"])
    lo, hi = float(h["low"]), float(h["high"])
    width = (hi - lo) / bins if hi > lo else 1.0
    left = [lo + i * width for i in range(bins)]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(left, h["kept"], width=width, align="edge", color="#4878cf", label=f"kept ({report['kept']})")
    ax.bar(left, h["dropped"], width=width, align="edge", bottom=h["kept"], color="#d65f5f",
           label=f"dropped ({report['documents'] - report['kept']})")
    if report["dropped_by"].get("drop_top", 0) > 0:
        ax.axvline(report["loss_threshold"], color="black", linestyle="--", linewidth=1, label="drop-top threshold")
    by = ", ".join(f"{k} {v}" for k, v in report["dropped_by"].items() if v)
    ax.set_title(f"{report['documents']} documents; dropped by {by or 'no rule'}", fontsize=10)
    ax.set_xlabel("mean token loss under the scoring model")
    ax.set_ylabel("documents")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", help="ovr_score output directory or its report.json")
    p.add_argument("--out", help="PNG to write (default: curation.png beside report.json)")
    args = p.parse_args()
    path, report = load_report(args.report)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(path)), "curation.png")
    plot(report, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
