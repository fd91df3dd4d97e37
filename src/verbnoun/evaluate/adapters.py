"""Model adapters: anything that answers a batch of multiple-choice questions about clips.

One protocol, :class:`Adapter`. An adapter receives :class:`Request` objects (the question, its
chat prompt and task text, and the sampled frames when it needs them) and returns one
:class:`Reply` per request with the raw text output. Parsing and scoring happen in the runner,
the same way for every adapter.

Baselines here need no frames: ``random`` (seeded), ``specialist`` (the option ranked highest by
a prediction file) and ``prior`` (the option whose action is most frequent in training: how much
of a benchmark is answerable blind).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from verbnoun.bench.prompts import letter
from verbnoun.bench.questions import Question


@dataclass
class Request:
    """One question to answer. ``frames``: uint8 RGB ``(N, H, W, 3)`` or ``None``."""

    question: Question
    prompt: str  # the full chat prompt (local models)
    task: str  # the task text with options (API models: the system prompt of SPEC 3)
    frames: Any = None
    extra: dict = field(default_factory=dict)  # bookkeeping the runner records with the answer


@dataclass
class Reply:
    """A model's raw answer; ``scores`` per option when the adapter computes them.

    Endpoint adapters add the token ``usage`` (``prompt_tokens``, ``completion_tokens``) and,
    for a question they could not get answered, ``failure`` (``kind``, ``status``,
    ``attempts``, ``waited``, ``message``; kind ``refused`` stops the run): then ``raw`` is
    empty and means nothing."""

    raw: str
    scores: list[float] | None = None
    extra: dict = field(default_factory=dict)
    usage: dict | None = None
    failure: dict | None = None


class Adapter(Protocol):
    """Answers batches of questions."""

    name: str
    needs_frames: bool

    def settings(self) -> dict:
        """Everything about the adapter that can change a result (saved in config.json)."""
        ...

    def answer(self, requests: Sequence[Request]) -> list[Reply]: ...


class RandomAdapter:
    """Picks a letter uniformly at random, seeded per question (order-independent)."""

    name = "random"
    needs_frames = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def settings(self) -> dict:
        return {"seed": self.seed}

    def answer(self, requests: Sequence[Request]) -> list[Reply]:
        replies = []
        for request in requests:
            rng = random.Random(f"llavaction-random:{self.seed}:{request.question.id}")
            replies.append(Reply(letter(rng.randrange(len(request.question.options)))))
        return replies


class SpecialistAdapter:
    """Picks the option whose action the specialist ranks highest (top-1 among the options).

    Options absent from the specialist's ranking rank last; when none is ranked the answer is
    empty, which the runner counts as unparsed rather than guessing.
    """

    name = "specialist"
    needs_frames = False

    def __init__(self, ranked_by_id: dict[str, list[str]], source: str) -> None:
        self.ranked_by_id = ranked_by_id
        self.source = source

    def settings(self) -> dict:
        return {"predictions": self.source}

    def answer(self, requests: Sequence[Request]) -> list[Reply]:
        replies = []
        for request in requests:
            ranked = self.ranked_by_id.get(request.question.id, [])
            position = {action: rank for rank, action in enumerate(ranked)}
            best = min(
                range(len(request.question.options)),
                key=lambda i: (position.get(request.question.options[i].action_id, len(ranked)), i),
            )
            known = request.question.options[best].action_id in position
            replies.append(Reply(letter(best) if known else ""))
        return replies


class PriorAdapter:
    """Picks the option whose action is most frequent in the training split (ties: first)."""

    name = "prior"
    needs_frames = False

    def __init__(self, frequency: dict[str, int], source: str) -> None:
        self.frequency = frequency
        self.source = source

    def settings(self) -> dict:
        return {"frequencies": self.source}

    def answer(self, requests: Sequence[Request]) -> list[Reply]:
        replies = []
        for request in requests:
            options = request.question.options
            counts = [self.frequency.get(o.action_id, 0) for o in options]
            best = max(range(len(options)), key=lambda i: (counts[i], -i))
            replies.append(Reply(letter(best), scores=[float(c) for c in counts]))
        return replies
