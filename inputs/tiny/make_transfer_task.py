#!/usr/bin/env python3
"""The tiny default task: add the two digits of a picture, learnt from text alone.

OVR's claim in miniature (../../docs/tiny-task.md): a model whose reasoning is taught on text
problems only solves the same problems shown as pictures, and RL on pictures then sharpens it.

  python3 inputs/tiny/make_transfer_task.py OUT_DIR [--seed 0] [--train-images 3000]

Standard library only (PNG written with zlib), so it runs on any machine that runs the
pipeline; the same seed gives byte-identical files (random.Random's integer methods are stable
across Python 3 versions).

Layout. Every prompt is "QUESTION:" followed by a 4-token slot <|vision_start|> X <|vision_end|>:
  - a picture: 14 x 56 grey PNG, four 14 x 14 cells [blank, digit a, blank, digit b]; with the
    tiny vision tower (7 px patches, 2 x 2 merge) each cell becomes one image token;
  - text: " a b" (four byte tokens: space, a, space, b) in the same slot.
So digit a sits at the same position whether it is read or seen.

Files (JSONL rows in ovr's chat `messages` form; image paths relative to the file):
  base.jsonl         stage 0, the "base" vision-language model, trained whole (language model, vision
                     tower, merger) as a real VLM's pre-training is: arithmetic facts ("Calc: 6+2" ->
                     "6+2=8") and six perception questions (What, First, Last, Reverse, Larger,
                     Describe) asked about written numbers and about pictures alike. An answer
                     starts by naming the task and the digits it sees ("First 6 2. 6"); Describe's
                     is long ("Describe 6 2. first 6. last 2. larger 6. reverse 2 6."), as a
                     caption is. Never a sum problem, the verification step or \\boxed{}.
  sft_text.jsonl     stage 1, the language-only cold start: "Add:" on written numbers with the
                     reasoning trace `Add 6 2. 6+2=8. check 8-2=6. \\boxed{8}` (restate, compute,
                     verify, box), plus some text perception rows of stage 0. No picture at all.
  rl_prompts.jsonl   stage 2: "Add:" on pictures (75%) and on written numbers (25%), with answers.
  eval_image.jsonl, eval_text.jsonl   held-out "Add:" problems (pictures never seen in training).
"""
import argparse
import json
import os
import random
import struct
import zlib

