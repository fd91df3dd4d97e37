"""What answers a window: the specialist, any ``eval`` adapter, or the ground truth (oracle).

One small interface, :class:`WindowModel`: it names the frame views it wants (frames per
window, size) and turns a batch of windows and their frames into :class:`Answer` s: the best
label and log-probabilities of the labels it scored (every behaviour when it can; the chosen
one alone when a model only writes text). The modes of the issue:

* ``specialist``: the built-in specialist's ranking over its action vocabulary;
* ``choice``: multiple choice over every behaviour with an ``eval`` adapter (26 at most);
* ``two-stage``: the specialist's top-k behaviours of the window as the options;
* ``chunks``: option likelihood over all behaviours, asked in chunks of at most 26 (adapters
  that return per-option scores: ``llavaction --scoring text``);
* ``open``: free narration, mapped to (verb, noun) by the open-vocabulary mapper, raw text kept;
* ``oracle``: the true label at the window's centre frame (optionally shifted), to check the
  pipeline and to see the best any model can do at a window size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from verbnoun.annotate.metrics import BACKGROUND
from verbnoun.annotate.vocabulary import Behaviours
from verbnoun.annotate.windows import View, Window
from verbnoun.errors import VerbnounError

MODES = ("specialist", "choice", "two-stage", "chunks", "open", "oracle")
MAX_OPTIONS = 26


@dataclass
class Answer:
    """A window's answer: best label, log-probabilities by label, raw text when there is one."""

    label: str
    scores: dict[str, float]
    raw: str | None = None
    extra: dict = field(default_factory=dict)


class WindowModel(Protocol):
    name: str
    views: dict[str, View]

    def settings(self) -> dict: ...

    def answer(self, windows: Sequence[Window], frames: Sequence[dict]) -> list[Answer]: ...


def _log_softmax(values: Sequence[float]) -> list[float]:
    array = np.asarray(values, dtype=np.float64)
    array = array - np.logaddexp.reduce(array)
    return [round(float(x), 4) for x in array]


def _answer(labels: Sequence[str], values: Sequence[float], **extra) -> Answer:
    logp = _log_softmax(values)
    best = int(np.argmax(logp))
    return Answer(labels[best], dict(zip(labels, logp, strict=True)), **extra)


class SpecialistModel:
    """The built-in specialist: ``log p(verb) + log p(noun) + log p(action)`` per behaviour."""

    name = "specialist"

    def __init__(self, model_dir, behaviours: Behaviours) -> None:
        import torch

        from verbnoun.train.specialist import SpecialistSettings, load_specialist

        self.model_dir = model_dir
        self.net, self.config = load_specialist(model_dir)
        settings = SpecialistSettings(**self.config["settings"])
        self.views = {"specialist": (settings.frames, settings.size)}
        known = {a: i for i, a in enumerate(self.config["actions"])}
        self.labels = [label for label in behaviours.labels if label in known]
        if not self.labels:
            raise VerbnounError(
                f"{model_dir}: the specialist knows none of the behaviours of {behaviours.source}"
            )
        from verbnoun.data.ek100 import parse_action_id

        pairs = [parse_action_id(label) for label in self.labels]
        self._verbs = torch.tensor([p[0] for p in pairs])
        self._nouns = torch.tensor([p[1] for p in pairs])
        self._actions = torch.tensor([known[label] for label in self.labels])

    def settings(self) -> dict:
        from pathlib import Path

        from verbnoun.runs import checkpoint_fingerprint

        folder = Path(self.model_dir)
        return {"specialist": str(folder), "fingerprint": checkpoint_fingerprint(folder)}

    def scores(self, frames: Sequence[dict]) -> np.ndarray:
        """``(windows, labels)`` unnormalised log-scores."""
        import torch

        clips = torch.from_numpy(np.stack([f["specialist"] for f in frames]))
        with torch.no_grad():
            verb, noun, action = (x.log_softmax(-1) for x in self.net(clips))
        total = verb[:, self._verbs] + noun[:, self._nouns] + action[:, self._actions]
        return total.numpy()

    def answer(self, windows: Sequence[Window], frames: Sequence[dict]) -> list[Answer]:
        return [_answer(self.labels, row) for row in self.scores(frames)]


