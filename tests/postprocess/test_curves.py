"""postprocess/curves.py: PNGs from metrics and rollout files, curriculum boundaries, resumed runs, errors."""
import os
import tempfile
import unittest

from .ovr_fixtures import png_size, run_script, write_jsonl, write_rollout
import curves

LIMITS = [64, 64, 128, 128, 256, 256]  # the length curriculum of the fake run: changes at iterations 2 and 4


def rollout_line(iteration, reward):
    return {"iteration": iteration, "policy_step": iteration, "max_new_tokens": LIMITS[iteration], "reward": reward,
            "reward_text": reward, "reward_image": None, "groups_all_correct": 0.1, "groups_none_correct": 0.2,
            "response_length_mean": 30.0 + iteration, "response_length_max": LIMITS[iteration], "truncated": 0.0,
            "generated_tokens": 1000, "tokens_per_s": 5000.0, "seconds": 1.0, "engine_seconds": 0.9,
            "engine_decode_tokens_per_s": 6000.0, "overhead": 0.01}


def ppo_line(iteration):
    return {"iteration": iteration, "policy_step": iteration + 1, "samples": 64, "response_tokens": 1000, "reward": 0.5,
            "policy_loss": 0.01 / (iteration + 1), "clip_fraction": 0.02, "approx_kl": 1e-4, "kl": 0.0, "entropy": 1.0,
            "value_loss": 0.3, "value_clip_fraction": 0.1, "policy_grad_norm": 0.3, "critic_grad_norm": 0.2,
            "advantage_mean": 0.0, "advantage_std": 1.0, "explained_variance": 0.1, "logprob_mismatch_abs": 1e-7,
            "logprob_mismatch_mean": 1e-9, "tokens_per_s": 4000.0, "seconds": 2.0}


def sft_line(step):
    return {"step": step, "epoch": 0, "loss": 6.0 / step, "lr": 1e-3, "grad_norm": 2.0, "tokens": 800, "targets": 300,
            "tokens_per_s": 7000.0, "step_s": 0.1, "elapsed_s": 0.1 * step}


class Curves(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.run = os.path.join(self.dir.name, "rl")
        os.makedirs(os.path.join(self.run, "rollouts"))
        os.makedirs(os.path.join(self.run, "policy"))
        # iterations 3 and 4 again after a resume: the later lines must win
        write_jsonl(os.path.join(self.run, "rollouts", "rollout_metrics.jsonl"),
                    [rollout_line(i, 0.1 * i) for i in range(5)] + [rollout_line(3, 0.9), rollout_line(4, 0.95),
                                                                    rollout_line(5, 0.99)])
        write_jsonl(os.path.join(self.run, "policy", "ppo_metrics.jsonl"), [ppo_line(i) for i in range(6)])
        self.sft = os.path.join(self.dir.name, "sft")
        os.makedirs(self.sft)
        write_jsonl(os.path.join(self.sft, "metrics.jsonl"), [sft_line(s) for s in range(1, 8)])

    def tearDown(self):
        self.dir.cleanup()

    def test_every_figure_is_written_with_its_size_and_boundaries_are_printed(self):
        out = os.path.join(self.dir.name, "figures")
        result = run_script("curves.py", self.run, self.sft, "--out", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("rl: curriculum: iteration 2: max_new_tokens 64 -> 128", result.stdout)
        self.assertIn("rl: curriculum: iteration 4: max_new_tokens 128 -> 256", result.stdout)
        one_panel = (640, 400)
        expected = {"rl_reward.png": one_panel, "rl_response_length.png": one_panel, "rl_losses.png": (1280, 400),
                    "rl_clip_fraction.png": one_panel, "rl_throughput.png": one_panel, "sft_loss.png": one_panel,
                    "sft_lr.png": one_panel, "sft_grad_norm.png": one_panel, "sft_throughput.png": one_panel}
        self.assertEqual(sorted(os.listdir(out)), sorted(expected))
        for name, size in expected.items():
            self.assertEqual(png_size(os.path.join(out, name)), size, name)
            self.assertGreater(os.path.getsize(os.path.join(out, name)), 5000, name)  # something was drawn

    def test_a_resumed_iteration_keeps_its_last_line(self):
        run = curves.load_runs([self.run], {})["rl"]
        self.assertEqual([r["iteration"] for r in run["rollout"]], [0, 1, 2, 3, 4, 5])
        self.assertEqual([r["reward"] for r in run["rollout"]][3:], [0.9, 0.95, 0.99])
        self.assertEqual(len(run["ppo"]), 6)

    def test_curriculum_boundaries_are_where_the_limit_changes(self):
        rows = [{"iteration": i, "max_new_tokens": m} for i, m in enumerate(LIMITS)]
        self.assertEqual(curves.curriculum_boundaries(rows), [(2, 64, 128), (4, 128, 256)])

    def test_rollout_files_stand_in_for_missing_rollout_metrics(self):
        folder = os.path.join(self.dir.name, "h5run", "rollouts")
        os.makedirs(folder)
        samples = [("", [("ab", 1.0, "eos"), ("abcd", 0.0, "length")]), ("fig.png", [("abcdef", 0.0, "eos")])]
        write_rollout(os.path.join(folder, "iter_000007.h5"), samples, iteration=7, max_new_tokens=99)
        (row,) = curves.load_runs([os.path.dirname(folder)], {})["h5run"]["rollout"]
        self.assertEqual((row["iteration"], row["max_new_tokens"]), (7, 99))
        self.assertAlmostEqual(row["reward"], 1 / 3)
        self.assertAlmostEqual(row["reward_text"], 0.5)
        self.assertAlmostEqual(row["reward_image"], 0.0)
        self.assertAlmostEqual(row["response_length_mean"], (3 + 5 + 7) / 3)  # each response ends with <|im_end|>
        self.assertAlmostEqual(row["truncated"], 1 / 3)

    def test_malformed_line_is_named_without_a_traceback(self):
        path = os.path.join(self.run, "rollouts", "rollout_metrics.jsonl")
        with open(path, "a") as f:
            f.write('{"iteration": 6, "reward": \n')
        result = run_script("curves.py", self.run, "--out", os.path.join(self.dir.name, "x"))
        self.assertEqual(result.returncode, 1)
        self.assertRegex(result.stderr, r"^curves\.py: error: .*rollouts/rollout_metrics\.jsonl:9: malformed JSON")
        self.assertNotIn("Traceback", result.stderr)

    def test_missing_input_and_unknown_file_are_named(self):
        result = run_script("curves.py", os.path.join(self.dir.name, "none.jsonl"))
        self.assertEqual(result.returncode, 1)
        self.assertIn("none.jsonl: no such file", result.stderr)
        other = os.path.join(self.dir.name, "other.jsonl")
        write_jsonl(other, [{"a": 1}])
        result = run_script("curves.py", other)
        self.assertEqual(result.returncode, 1)
        self.assertIn("other.jsonl: not a rollout, PPO or SFT metrics file", result.stderr)
        self.assertEqual(run_script("curves.py").returncode, 2)


if __name__ == "__main__":
    unittest.main()