# A 5 x 7 digit font (rows top to bottom, bit 4 = leftmost pixel).
FONT = {
    0: [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], 1: [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
    2: [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], 3: [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
    4: [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], 5: [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
    6: [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], 7: [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    8: [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], 9: [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
}
CELL, HEIGHT, WIDTH = 14, 14, 56
SYSTEM = {"role": "system", "content": "Solve."}
QUESTIONS = {  # perception question -> answer from the two digits; each starts by naming the task and
    # the digits it sees ("First 6 2."), as the trace does ("Add 6 2."): see docs/tiny-task.md
    "What": lambda a, b: "", "First": lambda a, b: f" {a}", "Last": lambda a, b: f" {b}",
    "Reverse": lambda a, b: f" {b} {a}", "Larger": lambda a, b: f" {max(a, b)}",
    "Describe": lambda a, b: f" first {a}. last {b}. larger {max(a, b)}. reverse {b} {a}.",
}


def perception_answer(question, a, b):
    return f"{question} {a} {b}.{QUESTIONS[question](a, b)}"


TEXT_REPEAT = 3  # copies of each text row of the base, so that text is about 40% of its rows


def png_grey(path, pixels):
    """Writes an 8-bit greyscale PNG (pixels: rows of ints 0..255)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    header = struct.pack(">IIBBBBB", len(pixels[0]), len(pixels), 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def render(rng, a, b):
    """Cells [blank, a, blank, b]; each digit drawn at twice the font size (10 x 14), shifted by
    up to 2 px inside its cell, with random ink and background noise."""
    px = [[rng.randint(0, 40) for _ in range(WIDTH)] for _ in range(HEIGHT)]
    for cell, digit in ((1, a), (3, b)):
        x0, ink = cell * CELL + rng.randint(1, 3), rng.randint(190, 255)
        for y, bits in enumerate(FONT[digit]):
            for x in range(5):
                if bits >> (4 - x) & 1:
                    for dy in (0, 1):
                        for dx in (0, 1):
                            px[2 * y + dy][x0 + 2 * x + dx] = ink
    return px


def slot_text(a, b):
    return f"<|vision_start|> {a} {b}<|vision_end|>"


def text_turn(question, a, b):
    return {"role": "user", "content": f"{question}:{slot_text(a, b)}"}


def image_turn(question, image):
    return {"role": "user", "content": [{"type": "text", "text": f"{question}:"}, {"type": "image", "image": image}]}


def trace(a, b):
    s = a + b
    return f"Add {a} {b}. {a}+{b}={s}. check {s}-{b}={a}. \\boxed{{{s}}}"


def conversation(user, answer):
    return {"messages": [SYSTEM, user, {"role": "assistant", "content": answer}]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-images", type=int, default=3000, help="pictures for perception training")
    ap.add_argument("--rl-images", type=int, default=600, help="pictures for RL prompts")
    ap.add_argument("--eval-images", type=int, default=100, help="held-out pictures for evaluation")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(os.path.join(args.out_dir, "images"), exist_ok=True)

    def picture(split, i):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        name = f"images/{split}_{i:05d}.png"
        png_grey(os.path.join(args.out_dir, name), render(rng, a, b))
        return a, b, name

    def write(name, rows):
        with open(os.path.join(args.out_dir, name), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    pairs = [(a, b) for a in range(10) for b in range(10)]
    # Stage 0: arithmetic facts (both directions of every fact the traces use), and the perception
    # questions on written numbers and on pictures (one random question per picture). Text and
    # pictures share the questions and the answers, so reading is one skill of the language model
    # whatever the input; why the base is trained whole is in docs/tiny-task.md.
    facts = [conversation({"role": "user", "content": f"Calc: {a}+{b}"}, f"{a}+{b}={a + b}") for a, b in pairs]
    facts += [conversation({"role": "user", "content": f"Calc: {a + b}-{b}"}, f"{a + b}-{b}={a}") for a, b in pairs]
    text_perception = [conversation(text_turn(q, a, b), perception_answer(q, a, b)) for a, b in pairs for q in QUESTIONS]
    image_perception = []
    for i in range(args.train_images):
        a, b, name = picture("train", i)
        q = rng.choice(sorted(QUESTIONS))
        image_perception.append(conversation(image_turn(q, name), perception_answer(q, a, b)))
    base = (facts + text_perception) * TEXT_REPEAT + image_perception
    rng.shuffle(base)
    write("base.jsonl", base)
    # Stage 1: text sum problems with the trace (each pair three times), and 50 text perception rows
    # of stage 0. Language only, as the paper's cold start: no picture, so nothing here teaches the
    # model what to do with a picture of a sum.
    sft = [conversation(text_turn("Add", a, b), trace(a, b)) for a, b in pairs * 3]
    sft += rng.sample(text_perception, 50)
    rng.shuffle(sft)
    write("sft_text.jsonl", sft)
    # Stage 2: RL prompts, pictures and text (the paper mixes text problems into RL).
    rl = []
    for i in range(args.rl_images):
        a, b, name = picture("rl", i)
        rl.append({"id": f"img-{i}", "messages": [SYSTEM, image_turn("Add", name)], "answer": str(a + b)})
    for i in range(args.rl_images // 3):
        a, b = rng.choice(pairs)
        rl.append({"id": f"txt-{i}", "messages": [SYSTEM, text_turn("Add", a, b)], "answer": str(a + b)})
    rng.shuffle(rl)
    write("rl_prompts.jsonl", rl)
    # Held-out evaluation: new pictures; text problems over all 100 pairs.
    evals = []
    for i in range(args.eval_images):
        a, b, name = picture("eval", i)
        evals.append({"id": f"img-{i}", "messages": [SYSTEM, image_turn("Add", name)], "answer": str(a + b)})
    write("eval_image.jsonl", evals)
    write("eval_text.jsonl", [{"id": f"txt-{a}{b}", "messages": [SYSTEM, text_turn("Add", a, b)], "answer": str(a + b)}
                              for a, b in pairs])
    print(f"tiny transfer task in {args.out_dir}: {len(base)} base rows ({len(image_perception)} pictures), "
          f"{len(sft)} SFT rows, {len(rl)} RL prompts, {len(evals)} + 100 eval problems")


if __name__ == "__main__":
    main()
