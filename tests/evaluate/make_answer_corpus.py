"""Write ``answer_corpus.jsonl``: replies to multiple-choice questions in the styles of real models.

Run ``python tests/evaluate/make_answer_corpus.py`` to (re)write the file; the same code always
writes the same bytes (seeded), and ``test_answer_corpus.py`` checks that the file on disk is this
script's output before it counts the parser against it.

Each line: ``family`` (whose style the reply imitates), ``options`` (the option texts in letter
order), ``reply`` (the raw output), ``expected`` (the letter a careful reader takes from the reply,
or ``null`` when the reply offers no single answer) and ``kind`` (what the reply tests).

The styles follow what each family writes when asked the SPEC 3 question (``... format your answer
briefly such as 'A. move knife'``): GPT-4o with structured output returns ``{"answer": ...}``, and
without it a short line or a markdown sentence; Claude and Gemini reason in paragraphs and lists
before (or after) a bold answer; Qwen2-VL, LLaVA-Video, LLaVA-OneVision and InternVL mostly answer
with the letter, with or without its text, sometimes after a sentence; reasoning models (QVQ,
R1-style) think first and close with a tagged or boxed answer. Negatives are replies that offer
no single answer: two letters, negations, a letter whose text names another option, hedges,
letters outside the options, refusals, paraphrases and truncated replies.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).with_name("answer_corpus.jsonl")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SEED = 23

VERBS = {  # verb: its -ing form
    "open": "opening", "close": "closing", "take": "taking", "put down": "putting down",
    "wash": "washing", "cut": "cutting", "turn on": "turning on", "turn off": "turning off",
    "pour": "pouring", "stir": "stirring", "pick up": "picking up", "mix": "mixing",
    "dry": "drying", "peel": "peeling", "insert": "inserting", "remove": "removing",
    "rinse": "rinsing", "throw": "throwing", "squeeze": "squeezing", "scoop": "scooping",
    "move": "moving", "check": "checking", "fill": "filling", "shake": "shaking",
    "adjust": "adjusting", "fold": "folding", "slice": "slicing", "grate": "grating",
}  # fmt: skip
NOUNS = [
    "door", "cupboard", "drawer", "fridge", "plate", "knife", "spoon", "onion", "tap", "water",
    "pasta", "pan", "lid", "bowl", "cup", "sponge", "chopping board", "bag", "garlic", "carrot",
    "bottle", "tomato", "oil", "jar", "towel", "glass", "egg", "spatula", "dough", "pot",
    "kettle", "container", "cheese", "rice", "salt", "pepper", "courgette", "cloth", "tray",
]  # fmt: skip


@dataclass
class Case:
    """One question and the reply's ingredients: the chosen letter and its text, and others."""

    options: list[str]
    index: int  # the option a positive reply chooses
    verb: str
    noun: str
    rng: random.Random

    @property
    def L(self) -> str:
        return LETTERS[self.index]

    @property
    def l(self) -> str:  # noqa: E743
        return self.L.lower()

    @property
    def T(self) -> str:
        return self.options[self.index]

    @property
    def ing(self) -> str:
        return VERBS[self.verb]

    def other(self, k: int = 0) -> int:
        """The k-th option other than the chosen one (stable per case)."""
        others = [i for i in range(len(self.options)) if i != self.index]
        return others[k % len(others)]

    def OL(self, k: int = 0) -> str:  # another option's letter
        return LETTERS[self.other(k)]

    def OT(self, k: int = 0) -> str:
        return self.options[self.other(k)]

    def pick(self, *items: str) -> str:
        return self.rng.choice(items)

    def seen(self) -> str:
        """A sentence about what the frames show, in the words of a model describing them."""
        return self.pick(
            f"the right hand reaches for the {self.noun} and the motion is consistent with "
            f"{self.ing} it",
            f"across the frames the {self.noun} stays in view while my hands keep {self.ing} it",
            f"the hands are clearly {self.ing} the {self.noun}",
            f"the first frames show the {self.noun} on the counter, and in the later frames I am "
            f"{self.ing} it",
            f"the camera looks down at the {self.noun} and the left hand is {self.ing} it",
        )

    def listing(self) -> str:
        """The options restated as a markdown list, the way chat models echo them."""
        return "\n".join(f"- {LETTERS[i]}. {t}" for i, t in enumerate(self.options))


