#!/usr/bin/env python3
"""Count cognitive behaviours in reasoning traces, split by visual and linguistic prompts.

Inputs: rollout files (iter_*.h5, or a folder of them; they need --tokenizer to decode the
responses), ovr_eval results (results.jsonl, or its folder). A response is visual when its
prompt had an image (rollouts: the group's `image` is non-empty; eval: `has_image`).

For each input label (--label PATH=NAME, else the path; inputs sharing a label are pooled, so a
label can name a checkpoint or a training stage) and each behaviour, it reports the share of
visual and of linguistic responses that show the behaviour at least once, and the paper's
behaviour transfer rate = visual rate / linguistic rate (undefined when either side has no
responses or the linguistic rate is 0). Output: a Markdown table on stdout; --csv and --json
write the same numbers plus the number of matches (mentions).

Rule-based detector (default): a response shows a behaviour when any of its rules matches
(case-insensitive). The rules, each with an example it matches:
  backtracking/reflection
    B1 wait        "wait" followed by punctuation       "Wait, that gives 12, not 14."
    B2 hmm         hmm, hmmm                            "Hmm, the sign looks off."
    B3 revisit     reconsider, rethink, re-examine, re-evaluate, revisit, go back to,
                   look (at the figure) again           "Let me reconsider the second case."
    B4 mistake     "I made a mistake", "that's wrong/not right", "this is incorrect",
                   "my mistake"                         "That's not right: the radius is 3."
    B5 switch      "actually,", "on second thought", "another/a different approach"
                                                        "Actually, the angle is 40 degrees."
  verification
    V1 check       let me / let's / we (can) + check, double-check, verify, confirm
                                                        "Let me verify: 3 * 4 = 12."
    V2 to verify   "to check", "to verify", "to confirm", "to double-check"
                                                        "To confirm, count the squares in the image."
    V3 plug back   substitute / plug ... back (within a few words)
                                                        "Plugging x = 2 back into the equation gives 0."
    V4 sanity      "sanity check", "double-checking", "verification"
                                                        "Quick sanity check on the units."
    V5 agrees      which/this/that/it + matches, is consistent with, agrees with, confirms
                                                        "This matches the given perimeter."
    V6 check step  a sentence that starts with "check" followed by a computation
                                                        "6+2=8. check 8-2=6."
  sub-goal setting
    S1 steps       "step 1", "step one", "the first step"
                                                        "Step 1: find the radius of the circle."
    S2 first       "first(ly)," + we / I / let's / let me
                                                        "First, we find the slope of the line."
    S3 break down  break / divide / split this (problem) into or down, sub-problem(s), sub-goal(s),
                   "case 1", "consider each case"      "Let's break this down into two parts."
    S4 next        "next," + we / I / let's             "Next, we compute the height."
  backward chaining
    K1 backward    "working backward(s)", "backwards from", "start from the answer/goal/end"
                                                        "Working backwards from the answer, x must be 5."
    K2 need        to find / get / determine / show X (within 80 characters), we / I + need / must
                                                        "To find the area, we need the height."
    K3 suffices    "it suffices to show", "it is enough to prove"
                                                        "It suffices to show that n is even."
    K4 goal        "what we need is", "what I need to find", "our goal is"
                                                        "Our goal is the length of AB, so we need angle C."

LLM-judge mode (--judge-url, off by default): each response goes to an OpenAI-compatible
/chat/completions endpoint (API key from the environment variable OPENAI_API_KEY, sent when
set) with a counting prompt, as the paper did with GPT-4o; the reply's JSON object gives a
count per behaviour. Only the Python standard library's urllib is used.

Example:
  postprocess/behaviours.py runs/x/rl/rollouts/iter_000100.h5 eval/final/mathvision/results.jsonl \\
      --tokenizer inputs/tiny/tokenizer.json --label runs/x/rl/rollouts/iter_000100.h5=RL --csv b.csv
"""
import argparse
import csv
import glob
import json
import os
import re
import sys
import urllib.error
import urllib.request

from ovr_files import InputError, Rollout, TokenDecoder, parse_labels, read_jsonl, require_file, run_main

