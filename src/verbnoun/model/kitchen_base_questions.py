"""The questions the kitchen base trains and is gated on: pure functions of a seeded
:class:`random.Random` and the kitchen's vocabulary (no model, no tensors).

:func:`text_question` (and :func:`text_rows`) make stage B's text-only multiple choice, the
statement of the clip standing where the video goes; :func:`video_question` makes stage D's MQA
about a clip; :func:`visual_turn` is stage C's direct-narration turn; :func:`parse_narration`
reads a narration back into verb and noun classes. Each returns the same output for the same
generator state, so the build stays deterministic.
"""

from __future__ import annotations

import random

from verbnoun.bench import prompts
from verbnoun.data.kitchen import NOUNS, VERBS
from verbnoun.model.kitchen_base_settings import STATEMENT, BaseSettings


def narration_words(verb: int, noun: int, rng: random.Random) -> str:
    """A narration of the action with a random synonym of the verb (``pick up red bowl``)."""
    word = rng.choice(VERBS[verb].instances).replace("-", " ")
    return f"{word} {NOUNS[noun].colour} {NOUNS[noun].shape}"


def kitchen_texts() -> list[str]:
    """Every narration the kitchen can say (each verb synonym with each noun)."""
    return [
        f"{word.replace('-', ' ')} {n.colour} {n.shape}"
        for v in VERBS
        for word in v.instances
        for n in NOUNS
    ]


def distractor_actions(
    verb: int, noun: int, count: int, rng: random.Random
) -> list[tuple[int, int]]:
    """``count`` distinct actions other than ``(verb, noun)``: each at random, or sharing the
    answer's verb, or its noun (a third each), so that only the whole statement decides."""
    chosen: list[tuple[int, int]] = []
    while len(chosen) < count:
        kind = rng.randrange(3)
        v = verb if kind == 1 else rng.randrange(len(VERBS))
        n = noun if kind == 2 else rng.randrange(len(NOUNS))
        if (v, n) != (verb, noun) and (v, n) not in chosen:
            chosen.append((v, n))
    return chosen


def text_question(
    rng: random.Random, num_options: int, prior_probability: float, narration_fraction: float,
    frames: int = 4, *, compact: bool = False, exact: bool = False,
) -> tuple[str, str, list[str], int]:  # fmt: skip
    """One stage-B sample: ``(user turn, answer, option texts, answer index)``. The statement
    (:data:`STATEMENT`, a synonym of the answer's narration) stands where ``<image>`` goes, then
    the time instruction and the MQA task (with two prior actions at ``prior_probability``), or
    the direct-narration task (``narration_fraction``; index -1, the answer is a narration).
    Warm-up forms of the same question: ``compact``, the statement and the options only (the
    same pointing over a shorter distance, at a third of the cost); ``exact``, the statement in
    the answer's own words (matching without synonyms)."""
    verb, noun = rng.randrange(len(VERBS)), rng.randrange(len(NOUNS))
    statement = STATEMENT.format(narration=narration_words(verb, noun, rng))
    duration = rng.uniform(1.0, 3.5)
    if rng.random() < narration_fraction:
        head = f"{statement}\n{prompts.time_instruction(duration, frames)}"
        task = "" if compact else prompts.DIRECT_NARRATION
        return (statement if compact else head) + task, narration_words(verb, noun, rng), [], -1
    actions = [(verb, noun), *distractor_actions(verb, noun, num_options - 1, rng)]
    rng.shuffle(actions)
    index = actions.index((verb, noun))
    texts = [narration_words(v, n, rng) for v, n in actions]
    answer = prompts.mqa_answer(index, texts[index])
    if exact:
        statement = STATEMENT.format(narration=texts[index])
    if compact:
        return f"{statement}\n{prompts.format_options(texts)}", answer, texts, index
    if rng.random() < prior_probability:
        prior = [
            (rng.uniform(3.0, 9.0), narration_words(*distractor_actions(verb, noun, 1, rng)[0], rng)),
            (rng.uniform(0.5, 3.0), narration_words(*distractor_actions(verb, noun, 1, rng)[0], rng)),
        ]  # fmt: skip
        task = prompts.mqa_prior_actions_task(texts, prior)
    else:
        task = prompts.mqa_task(texts)
    head = f"{statement}\n{prompts.time_instruction(duration, frames)}"
    return head + task, answer, texts, index


def text_rows(
    rng: random.Random, size: int, settings: BaseSettings, compact: float = 0.0,
    exact: float = 0.0,
) -> list[tuple[str, str, list[str], int]]:  # fmt: skip
    """``size`` stage-B questions (:func:`text_question`), each compact with probability
    ``compact`` and exact with probability ``exact``."""
    return [
        text_question(rng, settings.num_options, settings.prior_probability,
                      settings.narration_fraction, settings.frames,
                      compact=rng.random() < compact, exact=rng.random() < exact)
        for _ in range(size)
    ]  # fmt: skip


def visual_turn(duration: float, frames: int) -> str:
    """The direct-narration user turn of a clip, as the trainer writes it."""
    return prompts.user_turn(prompts.DIRECT_NARRATION, duration=duration, n_frames=frames)


def parse_narration(text: str) -> tuple[int, int]:
    """Verb and noun class named by a narration (-1 where none is recognised)."""
    words = " " + " ".join(text.lower().replace("-", " ").split()) + " "
    verb = next(
        (i for i, v in enumerate(VERBS)
         for w in sorted(v.instances, key=len, reverse=True)
         if words.startswith(" " + w.replace("-", " ") + " ")),
        -1,
    )  # fmt: skip
    noun = next((i for i, n in enumerate(NOUNS) if f" {n.colour} {n.shape} " in words), -1)
    return verb, noun


def random_actions(verb: int, noun: int, count: int, rng: random.Random) -> list[tuple[int, int]]:
    """``count`` distinct kitchen actions other than ``(verb, noun)``, uniformly at random."""
    chosen: list[tuple[int, int]] = []
    while len(chosen) < count:
        action = (rng.randrange(len(VERBS)), rng.randrange(len(NOUNS)))
        if action != (verb, noun) and action not in chosen:
            chosen.append(action)
    return chosen


def video_question(
    rng: random.Random, verb: int, noun: int, duration: float, settings: BaseSettings
) -> tuple[str, str, list[str], int]:
    """One stage-D sample about a clip of ``(verb, noun)``: ``(user turn, answer, option texts,
    answer index)``, the turn as the trainer writes it (``<image>``, time instruction, the MQA
    task, with two prior actions at ``prior_probability``); random distractors, letter uniform."""
    actions = [(verb, noun), *random_actions(verb, noun, settings.num_options - 1, rng)]
    rng.shuffle(actions)
    index = actions.index((verb, noun))
    texts = [narration_words(v, n, rng) for v, n in actions]
    if rng.random() < settings.prior_probability:
        prior = [(offset, narration_words(*random_actions(verb, noun, 1, rng)[0], rng))
                 for offset in (rng.uniform(3.0, 9.0), rng.uniform(0.5, 3.0))]  # fmt: skip
        task = prompts.mqa_prior_actions_task(texts, prior)
    else:
        task = prompts.mqa_task(texts)
    turn = prompts.user_turn(task, duration=duration, n_frames=settings.frames)
    return turn, prompts.mqa_answer(index, texts[index]), texts, index