def make_case(rng: random.Random, n_options: int, index: int | None = None) -> Case:
    """A question in the benchmark's shape: the truth, and distractors sharing its verb or noun."""
    verbs = list(VERBS)
    while True:
        verb, noun = rng.choice(verbs), rng.choice(NOUNS)
        texts = [f"{verb} {noun}"]
        while len(texts) < n_options:
            kind = rng.random()
            if kind < 0.4:
                text = f"{verb} {rng.choice(NOUNS)}"
            elif kind < 0.8:
                text = f"{rng.choice(verbs)} {noun}"
            else:
                text = f"{rng.choice(verbs)} {rng.choice(NOUNS)}"
            if text not in texts:
                texts.append(text)
        if len(set(texts)) == n_options:
            break
    index = rng.randrange(n_options) if index is None else index
    order = texts[1:]
    rng.shuffle(order)
    order.insert(index, texts[0])
    return Case(order, index, verb, noun, rng)


Template = Callable[[Case], str]


def P(kind: str, make: Template) -> tuple[str, Template, bool]:
    """A positive template: the reply chooses the case's option."""
    return kind, make, True


def N(kind: str, make: Template) -> tuple[str, Template, bool]:
    """A negative template: the reply offers no single answer."""
    return kind, make, False


# -- the families' styles -------------------------------------------------------------------

GPT4O_STRUCTURED = [
    P("json", lambda c: json.dumps({"answer": f"{c.L}. {c.T}"})),
    P("json", lambda c: json.dumps({"answer": f"{c.L}. {c.T}"}, separators=(",", ":"))),
    P("json", lambda c: json.dumps({"answer": c.L})),
    P("json", lambda c: json.dumps({"answer": c.T})),
    P("json", lambda c: json.dumps({"answer": f"{c.L}. {c.T}."})),
    P("json", lambda c: json.dumps({"answer": f"{c.L}. {c.T}"}, indent=2)),
    P("json", lambda c: json.dumps({"answer": f"{c.L}) {c.T}"})),
    P("json", lambda c: json.dumps({"answer": f"The answer is {c.L}. {c.T}"})),
    P("json", lambda c: json.dumps({"answer": f"({c.L}) {c.T}"})),
    P("json", lambda c: json.dumps({"answer": f"{c.L}. {c.T}"}, ensure_ascii=False) + "\n"),
    P("json", lambda c: repr({"answer": c.L})),
    P("json", lambda c: json.dumps({"answer_letter": c.L, "answer_text": c.T})),
    N("two-letters", lambda c: json.dumps({"answer": f"{c.L} or {c.OL()}"})),
    N("contradiction", lambda c: json.dumps({"answer": f"{c.L}. {c.OT()}"})),
    N("hedge", lambda c: json.dumps({"answer": "Unable to determine from the frames."})),
    N("negation", lambda c: json.dumps({"answer": "None of the options"})),
]