BEHAVIOURS = {"backtracking": "backtracking/reflection", "verification": "verification",
              "subgoal_setting": "sub-goal setting", "backward_chaining": "backward chaining"}

# (behaviour, rule, pattern, an example it must match); the docstring lists the same rules.
RULES = [
    ("backtracking", "B1 wait", r"\bwait\s*[,.!:;\u2014-]", "Wait, that gives 12, not 14."),
    ("backtracking", "B2 hmm", r"\bhm{2,}\b", "Hmm, the sign looks off."),
    ("backtracking", "B3 revisit", r"\b(?:re-?consider|re-?think|re-?examin(?:e|ing)|re-?evaluat(?:e|ing)|revisit(?:ing)?"
                                   r"|go(?:ing)? back to|look(?:ing)? (?:at (?:the|this) \w+ )?again)\b",
     "Let me reconsider the second case."),
    ("backtracking", "B4 mistake", r"\b(?:I|we) made an? (?:mistake|error)\b|\bthat(?:'s| is| was) (?:not right|not correct|wrong|incorrect)\b"
                                   r"|\bthis (?:is|was) (?:wrong|incorrect)\b|\bmy (?:mistake|error)\b",
     "That's not right: the radius is 3."),
    ("backtracking", "B5 switch", r"\bactually,|\bon second thought\b|\b(?:another|a different) (?:approach|way|method)\b",
     "Actually, the angle is 40 degrees."),
    ("verification", "V1 check", r"\b(?:let me|let's|let us|we(?: can)?)\s+(?:double-?check|check|verify|confirm)\b",
     "Let me verify: 3 * 4 = 12."),
    ("verification", "V2 to verify", r"\bto (?:double-?check|check|verify|confirm)\b", "To confirm, count the squares in the image."),
    ("verification", "V3 plug back", r"\b(?:substitut(?:e|ing)|plug(?:ging)?)\s+(?:\S+\s+){0,4}?back\b",
     "Plugging x = 2 back into the equation gives 0."),
    ("verification", "V4 sanity", r"\bsanity check\b|\bdouble-?checking\b|\bverification\b", "Quick sanity check on the units."),
    ("verification", "V5 agrees", r"\b(?:which|this|that|it) (?:matches|is consistent with|agrees with|confirms)\b",
     "This matches the given perimeter."),
    ("verification", "V6 check step", r"(?:^|[.:;!?]\s+|\n\s*)check\b\s*[:,]?\s*[-+(\d]", "6+2=8. check 8-2=6."),
    ("subgoal_setting", "S1 steps", r"\bstep (?:1|one)\b|\bthe first step\b", "Step 1: find the radius of the circle."),
    ("subgoal_setting", "S2 first", r"\bfirst(?:ly)?,\s*(?:we|I|let's|let me)\b", "First, we find the slope of the line."),
    ("subgoal_setting", "S3 break down", r"\b(?:break|divide|split) (?:this|it|the problem) (?:down|into)\b|\bsub-?(?:problems?|goals?)\b"
                                         r"|\bcase 1\b|\bconsider each case\b",
     "Let's break this down into two parts."),
    ("subgoal_setting", "S4 next", r"\bnext,\s*(?:we|I|let's)\b", "Next, we compute the height."),
    ("backward_chaining", "K1 backward", r"\bworking backwards?\b|\bbackwards? from\b|\bstart(?:ing)? from the (?:answer|goal|end)\b",
     "Working backwards from the answer, x must be 5."),
    ("backward_chaining", "K2 need", r"\b(?:to|in order to) (?:find|get|determine|show)\b[^.\n]{0,80}?,\s*(?:we|I) (?:need|must)\b",
     "To find the area, we need the height."),
    ("backward_chaining", "K3 suffices", r"\bit (?:suffices|is enough) to (?:show|prove)\b", "It suffices to show that n is even."),
    ("backward_chaining", "K4 goal", r"\bwhat (?:we|I) need (?:is|to find)\b|\bour goal is\b",
     "Our goal is the length of AB, so we need angle C."),
]
COMPILED = [(behaviour, re.compile(pattern, re.IGNORECASE)) for behaviour, _, pattern, _ in RULES]


