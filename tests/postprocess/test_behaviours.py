"""postprocess/behaviours.py: rule counts, visual/linguistic rates, transfer rate, LLM judge, errors."""
import csv
import http.server
import json
import os
import re
import tempfile
import threading
import unittest
from unittest import mock

from .ovr_fixtures import TINY_TOKENIZER, run_script, write_jsonl, write_rollout
import behaviours
from ovr_files import InputError

SHOWS_ALL = ("First, we find the radius. Wait, that's not right. Let me verify: 2 * 3 = 6. "
             "To find the area, we need the height.")
SHOWS_NONE = "I will wait 5 minutes. The value is 3, so the answer is \\boxed{3}."


class RuleDetector(unittest.TestCase):
    def test_every_rule_matches_its_documented_example(self):
        for behaviour, rule, pattern, example in behaviours.RULES:
            self.assertRegex(example, re.compile(pattern, re.IGNORECASE), rule)
            self.assertIn(example, behaviours.__doc__, f"{rule}'s example is not in the docstring")
            self.assertGreater(behaviours.count_by_rules(example)[behaviour], 0, rule)

    def test_help_lists_the_rules(self):
        result = run_script("behaviours.py", "--help")
        self.assertEqual(result.returncode, 0)
        for _, rule, _, _ in behaviours.RULES:
            self.assertIn(rule, result.stdout)

    def test_counts_on_crafted_texts(self):
        self.assertEqual(behaviours.count_by_rules(SHOWS_ALL),
                         {"backtracking": 2, "verification": 1, "subgoal_setting": 1, "backward_chaining": 1})
        self.assertEqual(behaviours.count_by_rules(SHOWS_NONE),
                         {"backtracking": 0, "verification": 0, "subgoal_setting": 0, "backward_chaining": 0})
        self.assertEqual(behaviours.count_by_rules("Hmm. Hmm, wait... Actually, no.")["backtracking"], 4)

    def test_rates_and_transfer_rate(self):
        responses = [(SHOWS_ALL, True), (SHOWS_NONE, True), (SHOWS_NONE, True), (SHOWS_NONE, True),
                     (SHOWS_ALL, False), ("Step 1: add.", False)]
        rows = {r["behaviour"]: r for r in behaviours.report_rows("x", behaviours.tally(responses, behaviours.count_by_rules))}
        back = rows["backtracking"]
        self.assertEqual((back["visual_responses"], back["visual_showing"], back["visual_mentions"]), (4, 1, 2))
        self.assertEqual((back["visual_rate"], back["linguistic_rate"]), (0.25, 0.5))
        self.assertAlmostEqual(back["transfer_rate"], 0.5)
        self.assertAlmostEqual(rows["subgoal_setting"]["transfer_rate"], 0.25 / 1.0)
        only_visual = behaviours.report_rows("y", behaviours.tally([(SHOWS_ALL, True), (SHOWS_ALL, False)], lambda t: {
            "backtracking": 1, "verification": 0, "subgoal_setting": 0, "backward_chaining": 0}))
        self.assertIsNone(only_visual[1]["transfer_rate"])  # linguistic rate 0: undefined, not infinite


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.d = self.dir.name

    def tearDown(self):
        self.dir.cleanup()

    def test_rollouts_and_eval_results_by_label(self):
        a, b = os.path.join(self.d, "iter_000000.h5"), os.path.join(self.d, "iter_000001.h5")
        write_rollout(a, [("fig.png", [(SHOWS_ALL, 1.0, "eos"), (SHOWS_NONE, 0.0, "eos")]),
                          ("", [(SHOWS_ALL, 1.0, "eos")])])
        write_rollout(b, [("fig.png", [(SHOWS_NONE, 1.0, "eos"), (SHOWS_NONE, 0.0, "length")]),
                          ("", [(SHOWS_NONE, 1.0, "eos")])], iteration=1)
        results = os.path.join(self.d, "results.jsonl")
        write_jsonl(results, [{"response": SHOWS_ALL, "has_image": False}, {"response": SHOWS_ALL, "has_image": True}])
        out_csv, out_json = os.path.join(self.d, "b.csv"), os.path.join(self.d, "b.json")
        result = run_script("behaviours.py", a, b, self.d, "--tokenizer", TINY_TOKENIZER,
                            "--label", f"{a}=RL", "--label", f"{b}=RL", "--label", f"{self.d}=SFT",
                            "--csv", out_csv, "--json", out_json)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("| RL | backtracking/reflection | 25.0 (1/4) | 50.0 (1/2) | 0.50 |", result.stdout)
        self.assertIn("| SFT | verification | 100.0 (1/1) | 100.0 (1/1) | 1.00 |", result.stdout)  # folder -> results.jsonl
        with open(out_csv) as f:
            rows = {(r["input"], r["behaviour"]): r for r in csv.DictReader(f)}
        self.assertEqual(rows["RL", "backtracking"]["visual_mentions"], "2")
        self.assertEqual(float(rows["RL", "backward_chaining"]["transfer_rate"]), 0.5)
        with open(out_json) as f:
            saved = json.load(f)
        self.assertEqual(saved["detector"], "rule-based detector")
        self.assertEqual(len(saved["rows"]), 8)

    def test_bad_inputs_are_one_line_errors(self):
        broken = os.path.join(self.d, "iter_000000.h5")
        write_rollout(broken, [("", [("a", 1.0, "eos")])], omit=("response_lengths",))
        result = run_script("behaviours.py", broken, "--tokenizer", TINY_TOKENIZER)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.strip(),
                         f"behaviours.py: error: {broken}: missing dataset /rollout/response_lengths")
        results = os.path.join(self.d, "results.jsonl")
        write_jsonl(results, [{"response": "x", "has_image": False}, "{broken", {"response": "y"}])
        result = run_script("behaviours.py", results)
        self.assertEqual(result.returncode, 1)
        self.assertIn("results.jsonl:2: malformed JSON", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(run_script("behaviours.py", broken).returncode, 2)  # rollouts need --tokenizer


class FakeJudge(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that records requests and answers with the class's reply."""
    requests, reply = [], ""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        FakeJudge.requests.append((self.path, dict(self.headers), json.loads(body)))
        raw = json.dumps({"choices": [{"message": {"role": "assistant", "content": FakeJudge.reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


class Judge(unittest.TestCase):
    def setUp(self):
        self.server = http.server.HTTPServer(("127.0.0.1", 0), FakeJudge)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        FakeJudge.requests = []

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def test_request_carries_model_key_and_trace_and_reply_is_parsed(self):
        FakeJudge.reply = 'Counts:\n```json\n{"backtracking": 2, "verification": 1, "subgoal_setting": 0, ' \
                          '"backward_chaining": 3}\n```'
        with mock.patch.dict(os.environ, {"OPENAI_API_KEY": "sk-test"}):
            counts = behaviours.make_judge(self.url, "judge-model", retries=0, timeout=5)("Wait, no. x = 2")
        self.assertEqual(counts, {"backtracking": 2, "verification": 1, "subgoal_setting": 0, "backward_chaining": 3})
        (path, headers, body), = FakeJudge.requests
        self.assertEqual(path, "/v1/chat/completions")
        self.assertEqual(headers["Authorization"], "Bearer sk-test")
        self.assertEqual((body["model"], body["temperature"]), ("judge-model", 0))
        self.assertIn("<trace>\nWait, no. x = 2\n</trace>", body["messages"][0]["content"])

    def test_unusable_reply_is_retried_then_reported(self):
        FakeJudge.reply = '{"backtracking": 1}'
        judge = behaviours.make_judge(self.url, "m", retries=1, timeout=5)
        with self.assertRaisesRegex(InputError, "no count for 'verification'"):
            judge("text")
        self.assertEqual(len(FakeJudge.requests), 2)
        with self.assertRaises(ValueError):
            behaviours.parse_judge_reply('{"choices": []}')
        with self.assertRaises(ValueError):
            behaviours.parse_judge_reply(json.dumps({"choices": [{"message": {"content": '{"backtracking": -1, '
                '"verification": 0, "subgoal_setting": 0, "backward_chaining": 0}'}}]}))

    def test_command_line_judge_mode(self):
        FakeJudge.reply = '{"backtracking": 1, "verification": 0, "subgoal_setting": 0, "backward_chaining": 0}'
        with tempfile.TemporaryDirectory() as d:
            results = os.path.join(d, "results.jsonl")
            write_jsonl(results, [{"response": "anything", "has_image": True}, {"response": "else", "has_image": False}])
            result = run_script("behaviours.py", results, "--label", f"{results}=final", "--judge-url", self.url,
                                "--judge-model", "m")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("| final | backtracking/reflection | 100.0 (1/1) | 100.0 (1/1) | 1.00 |", result.stdout)
        self.assertIn("LLM judge m", result.stdout)
        self.assertEqual(len(FakeJudge.requests), 2)


if __name__ == "__main__":
    unittest.main()