GPT4O = [
    P("letter-text", lambda c: f"{c.L}. {c.T}"),
    P("letter-text", lambda c: f"{c.L}. {c.T}."),
    P("bare-letter", lambda c: c.L),
    P("bare-letter", lambda c: f"{c.L}."),
    P("markdown", lambda c: f"**{c.L}. {c.T}**"),
    P("markdown", lambda c: f"**{c.L}**"),
    P("preamble", lambda c: f"The correct answer is {c.L}. {c.T}."),
    P("preamble", lambda c: f"The correct answer is **{c.L}. {c.T}**."),
    P("preamble", lambda c: f"The action being performed is **{c.L}. {c.T}**."),
    P("preamble", lambda c: f"Answer: {c.L}. {c.T}"),
    P("reasoning-final", lambda c: f"In the frames, {c.seen()}.\n\n**Answer: {c.L}. {c.T}**"),
    P(
        "reasoning-final",
        lambda c: (
            f"Based on the sequence of frames, {c.seen()}. This suggests that the action is "
            f"{c.T}.\n\nTherefore, the answer is **{c.L}**."
        ),
    ),
    P(
        "list-reasoning",
        lambda c: (
            f"Let's look at the frames:\n\n1. The {c.noun} is visible from the start.\n2. My hand "
            f"moves toward it.\n3. By the last frame, I am {c.ing} the {c.noun}.\n\n"
            f"So the correct option is {c.L}."
        ),
    ),
    P("restated", lambda c: f"{c.L}. {c.T}\n\nThe frames show me {c.ing} the {c.noun}."),
    P("bracketed", lambda c: f"({c.L}) {c.T}"),
    P("option-word", lambda c: f"Option {c.L}"),
    P("option-word", lambda c: f"Option {c.L}: {c.T}"),
    P("quoted-text", lambda c: f'{c.L}. "{c.T}"'),
    P("code", lambda c: f"`{c.L}. {c.T}`"),
    N("two-letters", lambda c: f"{c.L} or {c.OL()}"),
    N(
        "hedge",
        lambda c: (
            "I'm sorry, but I can't determine the action from these frames alone. The images are "
            "too blurry to tell which option applies."
        ),
    ),
    N("negation", lambda c: f"It is not {c.L}."),
    N("contradiction", lambda c: f"{c.L}. {c.OT()}"),
    N("contradiction", lambda c: f"The correct answer is {c.L}. {c.OT()}."),
]

CLAUDE = [
    P("preamble", lambda c: f"I think the answer is {c.L}. {c.T}."),
    P("preamble", lambda c: f"Based on the frames, the answer is ({c.L}) {c.T}."),
    P(
        "reasoning-final",
        lambda c: (
            f"Looking at the sequence of frames, {c.seen()}. The other options don't match what's "
            f"happening: there's no sign of {c.OT()} or {c.OT(1)}.\n\nThe answer is **{c.L}. {c.T}**."
        ),
    ),
    P(
        "reasoning-final",
        lambda c: (
            f"Let me work through this.\n\nIn the early frames the {c.noun} is on the counter. In "
            f"the middle frames {c.seen()}. Option {c.OL()} ({c.OT()}) doesn't fit, because nothing "
            f"like that happens, and option {c.OL(1)} would need a different object.\n\n"
            f"**{c.L}. {c.T}**"
        ),
    ),
    P(
        "list-reasoning",
        lambda c: (
            f"Here's what I can see across the {c.pick('8', '16', 'eight')} frames:\n\n"
            f"- The {c.noun} is in the centre of the view\n- My hands are {c.ing} it\n"
            f"- Nothing suggests {c.OT()}\n\nSo the correct option is {c.L}."
        ),
    ),
    P(
        "reasoning-final",
        lambda c: (
            f"The frames show a kitchen counter from a first-person view; {c.seen()}.\n\n"
            f"...so the correct option is {c.L}."
        ),
    ),
    P(
        "reasoning-final",
        lambda c: (
            f"Going option by option:\n\n- **{c.OL()}. {c.OT()}**: not what the hands do\n"
            f"- **{c.L}. {c.T}**: matches the frames\n- **{c.OL(1)}. {c.OT(1)}**: no\n\n"
            f"Final answer: {c.L}"
        ),
    ),
    P(
        "restated",
        lambda c: (
            f"**{c.L}. {c.T}**\n\nThe frames show {c.seen().replace('the hands are', 'my hands are')}"
            f", which is exactly what option {c.L} describes."
        ),
    ),
    P(
        "negated-alternative",
        lambda c: (
            f"It's not {c.OL()} ({c.OT()}), since the {c.noun} is never touched that way. The answer "
            f"is {c.L}."
        ),
    ),
    P(
        "final-wins",
        lambda c: (
            f"At first glance this could look like {c.OL()}, {c.OT()}. But looking more closely at "
            f"the last frames, {c.seen()}.\n\nThe answer is {c.L}. {c.T}."
        ),
    ),
    P("quoted-text", lambda c: f'I\'d go with {c.L} ("{c.T}").'),
    P("negated-alternative", lambda c: f"{c.L} (not {c.OL()})"),
    P("negated-alternative", lambda c: f"The answer is not {c.OL()} but {c.L}."),
    P("final-wins", lambda c: f"The answer is {c.OL()}.\nActually, {c.L}."),
    P("reverse", lambda c: f"{c.L} would be my answer: {c.seen()}."),
    N("two-letters", lambda c: f"The answer is {c.L}. Or maybe {c.OL()}."),
    N("hedge", lambda c: f"The answer is {c.OL()}; no wait, {c.L}; actually I'm not sure."),
    P("option-word", lambda c: f"I'll choose option {c.L}: {c.T}."),
    P("preamble", lambda c: f"The person is {c.ing} the {c.noun}, so my answer is {c.L}."),
    N(
        "hedge",
        lambda c: (
            f"It's hard to say from these frames. The hands are near the {c.noun}, but I can't tell "
            f"whether this is {c.T} or {c.OT()}."
        ),
    ),
    N(
        "two-letters",
        lambda c: (
            f"The frames are ambiguous: it's either {c.L} or {c.OL()}. I can't decide between them."
        ),
    ),
    N("negation", lambda c: f"Neither {c.L} nor {c.OL()} fits what I see in these frames."),
    N(
        "negation",
        lambda c: f"I don't think the answer is {c.L}. The {c.noun} never moves in these frames.",
    ),
    N(
        "hedge",
        lambda c: (
            f"I can't determine the action with confidence. {c.L} and {c.OL()} both seem plausible "
            "given the frames."
        ),
    ),
    N("contradiction", lambda c: f"The answer is {c.L} ({c.OT()})."),
]

