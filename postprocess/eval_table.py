#!/usr/bin/env python3
"""Checkpoints x benchmarks table from ovr_eval results, as Markdown, LaTeX (booktabs) and CSV.

Each input is an evaluation directory or its summary.json (docs/eval-format.md). A row is a
checkpoint, a column a benchmark; a cell is the chosen metric x100 with one decimal. Columns
follow the paper's table (AIME 2024, MATH500, MathVision, MathVerse, DynaMath, MathVista,
MMMU-Pro; a benchmark whose name starts with one of these, e.g. mathverse_text_only, sits with
it), other benchmarks after them in input order; --input-order keeps the inputs' order. The best
value of each column among the evaluated checkpoints is bold (ties all bold; compared at the
printed precision, so the bold matches what is shown). Reference rows from the paper are never
candidates for best: they are context, not competitors.

Row labels come from --label PATH=NAME, else from the summary's `model` field
(its parent folder and file stem, e.g. /runs/x/final.h5 -> x/final).

--reference adds the paper's published numbers that the paper states, from its
"Headline results (7B)" table: Open Vision Reasoner, Wei et al. 2025, arXiv:2507.05255. It
gives OVR-7B's numbers only; it gives none for the base model Qwen2.5-VL-7B, so no such row is
printed. Benchmarks match ignoring case and punctuation (math500 = MATH500).

Example:
  postprocess/eval_table.py eval/step_100/math500 eval/final/math500 eval/final/mathvision \\
      --label eval/final/math500=OVR-tiny --reference --latex table.tex --csv table.csv
"""
import argparse
import csv
import io
import os
import re
import sys

from ovr_files import InputError, parse_labels, read_json, run_main

CITATION = "Open Vision Reasoner, Wei et al. 2025, arXiv:2507.05255"
REFERENCE_TABLE = "headline results (7B)"
# The paper's numbers as the paper states them, keyed by normalised benchmark name.
REFERENCE_ROWS = {
    "OVR-7B (paper)": {"aime2024": 63.5, "math500": 95.3, "mathvision": 51.8, "mathverse": 54.6},
}
BENCHMARK_ALIASES = {"aime24": "aime2024"}
# The paper's benchmarks in the order of its table (normalised names), and how they are shown.
PAPER_ORDER = ["aime2024", "math500", "mathvision", "mathverse", "dynamath", "mathvista", "mmmupro"]
DISPLAY_NAMES = {"aime2024": "AIME 2024", "math500": "MATH500", "mathvision": "MathVision",
                 "mathverse": "MathVerse", "dynamath": "DynaMath", "mathvista": "MathVista", "mmmupro": "MMMU-Pro"}
MISSING = "–"


def normalise_benchmark(name):
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return BENCHMARK_ALIASES.get(key, key)


def paper_position(name):
    """Where a benchmark stands in the paper's table (its name or a name that starts with it), else None."""
    key = normalise_benchmark(name)
    for i, paper in enumerate(PAPER_ORDER):
        if key.startswith(paper) or (paper == "aime2024" and key.startswith("aime24")):
            return i
    return None


def in_paper_order(columns):
    """The paper's benchmarks first, in its order (input order among variants of one), then the rest."""
    def key(indexed):
        i, name = indexed
        pos = paper_position(name)
        return (0, pos, i) if pos is not None else (1, 0, i)
    return [name for _, name in sorted(enumerate(columns), key=key)]


def summary_path(path):
    return os.path.join(path, "summary.json") if os.path.isdir(path) else path


def default_label(model):
    parent = os.path.basename(os.path.dirname(os.path.normpath(model)))
    stem = os.path.splitext(os.path.basename(os.path.normpath(model)))[0]
    return f"{parent}/{stem}" if parent else stem


def metric_value(summary, metric, path):
    """The metric as a fraction in [0, 1]."""
    try:
        if metric in ("avg_at_k", "maj_at_k"):
            value = summary[metric]
        else:
            j = str(summary["k"]) if metric == "pass@k" else metric[len("pass@"):]
            value = summary["pass_at"][j]
    except (KeyError, TypeError):
        raise InputError(f"{path}: no '{metric}' in this summary") from None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InputError(f"{path}: '{metric}' is not a number")
    return float(value)


def load_cells(inputs, labels, metric):
    """-> (row labels, benchmark names, {(label, benchmark): percent}) in input order."""
    rows, columns, cells, source = [], [], {}, {}
    for given in inputs:
        path = summary_path(given)
        summary = read_json(path)
        if not isinstance(summary, dict) or "benchmark" not in summary:
            raise InputError(f"{path}: not an eval summary (no 'benchmark' field)")
        label = labels.get(os.path.normpath(given)) or labels.get(os.path.normpath(path)) \
            or default_label(str(summary.get("model", given)))
        benchmark = str(summary["benchmark"])
        if (label, benchmark) in cells:
            raise InputError(f"{path}: '{label}' on '{benchmark}' is also given by {source[label, benchmark]}; "
                             "use --label to tell them apart")
        cells[label, benchmark] = 100.0 * metric_value(summary, metric, path)
        source[label, benchmark] = path
        if label not in rows:
            rows.append(label)
        if benchmark not in columns:
            columns.append(benchmark)
    return rows, columns, cells


