"""postprocess/curation_plot.py: a PNG from an ovr_score report; a report that is not one."""
import json
import os
import tempfile
import unittest

from .ovr_fixtures import run_script


def report(kept_bins, dropped_bins):
    return {"documents": sum(kept_bins) + sum(dropped_bins), "kept": sum(kept_bins),
            "dropped_by": {"drop_top": sum(dropped_bins), "max_loss": 0, "min_targets": 0, "max_tokens": 0},
            "loss_threshold": 2.5, "histogram": {"low": 0.5, "high": 3.0, "kept": kept_bins, "dropped": dropped_bins}}


class CurationPlot(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_writes_a_png_beside_the_report(self):
        with open(os.path.join(self.dir.name, "report.json"), "w") as f:
            json.dump(report([1, 5, 9, 4, 0], [0, 0, 0, 2, 3]), f)
        result = run_script("curation_plot.py", self.dir.name)
        self.assertEqual(result.returncode, 0, result.stderr)
        png = os.path.join(self.dir.name, "curation.png")
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_a_file_that_is_not_a_report_is_one_error_line(self):
        path = os.path.join(self.dir.name, "summary.json")
        with open(path, "w") as f:
            json.dump({"avg_at_k": 0.5}, f)
        result = run_script("curation_plot.py", path)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.strip(), f'curation_plot.py: error: {path}: no "documents" (not an ovr_score report)')

    def test_bins_of_different_lengths_are_refused(self):
        path = os.path.join(self.dir.name, "report.json")
        with open(path, "w") as f:
            json.dump(report([1, 2], [0]), f)
        result = run_script("curation_plot.py", path)
        self.assertEqual(result.returncode, 1)
        self.assertIn("histogram bins", result.stderr)


if __name__ == "__main__":
    unittest.main()