GEMINI = [
    P("markdown", lambda c: f"**{c.L}. {c.T}**\n\nIn the frames, {c.seen()}."),
    P("markdown", lambda c: f"The answer is **{c.L}**."),
    P("markdown", lambda c: f"*{c.L}*"),
    P("markdown", lambda c: f"**Answer:** {c.L}. {c.T}"),
    P("markdown", lambda c: f"## Answer\n\n**{c.L}. {c.T}**"),
    P(
        "reasoning-final",
        lambda c: (
            f"Based on the video frames, {c.seen()}. The most likely action is **{c.L}. {c.T}**."
        ),
    ),
    P(
        "reasoning-final",
        lambda c: (
            f"**Reasoning:**\n\n* The {c.noun} is the main object in view.\n* The hands are "
            f"{c.ing} it.\n\n**Answer:** **{c.L}. {c.T}**"
        ),
    ),
    P("text-letter", lambda c: f"The action being performed is **{c.T}** ({c.L})."),
    P("json-fenced", lambda c: f"```json\n{json.dumps({'answer': f'{c.L}. {c.T}'})}\n```"),
    P(
        "json-fenced",
        lambda c: (
            f'Here is my answer:\n\n```json\n{{\n  "answer": "{c.L}",\n  "reason": '
            f'"the hands are {c.ing} the {c.noun}"\n}}\n```'
        ),
    ),
    P("letter-colon", lambda c: f"{c.L}: {c.T}"),
    P("code", lambda c: f"`{c.L}`"),
    P("option-text", lambda c: f"**{c.T}**"),
    P(
        "list-reasoning",
        lambda c: f"* **{c.OL()}. {c.OT()}** — incorrect\n* **{c.L}. {c.T}** — correct",
    ),
    P(
        "restated",
        lambda c: (
            f"The answer is **{c.L}**.\n\n**{c.OL()}. {c.OT()}**\nNot what the hands do.\n\n"
            f"**{c.OL(1)}. {c.OT(1)}**\nThe {c.noun} is not moved that way."
        ),
    ),
    N("no-answer", lambda c: f"{c.OL()}: {c.OT()} ❌\n{c.L}: {c.T} ✅\n{c.OL(1)}: {c.OT(1)} ❌"),
    N(
        "hedge",
        lambda c: (
            "The provided frames don't show enough of the action to select one option with "
            "certainty."
        ),
    ),
    N("two-letters", lambda c: f"**{c.L}** or **{c.OL()}**, depending on what happens next."),
    N("negation", lambda c: f"None of the options ({c.L}-{c.OL(3)}) match the frames."),
    N("contradiction", lambda c: f"**{c.L}. {c.OT()}**"),
]