def reference_cells(columns):
    """Paper rows with at least one benchmark in common with the table."""
    refs = {}
    for name, numbers in REFERENCE_ROWS.items():
        row = {c: numbers[normalise_benchmark(c)] for c in columns if normalise_benchmark(c) in numbers}
        if row:
            refs[name] = row
    return refs


def best_per_column(rows, columns, cells):
    best = {}
    for c in columns:
        shown = [round(cells[r, c], 1) for r in rows if (r, c) in cells]
        if shown:
            best[c] = max(shown)
    return best


def build_table(rows, columns, cells, refs):
    """-> header, body [(label, [cell text], [is best]), ...] and reference rows likewise."""
    best = best_per_column(rows, columns, cells)
    header = ["Model"] + [DISPLAY_NAMES.get(normalise_benchmark(c), c) for c in columns]

    def fmt(v):
        return MISSING if v is None else f"{v:.1f}"

    body = [(r, [fmt(cells.get((r, c))) for c in columns],
             [(r, c) in cells and round(cells[r, c], 1) == best[c] for c in columns]) for r in rows]
    ref_body = [(name, [fmt(row.get(c)) for c in columns], [False] * len(columns)) for name, row in refs.items()]
    return header, body, ref_body


def to_markdown(header, body, ref_body, note):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    for label, texts, bold in body + ref_body:
        shown = [f"**{t}**" if b else t for t, b in zip(texts, bold)]
        lines.append("| " + " | ".join([label] + shown) + " |")
    return "\n".join(lines) + ("\n\n" + note if note else "") + "\n"


def latex_escape(text):
    if text == MISSING:
        return "--"
    return re.sub(r"([&%$#_{}])", r"\\\1", text).replace("~", r"\textasciitilde{}").replace("^", r"\^{}")


def to_latex(header, body, ref_body, note):
    out = [r"\begin{table}[t]", r"\centering"]
    if note:  # tables take their caption above
        out.append(r"\caption{" + latex_escape(note) + "}")
    out += [r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule",
           " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    for label, texts, bold in body:
        shown = [rf"\textbf{{{t}}}" if b else latex_escape(t) for t, b in zip(texts, bold)]
        out.append(" & ".join([latex_escape(label)] + shown) + r" \\")
    if ref_body:
        out.append(r"\midrule")
        out += [" & ".join(latex_escape(t) for t in [label] + texts) + r" \\" for label, texts, _ in ref_body]
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def to_csv(body, ref_body, columns):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "kind"] + columns)
    for kind, rows in (("evaluated", body), ("reference", ref_body)):
        for label, texts, _ in rows:
            writer.writerow([label, kind] + ["" if t == MISSING else t for t in texts])
    return buf.getvalue()


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="eval directories or their summary.json files")
    parser.add_argument("--label", action="append", metavar="PATH=NAME",
                        help="row label for the input given as PATH (repeatable)")
    parser.add_argument("--metric", default="avg_at_k",
                        help="avg_at_k (default), maj_at_k, pass@k (k of the run) or pass@N, e.g. pass@1")
    parser.add_argument("--reference", action="store_true", help="add the paper's published OVR-7B row")
    parser.add_argument("--input-order", action="store_true", help="columns in the order of the inputs, not the paper's")
    parser.add_argument("--markdown", metavar="FILE", help="also write the Markdown table here")
    parser.add_argument("--latex", metavar="FILE", help="write a booktabs LaTeX table here")
    parser.add_argument("--csv", metavar="FILE", help="write the table as CSV here")
    args = parser.parse_args()
    if not re.fullmatch(r"avg_at_k|maj_at_k|pass@(k|\d+)", args.metric):
        parser.error(f"--metric must be avg_at_k, maj_at_k, pass@k or pass@N, got '{args.metric}'")

    rows, columns, cells = load_cells(args.inputs, parse_labels(args.label, parser), args.metric)
    if not args.input_order:
        columns = in_paper_order(columns)
    refs = reference_cells(columns) if args.reference else {}
    if args.reference and not refs:
        print(f"{parser.prog}: note: the paper reports none of these benchmarks; no reference row", file=sys.stderr)
    note = (f"Cells: {args.metric} x100; bold: best evaluated checkpoint per benchmark."
            + (f" Reference rows: {CITATION}, {REFERENCE_TABLE}." if refs else ""))
    header, body, ref_body = build_table(rows, columns, cells, refs)
    markdown = to_markdown(header, body, ref_body, note)
    sys.stdout.write(markdown)
    for path, text in ((args.markdown, markdown), (args.latex, to_latex(header, body, ref_body, note)),
                       (args.csv, to_csv(body, ref_body, columns))):
        if path:
            write(path, text)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
