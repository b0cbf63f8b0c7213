"""postprocess/eval_table.py: cells, best marking, reference rows, the three formats, errors."""
import csv
import json
import os
import tempfile
import unittest

from .ovr_fixtures import run_script
import eval_table


def summary(model, benchmark, avg, k=4, pass_at=None, maj=0.5):
    return {"model": model, "benchmark": benchmark, "k": k, "avg_at_k": avg, "maj_at_k": maj,
            "pass_at": pass_at or {"1": avg, "2": 0.6, "4": 0.7}, "problems": 10, "samples": 40}


class EvalTable(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.paths = {}
        for name, s in {"step_math": summary("/runs/a/step_100.h5", "math500", 0.41),
                        "final_math": summary("/runs/a/final.h5", "math500", 0.4567),
                        "final_vision": summary("/runs/a/final.h5", "mathvision", 0.2),
                        "step_vision": summary("/runs/a/step_100.h5", "mathvision", 0.25),
                        "base_aime": summary("/hf/base", "aime24", 0.1)}.items():
            os.makedirs(os.path.join(self.dir.name, name))
            self.paths[name] = os.path.join(self.dir.name, name)
            with open(os.path.join(self.paths[name], "summary.json"), "w") as f:
                json.dump(s, f)

    def tearDown(self):
        self.dir.cleanup()

    def out(self, name):
        return os.path.join(self.dir.name, name)

    def test_cells_best_marks_and_reference_rows_in_all_formats(self):
        p = self.paths
        result = run_script("eval_table.py", p["step_math"], p["final_math"], p["final_vision"],
                            os.path.join(p["step_vision"], "summary.json"), p["base_aime"],
                            "--label", f"{p['final_math']}=Final", "--label", f"{p['final_vision']}=Final",
                            "--reference", "--latex", self.out("t.tex"), "--csv", self.out("t.csv"))
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], "| Model | AIME 2024 | MATH500 | MathVision |")  # the paper's order
        self.assertIn("| a/step_100 | – | 41.0 | **25.0** |", lines)
        self.assertIn("| Final | – | **45.7** | 20.0 |", lines)
        self.assertIn("| hf/base | **10.0** | – | – |", lines)
        self.assertIn("| OVR-7B (paper) | 63.5 | 95.3 | 51.8 |", lines)  # never bold: not a candidate
        self.assertIn("Wei et al. 2025, arXiv:2507.05255", result.stdout)

        with open(self.out("t.tex")) as f:
            latex = f.read()
        for expected in (r"\toprule", r"\midrule", r"\bottomrule", r"Final & -- & \textbf{45.7} & 20.0 \\",
                         r"a/step\_100 & -- & 41.0 & \textbf{25.0} \\", "arXiv:2507.05255"):
            self.assertIn(expected, latex)

        with open(self.out("t.csv")) as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], ["model", "kind", "aime24", "math500", "mathvision"])
        self.assertIn(["Final", "evaluated", "", "45.7", "20.0"], rows)
        self.assertIn(["OVR-7B (paper)", "reference", "63.5", "95.3", "51.8"], rows)

    def test_columns_follow_the_paper_then_the_rest_unless_input_order(self):
        d = self.dir.name
        for name, bench in (("mmmu", "mmmu_pro"), ("dyn", "dynamath"), ("gsm", "gsm8k"), ("mv_text", "mathverse_text_only"),
                            ("vista", "mathvista_testmini")):
            os.makedirs(os.path.join(d, name))
            with open(os.path.join(d, name, "summary.json"), "w") as f:
                json.dump(summary("/runs/a/final.h5", bench, 0.5), f)
        inputs = [os.path.join(d, n) for n in ("mmmu", "gsm", "dyn", "mv_text", "vista")] + [self.paths["final_math"]]
        result = run_script("eval_table.py", *inputs)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines()[0],
                         "| Model | MATH500 | mathverse_text_only | DynaMath | mathvista_testmini | MMMU-Pro | gsm8k |")
        result = run_script("eval_table.py", *inputs, "--input-order")
        self.assertEqual(result.stdout.splitlines()[0],
                         "| Model | MMMU-Pro | gsm8k | DynaMath | mathverse_text_only | mathvista_testmini | MATH500 |")

    def test_metric_option_picks_the_summary_field(self):
        s = summary("/m", "math500", 0.41, k=8, pass_at={"1": 0.41, "2": 0.5, "4": 0.6, "8": 0.75}, maj=0.47)
        self.assertAlmostEqual(eval_table.metric_value(s, "pass@k", "x"), 0.75)
        self.assertAlmostEqual(eval_table.metric_value(s, "pass@2", "x"), 0.5)
        self.assertAlmostEqual(eval_table.metric_value(s, "maj_at_k", "x"), 0.47)
        result = run_script("eval_table.py", self.paths["step_math"], "--metric", "pass@4")
        self.assertIn("| a/step_100 | **70.0** |", result.stdout)

    def test_ties_at_the_printed_precision_are_all_bold(self):
        cells = {("a", "m"): 45.67, ("b", "m"): 45.71, ("c", "m"): 45.2}
        _, body, _ = eval_table.build_table(["a", "b", "c"], ["m"], cells, {})
        self.assertEqual([bold for _, _, bold in body], [[True], [True], [False]])

    def test_missing_summary_is_a_one_line_error(self):
        result = run_script("eval_table.py", self.out("nowhere"))
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.strip(), f"eval_table.py: error: {self.out('nowhere')}: no such file")

    def test_malformed_summary_and_unknown_metric_are_named(self):
        with open(os.path.join(self.paths["step_math"], "summary.json"), "w") as f:
            f.write("{oops")
        result = run_script("eval_table.py", self.paths["step_math"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("step_math/summary.json: not valid JSON", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        result = run_script("eval_table.py", self.paths["final_math"], "--metric", "pass@16")
        self.assertEqual(result.returncode, 1)
        self.assertIn("final_math/summary.json: no 'pass@16' in this summary", result.stderr)
        result = run_script("eval_table.py", self.paths["final_math"], "--metric", "best")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--metric must be", result.stderr)


if __name__ == "__main__":
    unittest.main()