def window_question(window: Window, labels: Sequence[str], texts: Sequence[str], part: str = ""):
    """A multiple-choice question about a window (no correct option: ``answer_index`` -1)."""
    from verbnoun.bench.questions import Option, Question

    participant = window.video_id.partition("_")[0]
    options = tuple(
        Option(text=t, action_id=label, source="annotate", text_source="vocabulary")
        for label, t in zip(labels, texts, strict=True)
    )
    return Question(
        id=window.id + part, video_id=window.video_id, participant_id=participant,
        start=round(window.start, 6), stop=round(window.stop, 6), options=options,
        answer_index=-1, narration="", verb_class=None, noun_class=None, action_class=-1,
    )  # fmt: skip


class AdapterModel:
    """An ``eval`` adapter asked multiple-choice questions about each window."""

    def __init__(
        self,
        adapter: Any,
        behaviours: Behaviours,
        *,
        mode: str = "choice",
        frames: int = 8,
        size: int | None = None,
        time_instruction: bool = True,
        specialist: SpecialistModel | None = None,
        top_k: int = 5,
        parser: str = "strict",
    ) -> None:
        from verbnoun.interpret.parsing import get_parser

        if mode not in ("choice", "two-stage", "chunks"):
            raise VerbnounError(f"unknown mode {mode!r} for a multiple-choice model")
        if mode == "choice" and len(behaviours) > MAX_OPTIONS:
            raise VerbnounError(
                f"{len(behaviours)} behaviours are more options than letters ({MAX_OPTIONS}): "
                "use --mode two-stage (a specialist's top-k) or --mode chunks"
            )
        if mode == "two-stage" and specialist is None:
            raise VerbnounError("--mode two-stage needs --specialist DIR")
        if mode == "two-stage" and not 2 <= top_k <= MAX_OPTIONS:
            raise VerbnounError(f"--top-k must be between 2 and {MAX_OPTIONS}, got {top_k}")
        if len(behaviours) < 2:
            raise VerbnounError("multiple choice needs at least two behaviours")
        self.adapter, self.behaviours, self.mode = adapter, behaviours, mode
        self.frames, self.size, self.time_instruction = frames, size, time_instruction
        self.specialist, self.top_k, self.parser_name = specialist, top_k, parser
        self.parse = get_parser(parser)
        self.name = adapter.name
        self.text_of = dict(zip(behaviours.labels, behaviours.option_texts, strict=True))
        self.views: dict[str, View] = {}
        if adapter.needs_frames:
            self.views["model"] = (frames, size)
        if specialist is not None and mode == "two-stage":
            self.views.update(specialist.views)

    def settings(self) -> dict:
        return {
            "adapter": self.adapter.name, "adapter_settings": self.adapter.settings(),
            "mode": self.mode, "frames": self.frames, "size": self.size,
            "time_instruction": self.time_instruction, "parser": self.parser_name,
            "top_k": self.top_k if self.mode == "two-stage" else None,
            "specialist": self.specialist.settings() if self.mode == "two-stage" else None,
        }  # fmt: skip

    def _option_sets(self, frames: Sequence[dict]) -> list[list[list[str]]]:
        labels = list(self.behaviours.labels)
        if self.mode == "choice":
            return [[labels] for _ in frames]
        if self.mode == "chunks":
            parts = math.ceil(len(labels) / MAX_OPTIONS)
            size = math.ceil(len(labels) / parts)
            chunks = [labels[i : i + size] for i in range(0, len(labels), size)]
            if len(chunks[-1]) < 2:  # a question needs two options
                chunks[-2:] = [chunks[-2][:-1], [chunks[-2][-1], *chunks[-1]]]
            return [chunks for _ in frames]
        assert self.specialist is not None
        ranked = np.argsort(-self.specialist.scores(frames), axis=1, kind="stable")
        top = min(self.top_k, len(self.specialist.labels))
        return [[[self.specialist.labels[i] for i in row[:top]]] for row in ranked]

    def answer(self, windows: Sequence[Window], frames: Sequence[dict]) -> list[Answer]:
        from verbnoun.evaluate.adapters import Request

        option_sets = self._option_sets(frames)
        requests, owners = [], []
        for k, (window, clip, sets) in enumerate(zip(windows, frames, option_sets, strict=True)):
            for part, labels in enumerate(sets):
                suffix = f"#{part}" if len(sets) > 1 else ""
                q = window_question(window, labels, [self.text_of[x] for x in labels], suffix)
                prompt = q.prompt(self.frames, time_instruction=self.time_instruction)
                requests.append(Request(q, prompt, q.task(), clip.get("model")))
                owners.append(k)
        replies = self.adapter.answer(requests)
        if len(replies) != len(requests):
            raise VerbnounError(
                f"model {self.name!r} returned {len(replies)} answers for {len(requests)} windows"
            )
        merged: list[tuple[list[str], list[float], list[str]]] = [([], [], []) for _ in windows]
        for request, reply, k in zip(requests, replies, owners, strict=True):
            labels = [o.action_id for o in request.question.options]
            merged[k][2].append(reply.raw)
            if reply.scores is not None:
                merged[k][0].extend(labels)
                merged[k][1].extend(float(s) for s in reply.scores)
                continue
            if self.mode == "chunks":
                raise VerbnounError(
                    f"--mode chunks needs per-option scores; model {self.name!r} gave none "
                    "(llavaction: --scoring text or letters)"
                )
            choice = self.parse(reply.raw, request.question.option_texts).index
            if choice is not None:
                merged[k][0].append(labels[choice])
                merged[k][1].append(0.0)
        answers = []
        for labels, values, raws in merged:
            raw = " | ".join(raws)
            if not labels:
                answers.append(Answer(BACKGROUND, {}, raw=raw, extra={"unparsed": True}))
            else:
                answers.append(_answer(labels, values, raw=raw))
        return answers