QWEN2_VL = [
    P("bare-letter", lambda c: c.L),
    P("letter-text", lambda c: f"{c.L}. {c.T}"),
    P("letter-text", lambda c: f"{c.L}.{c.T}"),
    P("preamble", lambda c: f"The person is {c.ing} the {c.noun}. So the answer is {c.L}."),
    P("preamble", lambda c: f"The answer is {c.L}."),
    P("full-width", lambda c: f"答案：{chr(ord(c.L) + 0xFEE0)}"),
    P("full-width", lambda c: f"{chr(ord(c.L) + 0xFEE0)}．{c.T}"),
    P("full-width", lambda c: f"（{c.L}）{c.T}"),
    P("full-width", lambda c: f"Answer：{c.L}"),
    P("lowercase", lambda c: f"{c.l}. {c.T}"),
    P("lowercase", lambda c: f"({c.l})"),
    P("boxed", lambda c: f"The action is {c.T}.\n\n$\\boxed{{{c.L}}}$"),
    P("option-text", lambda c: c.T),
    P("letter-text", lambda c: f"{c.L}. {c.T}\n"),
    P("trailing-letter", lambda c: f"The person is {c.ing} the {c.noun}. {c.L}"),
    P("hedged-choice", lambda c: f"Probably {c.L}."),
    N("negation", lambda c: f"Probably not {c.L}."),
    N("hedge", lambda c: f"The video shows a person in a kitchen handling a {c.noun}."),
    N("two-letters", lambda c: f"{c.L}/{c.OL()}"),
    N("out-of-range", lambda c: LETTERS[len(c.options)]),
    N("negation", lambda c: f"not {c.L}"),
]

LLAVA_VIDEO = [
    P("letter-text", lambda c: f"{c.L}. {c.T}"),
    P("letter-text", lambda c: f"{c.L}. {c.T}."),
    P("bare-letter", lambda c: f"{c.L}."),
    P("bare-letter", lambda c: c.L),
    P("letter-paren", lambda c: f"{c.L}) {c.T}"),
    P("bracketed", lambda c: f"[{c.L}]"),
    P("letter-colon", lambda c: f"{c.L}:"),
    P("lowercase", lambda c: f"{c.l}) {c.T}"),
    P("lowercase", lambda c: c.l),
    P("letter-text", lambda c: f"{c.L}. {c.T}, {c.L}. {c.T}"),  # a repeated answer
    P("letter-text", lambda c: f"{c.L}. {c.T}<|im_end|>"),
    N("no-answer", lambda c: f"The person is {c.ing} the"),  # cut by max_new_tokens
    N("no-answer", lambda c: f"A person is {c.ing} a {c.noun} in the kitchen."),
    N("two-letters", lambda c: f"{c.L}. {c.T}, {c.OL()}. {c.OT()}"),
    N("out-of-range", lambda c: f"{LETTERS[len(c.options) + 1]}. {c.T}"),
    N("no-answer", lambda c: ""),
]

LLAVA_ONEVISION = [
    P("bare-letter", lambda c: c.L),
    P("letter-text", lambda c: f"{c.L}. {c.T}"),
    P("preamble", lambda c: f"Answer: {c.L}"),
    P("bracketed", lambda c: f"({c.L})"),
    P("lowercase", lambda c: f"Answer: {c.l}"),
    P("option-text", lambda c: f"{c.T[0].upper()}{c.T[1:]}."),
    P("preamble", lambda c: f"I think {c.L}."),
    N("negation", lambda c: f"I think not {c.L}."),
    N("no-answer", lambda c: f"I am {c.ing} the {c.noun}."),
    N("hedge", lambda c: "I'm not sure."),
    N("negation", lambda c: f"Not {c.L}."),
]