def count_by_rules(text):
    """-> {behaviour: number of rule matches in the text}."""
    counts = dict.fromkeys(BEHAVIOURS, 0)
    for behaviour, regex in COMPILED:
        counts[behaviour] += len(regex.findall(text))
    return counts


JUDGE_PROMPT = """You analyse the reasoning trace of a model solving a problem.
Count how many times the trace shows each of these cognitive behaviours:
- backtracking: it notices that an approach or result is wrong and explicitly goes back to try another (e.g. "Wait, that's not right; let's try ...").
- verification: it checks an intermediate or final result (e.g. "Let me verify: 3 * 4 = 12").
- subgoal_setting: it breaks the problem into smaller intermediate goals (e.g. "First find the radius, then the area").
- backward_chaining: it starts from the goal and works back to what is needed (e.g. "To find the area we need the height, so ...").
Reply with only a JSON object with integer counts, for example:
{"backtracking": 0, "verification": 1, "subgoal_setting": 2, "backward_chaining": 0}

Reasoning trace:
<trace>
{trace}
</trace>"""


def judge_request(url, model, text, api_key):
    """The HTTP request asking the judge to count the behaviours in one response."""
    endpoint = url if url.rstrip("/").endswith("/chat/completions") else url.rstrip("/") + "/chat/completions"
    body = {"model": model, "temperature": 0,
            "messages": [{"role": "user", "content": JUDGE_PROMPT.replace("{trace}", text)}]}
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return urllib.request.Request(endpoint, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST")


def parse_judge_reply(raw):
    """A chat-completions reply -> {behaviour: count}; ValueError when it holds no usable counts."""
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        raise ValueError("not a chat-completions reply") from None
    found = re.search(r"\{.*\}", content or "", re.DOTALL)  # the model may wrap the object in prose or ```json
    try:
        counts = json.loads(found.group(0)) if found else None
    except json.JSONDecodeError:
        counts = None
    if not isinstance(counts, dict):
        raise ValueError(f"no JSON object in the judge's answer: {content[:80]!r}")
    result = {}
    for behaviour in BEHAVIOURS:
        value = counts.get(behaviour)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"the judge's answer has no count for '{behaviour}': {content[:80]!r}")
        result[behaviour] = value
    return result


def make_judge(url, model, retries, timeout):
    api_key = os.environ.get("OPENAI_API_KEY", "")

    def count_by_judge(text):
        problem = None
        for _ in range(retries + 1):
            try:
                with urllib.request.urlopen(judge_request(url, model, text, api_key), timeout=timeout) as reply:
                    return parse_judge_reply(reply.read().decode("utf-8", errors="replace"))
            except (urllib.error.URLError, OSError, ValueError) as e:
                problem = e
        raise InputError(f"judge {url}: {problem}")

    return count_by_judge


def responses_in(path, decoder):
    """-> [(response text, is visual)] for one command-line input."""
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "results.jsonl")):
            return responses_in(os.path.join(path, "results.jsonl"), decoder)
        files = sorted(glob.glob(os.path.join(path, "*.h5")))
        if not files:
            raise InputError(f"{path}: no results.jsonl or .h5 rollout files here")
        return [r for f in files for r in responses_in(f, decoder)]
    require_file(path)
    if path.endswith(".h5"):
        with Rollout(path) as rollout:
            return [(decoder.decode(tokens), bool(visual))
                    for tokens, visual in zip(rollout.responses(), rollout.sample_is_image())]
    return [(row["response"], row["has_image"]) for row in read_jsonl(path, {"response": str, "has_image": bool})]


def needs_tokenizer(path):
    return path.endswith(".h5") or (os.path.isdir(path) and not os.path.isfile(os.path.join(path, "results.jsonl")))