class OpenModel:
    """Free narration per window, mapped to a (verb, noun) action by the open-vocab mapper."""

    def __init__(self, adapter: Any, mapper: Any, *, frames: int = 8, size: int | None = None,
                 time_instruction: bool = True) -> None:  # fmt: skip
        self.adapter, self.mapper = adapter, mapper
        self.frames, self.size, self.time_instruction = frames, size, time_instruction
        self.name = adapter.name
        self.views: dict[str, View] = {"model": (frames, size)} if adapter.needs_frames else {}

    def settings(self) -> dict:
        return {"adapter": self.adapter.name, "adapter_settings": self.adapter.settings(),
                "mode": "open", "frames": self.frames, "size": self.size,
                "time_instruction": self.time_instruction, "mapper": self.mapper.settings()}  # fmt: skip

    def answer(self, windows: Sequence[Window], frames: Sequence[dict]) -> list[Answer]:
        from verbnoun.bench import prompts
        from verbnoun.evaluate.adapters import Request

        requests = []
        for window, clip in zip(windows, frames, strict=True):
            q = window_question(window, ["0", "1"], ["-", "--"])  # a carrier: no options shown
            duration = q.duration if self.time_instruction else None
            turn = prompts.user_turn(prompts.DIRECT_NARRATION, duration=duration,
                                     n_frames=self.frames)  # fmt: skip
            requests.append(
                Request(q, prompts.chat_prompt(turn), prompts.DIRECT_NARRATION, clip.get("model"))
            )
        replies = self.adapter.answer(requests)
        mappings = self.mapper.map_many([r.raw for r in replies])
        answers = []
        for reply, mapping in zip(replies, mappings, strict=True):
            label = mapping.action_id or BACKGROUND
            extra = {"answer": mapping.text, "method": mapping.method}
            answers.append(Answer(label, {label: 0.0} if label else {}, raw=reply.raw, extra=extra))
        return answers


class OracleModel:
    """The true label at each window's centre frame, ``shift`` frames later (negative: earlier)."""

    name = "oracle"

    def __init__(self, truth: dict[str, list[str]], source: str, shift: int = 0) -> None:
        self.views: dict[str, View] = {}  # needs no frames
        self.truth, self.source, self.shift = truth, source, shift

    def settings(self) -> dict:
        return {"truth": self.source, "shift_frames": self.shift}

    def answer(self, windows: Sequence[Window], frames: Sequence[dict]) -> list[Answer]:
        answers = []
        for window in windows:
            labels = self.truth.get(window.video_id)
            if labels is None:
                raise VerbnounError(f"{self.source}: no ground truth for video {window.video_id}")
            at = min(max(window.centre + self.shift, 0), len(labels) - 1)
            answers.append(Answer(labels[at], {labels[at]: 0.0}))
        return answers