INTERNVL = [
    P("bare-letter", lambda c: c.L),
    P("letter-text", lambda c: f"{c.L}. {c.T}"),
    P("bracketed", lambda c: f"({c.L}) {c.T}"),
    P("preamble", lambda c: f"The answer is {c.L}."),
    P("preamble", lambda c: f"The answer is ({c.L}) {c.T}."),
    P("preamble", lambda c: f"Based on the video, the correct option is {c.L}."),
    P("letter-colon", lambda c: f"{c.L}: {c.T}"),
    P("option-word", lambda c: f"Option {c.L}."),
    P("option-word", lambda c: f"Option ({c.L}) {c.T}"),
    P("lowercase", lambda c: f"answer: ({c.l})"),
    P("text-letter", lambda c: f"{c.T} ({c.L})"),
    P(
        "reasoning-final",
        lambda c: (
            f"The frames show that {c.seen()}. Among the options, {c.L} is the correct answer."
        ),
    ),
    N("two-letters", lambda c: f"The answer is {c.L} or {c.OL()}."),
    N("negation", lambda c: f"The answer is not {c.L}."),
    N("hedge", lambda c: f"It could be {c.L}, but I cannot be sure from these frames."),
    N("contradiction", lambda c: f"({c.L}) {c.OT()}"),
]

REASONING = [  # QVQ / R1-style: thinking first, then a tagged or boxed answer
    P(
        "tag",
        lambda c: (
            f"<think>The hands are near the {c.noun}. Option {c.OL()} would need "
            f"{c.OT()}, which I don't see. {c.L} fits.</think>\n<answer>{c.L}</answer>"
        ),
    ),
    P(
        "tag",
        lambda c: (
            f"<think>\nFrames 1-3: the {c.noun}. Frames 4-8: {c.ing} it.\n</think>\n\n"
            f"<answer>{c.L}. {c.T}</answer>"
        ),
    ),
    P(
        "boxed",
        lambda c: (
            f"Let me analyse the frames step by step. {c.seen().capitalize()}. Options "
            f"{c.OL()} and {c.OL(1)} involve other actions.\n\nThe final answer is $\\boxed{{{c.L}}}$."
        ),
    ),
    P(
        "final-wins",
        lambda c: (
            f"Hmm, is it {c.OL()}? The {c.noun} moves, but wait, {c.seen()}. So it is not {c.OL()}."
            f"\n\nFinal answer: {c.L}. {c.T}"
        ),
    ),
    P(
        "final-wins",
        lambda c: (
            f"First I thought the answer is {c.OL()}, but the last frames show me {c.ing} the "
            f"{c.noun}. Correcting myself: the answer is {c.L}."
        ),
    ),
    P(
        "reasoning-final",
        lambda c: (
            f"Step 1: identify the object: the {c.noun}.\nStep 2: identify the motion: {c.ing}.\n"
            f"Step 3: match with the options: {c.T} is option {c.L}.\n\nAnswer: {c.L}"
        ),
    ),
    N(
        "hedge",
        lambda c: (
            f"<think>I can't see the hands clearly. It might be {c.L} or {c.OL()}.</think>\n"
            "<answer>unclear</answer>"
        ),
    ),
    N("two-letters", lambda c: f"The final answer is $\\boxed{{{c.L}}}$ or $\\boxed{{{c.OL()}}}$."),
    N(
        "negation",
        lambda c: f"<think>The {c.noun} is not moved.</think>\n<answer>not {c.L}</answer>",
    ),
    N(
        "no-answer",
        lambda c: f"<think>Let me look at the frames. The {c.noun} is on the counter and the hand",
    ),  # cut off while thinking
]

FAMILIES: dict[str, list] = {
    "gpt-4o-structured": GPT4O_STRUCTURED,
    "gpt-4o": GPT4O,
    "claude": CLAUDE,
    "gemini": GEMINI,
    "qwen2-vl": QWEN2_VL,
    "llava-video": LLAVA_VIDEO,
    "llava-onevision": LLAVA_ONEVISION,
    "internvl": INTERNVL,
    "reasoning": REASONING,
}
ROUNDS = 4  # every template of every family, this many times on fresh questions