def tally(responses, count):
    """-> {behaviour: {side: {"responses", "showing", "mentions"}}} for side in visual, linguistic."""
    stats = {b: {side: {"responses": 0, "showing": 0, "mentions": 0} for side in ("visual", "linguistic")}
             for b in BEHAVIOURS}
    for text, visual in responses:
        side = "visual" if visual else "linguistic"
        for behaviour, n in count(text).items():
            cell = stats[behaviour][side]
            cell["responses"] += 1
            cell["showing"] += n > 0
            cell["mentions"] += n
    return stats


def report_rows(label, stats):
    """Flat rows with the rates and the transfer rate, one per behaviour."""
    rows = []
    for behaviour, sides in stats.items():
        row = {"input": label, "behaviour": behaviour}
        for side, cell in sides.items():
            row[f"{side}_responses"], row[f"{side}_showing"] = cell["responses"], cell["showing"]
            row[f"{side}_mentions"] = cell["mentions"]
            row[f"{side}_rate"] = cell["showing"] / cell["responses"] if cell["responses"] else None
        visual, linguistic = row["visual_rate"], row["linguistic_rate"]
        row["transfer_rate"] = visual / linguistic if visual is not None and linguistic else None
        rows.append(row)
    return rows


def to_markdown(rows, detector):
    def rate(row, side):
        if row[f"{side}_rate"] is None:
            return "–"
        return f"{100 * row[f'{side}_rate']:.1f} ({row[f'{side}_showing']}/{row[f'{side}_responses']})"

    lines = ["| input | behaviour | visual % | linguistic % | transfer |", "| --- | --- | ---: | ---: | ---: |"]
    for row in rows:
        transfer = "–" if row["transfer_rate"] is None else f"{row['transfer_rate']:.2f}"
        lines.append(f"| {row['input']} | {BEHAVIOURS[row['behaviour']]} | {rate(row, 'visual')} | "
                     f"{rate(row, 'linguistic')} | {transfer} |")
    return "\n".join(lines) + f"\n\nShare of responses showing each behaviour ({detector}); " \
                              "transfer = visual rate / linguistic rate.\n"


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="rollout .h5 files or folders, eval results.jsonl files or folders")
    parser.add_argument("--tokenizer", metavar="FILE", help="tokenizer.json to decode rollout responses")
    parser.add_argument("--label", action="append", metavar="PATH=NAME",
                        help="label (checkpoint or stage) for an input; inputs with one label are pooled")
    parser.add_argument("--max-responses", type=int, metavar="N",
                        help="use only the first N responses of each label (bounds a judge's cost)")
    parser.add_argument("--csv", metavar="FILE", help="write the numbers as CSV here")
    parser.add_argument("--json", metavar="FILE", help="write the numbers as JSON here")
    parser.add_argument("--judge-url", metavar="URL", help="OpenAI-compatible API base URL: count with an LLM judge")
    parser.add_argument("--judge-model", default="gpt-4o", help="the judge's model name (default: gpt-4o)")
    parser.add_argument("--judge-retries", type=int, default=2, help="retries per response on a failed call (default: 2)")
    parser.add_argument("--judge-timeout", type=float, default=120.0, help="seconds per judge call (default: 120)")
    args = parser.parse_args()
    if args.max_responses is not None and args.max_responses < 1:
        parser.error("--max-responses must be at least 1")
    if not args.tokenizer and any(needs_tokenizer(p) for p in args.inputs):
        parser.error("rollout files need --tokenizer to decode their responses")

    decoder = TokenDecoder(args.tokenizer) if args.tokenizer else None
    labels = parse_labels(args.label, parser)
    pooled = {}
    for path in args.inputs:
        label = labels.get(os.path.normpath(path), path)
        pooled.setdefault(label, []).extend(responses_in(path, decoder))
    count, detector = count_by_rules, "rule-based detector"
    if args.judge_url:
        count = make_judge(args.judge_url, args.judge_model, args.judge_retries, args.judge_timeout)
        detector = f"LLM judge {args.judge_model}"
    rows = [row for label, responses in pooled.items()
            for row in report_rows(label, tally(responses[:args.max_responses], count))]
    sys.stdout.write(to_markdown(rows, detector))
    if args.csv:
        write_csv(args.csv, rows)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"detector": detector, "rows": rows}, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