def _special_cases(rng: random.Random) -> list[dict]:
    """Replies that need a particular question: letters that are English words (``A``, ``I``),
    long option lists (two-stage questions), option texts that contain one another."""
    rows = []

    def add(family, case, reply, expected, kind):
        rows.append({"family": family, "options": case.options, "reply": reply,
                     "expected": expected, "kind": kind})  # fmt: skip

    for _ in range(2):
        a = make_case(rng, 5, index=0)  # the answer is A: the article trap
        add("claude", a, f"I think the answer is A. {a.T}.", "A", "article-letter")
        add("qwen2-vl", a, "a", "A", "article-letter")
        add("llava-video", a, f"a. {a.T}", "A", "article-letter")
        add("internvl", a, "(a)", "A", "article-letter")
        add("gpt-4o", a, f"The answer is A, because {a.seen()}.", "A", "article-letter")
        add("gemini", a, f"**A**\n\nA person is {a.ing} the {a.noun}.", "A", "article-letter")
        add("qwen2-vl", a, f"A person is {a.ing} the {a.noun}.", None, "no-answer")
        add("gpt-4o", a, f"It is a {a.noun} being handled.", None, "no-answer")
        add("claude", a, f"I see a hand and a {a.noun}. It is hard to say more.", None, "hedge")
        add("internvl", a, f"The answer is a {a.ing} action.", None, "no-answer")
        ten = make_case(rng, 10, index=8)  # the answer is I (two-stage, ten options)
        add("qwen2-vl", ten, "I", "I", "article-letter")
        add("llava-video", ten, f"I. {ten.T}", "I", "article-letter")
        add("gpt-4o", ten, f"The correct answer is I. {ten.T}.", "I", "article-letter")
        add("claude", ten, f"I think it's I ({ten.T}).", "I", "article-letter")
        add("gemini", ten, f"I think the person is {ten.ing} the {ten.noun}.", None, "no-answer")
        add("internvl", ten, f"I am not sure whether it is I or {LETTERS[ten.other()]}.", None,
            "two-letters")  # fmt: skip
        twenty = make_case(rng, 20)
        add("llava-video", twenty, f"{twenty.L}. {twenty.T}", twenty.L, "letter-text")
        add("gpt-4o-structured", twenty, json.dumps({"answer": f"{twenty.L}. {twenty.T}"}),
            twenty.L, "json")  # fmt: skip
        add("qwen2-vl", twenty, "Z", None, "out-of-range")
    # option texts where one contains another: the reply must name its own exactly
    nested = Case(["wash", "wash cup", "rinse cup", "dry cup", "put down cup"], 1, "wash",
                  "cup", rng)  # fmt: skip
    add("gpt-4o", nested, "B. wash cup", "B", "letter-text")
    add("gpt-4o", nested, "A. wash cup", None, "contradiction")
    add("gemini", nested, "**wash cup**", "B", "option-text")
    add("claude", nested, "The answer is A (wash).", "A", "letter-text")
    # options enumerated without a choice
    listed = make_case(rng, 5)
    add("claude", listed, "The options are:\n\n" + listed.listing() + "\n\nI can't tell which "
        "one from these frames.", None, "hedge")  # fmt: skip
    add("qwen2-vl", listed, "\n".join(f"{LETTERS[i]}. {t}" for i, t in enumerate(listed.options)),
        None, "no-answer")  # fmt: skip
    add("gpt-4o", listed, "The options are:\n\n" + listed.listing() + f"\n\nThe answer is "
        f"**{listed.L}. {listed.T}**.", listed.L, "restated")  # fmt: skip
    # refusals
    for family in ("gpt-4o", "claude", "gemini"):
        case = make_case(rng, 5)
        add(family, case, "I'm sorry, I can't help with that.", None, "no-answer")
    return rows


def corpus() -> list[dict]:
    """Every row, in a fixed order."""
    rng = random.Random(SEED)
    rows = []
    for _ in range(ROUNDS):
        for family, templates in FAMILIES.items():
            for kind, make, positive in templates:
                case = make_case(rng, rng.choice((5, 5, 5, 5, 10)))
                reply = make(case)
                rows.append(
                    {"family": family, "options": case.options, "reply": reply,
                     "expected": case.L if positive else None, "kind": kind}
                )  # fmt: skip
    rows.extend(_special_cases(rng))
    return rows


def corpus_bytes() -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in corpus()).encode()


if __name__ == "__main__":
    OUT.write_bytes(corpus_bytes())
    rows = corpus()
    negatives = sum(row["expected"] is None for row in rows)
    print(f"wrote {len(rows)} replies ({negatives} negatives) to {OUT}")
