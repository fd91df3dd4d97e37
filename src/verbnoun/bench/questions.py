"""Question records of an MQA benchmark and their JSONL file format.

One JSON object per line, keys in a fixed order, so that files compare byte for byte. A question
holds what every later stage needs: the segment (video, participant, start, stop), the options
(text and action id each, and where each distractor came from), the correct index, and what the
prompt renderer needs (duration and, when they qualify, the two previous actions).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from verbnoun.bench import prompts
from verbnoun.data.ek100 import parse_action_id, single_action_class
from verbnoun.errors import QuestionFileError
from verbnoun.fileio import atomic_write_bytes, read_jsonl, sha256_bytes

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Option:
    """One answer option. ``source``: ``ground_truth``, ``random``, ``specialist``,
    ``prior-hard:verb``, ``prior-hard:noun``, ``prior-hard:frequency`` or ``prior-grid:...``
    (:mod:`verbnoun.bench.prior_grid`); ``rank`` is the
    specialist's 1-based rank when known; ``text_source`` says where the text came from."""

    text: str
    action_id: str
    source: str
    text_source: str
    rank: int | None = None

    def to_dict(self) -> dict:
        data = {
            "text": self.text,
            "action_id": self.action_id,
            "source": self.source,
            "text_source": self.text_source,
        }
        if self.rank is not None:
            data["rank"] = self.rank
        return data


@dataclass(frozen=True)
class PriorAction:
    """A previous segment of the same video: its id, how long before this one it started, and
    what happened (narration and action id)."""

    id: str
    offset: float
    narration: str
    action_id: str


@dataclass(frozen=True)
class Question:
    """One multiple-choice question about one segment."""

    id: str
    video_id: str
    participant_id: str
    start: float
    stop: float
    options: tuple[Option, ...]
    answer_index: int  # -1: the truth is not among the options (two-stage recognition)
    narration: str
    verb_class: int | None  # None in single-label data sets
    noun_class: int | None
    prior_actions: tuple[PriorAction, ...] = ()
    action_class: int | None = None  # single-label data sets: the action class
    # multi-select questions (several labels per segment): every true action id, and the options
    # that carry one (ascending); empty for single-answer questions
    action_ids: tuple[str, ...] = ()
    answer_indices: tuple[int, ...] = ()

    @property
    def multi_select(self) -> bool:
        """True for a question about a segment with several labels: every true option counts."""
        return bool(self.action_ids)

    @property
    def true_action_ids(self) -> tuple[str, ...]:
        """Every true action id: ``action_ids``, or the one ``action_id``."""
        return self.action_ids or (self.action_id,)

    @property
    def correct_indices(self) -> tuple[int, ...]:
        """The options that are right: ``answer_indices``, or ``(answer_index,)`` when >= 0."""
        if self.multi_select:
            return self.answer_indices
        return (self.answer_index,) if self.answer_index >= 0 else ()

    @property
    def single_label(self) -> bool:
        """True for a single-label data set's question (no verb/noun split)."""
        return self.action_class is not None

    @property
    def duration(self) -> float:
        return round(self.stop - self.start, 6)

    @property
    def answer_letter(self) -> str:
        """The correct letter; empty when the truth is not among the options (two-stage)."""
        return prompts.letter(self.answer_index) if self.answer_index >= 0 else ""

    @property
    def action_id(self) -> str:
        """The ground truth's action id: ``"verb:noun"``, or the action class id alone."""
        if self.action_class is not None:
            return str(self.action_class)
        return f"{self.verb_class}:{self.noun_class}"

    @property
    def option_texts(self) -> list[str]:
        return [option.text for option in self.options]

    def task(
        self, *, with_prior_actions: bool = False, prior_texts: tuple[str, str] | None = None
    ) -> str:
        """The task text (SPEC 3.1); with the two previous actions when asked and available.

        ``prior_texts`` replaces the previous actions' narrations (older first), e.g. by the
        model's own earlier answers (sequential action prediction).
        """
        if self.multi_select:  # no prior-action form for multi-select questions
            return prompts.mqa_multi_task(self.option_texts)
        if with_prior_actions and self.prior_actions:
            older, newer = self.prior_actions
            texts = prior_texts or (older.narration, newer.narration)
            return prompts.mqa_prior_actions_task(
                self.option_texts, [(older.offset, texts[0]), (newer.offset, texts[1])]
            )
        return prompts.mqa_task(self.option_texts)

    def user_turn(self, n_frames: int, *, time_instruction: bool = True, **task_options) -> str:
        """The user message: ``<image>\\n`` + optional time instruction + task."""
        duration = self.duration if time_instruction else None
        return prompts.user_turn(self.task(**task_options), duration=duration, n_frames=n_frames)

    def prompt(self, n_frames: int, *, time_instruction: bool = True, **task_options) -> str:
        """The full qwen_1_5 chat prompt up to the assistant's answer."""
        return prompts.chat_prompt(
            self.user_turn(n_frames, time_instruction=time_instruction, **task_options)
        )

    def target(self) -> str:
        """The training target: ``C. open door``."""
        if self.answer_index < 0:
            raise ValueError(f"question {self.id} has no correct option")
        if self.multi_select:
            return prompts.mqa_multi_answer(self.answer_indices, self.option_texts)
        return prompts.mqa_answer(self.answer_index, self.options[self.answer_index].text)

    def to_dict(self) -> dict:
        data = {
            "id": self.id,
            "video_id": self.video_id,
            "participant_id": self.participant_id,
            "start": self.start,
            "stop": self.stop,
            "duration": self.duration,
            "narration": self.narration,
            "verb_class": self.verb_class,
            "noun_class": self.noun_class,
            "action_id": self.action_id,
            "answer_index": self.answer_index,
            "answer_letter": self.answer_letter,
        }
        if (
            self.multi_select
        ):  # keys only multi-select questions have: other files stay as they were
            data["answer_indices"] = list(self.answer_indices)
            data["action_ids"] = list(self.action_ids)
        data["options"] = [option.to_dict() for option in self.options]
        data["prior_actions"] = [
            {"id": p.id, "offset": p.offset, "narration": p.narration, "action_id": p.action_id}
            for p in self.prior_actions
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Question:
        options = tuple(_option(i, option) for i, option in enumerate(data["options"]))
        prior = tuple(_prior_action(i, p) for i, p in enumerate(data.get("prior_actions") or []))
        single = data["verb_class"] is None and data["noun_class"] is None
        action_class = None
        if single:
            action_class = single_action_class(str(data["action_id"]))
            if action_class is None:
                raise ValueError(f"action_id {data['action_id']!r} is not a class id")
        question = cls(
            id=str(data["id"]),
            video_id=str(data["video_id"]),
            participant_id=str(data["participant_id"]),
            start=float(data["start"]),
            stop=float(data["stop"]),
            options=options,
            answer_index=int(data["answer_index"]),
            narration=str(data["narration"]),
            verb_class=None if single else int(data["verb_class"]),
            noun_class=None if single else int(data["noun_class"]),
            prior_actions=prior,
            action_class=action_class,
            **_multi(data),
        )
        question.validate()
        return question

    def validate(self) -> None:
        """Raise ``ValueError`` unless the question is well formed."""
        if not 2 <= len(self.options) <= len(prompts.LETTERS):
            raise ValueError(f"{len(self.options)} options (need 2..26)")
        if not -1 <= self.answer_index < len(self.options):
            raise ValueError(f"answer_index {self.answer_index} outside the options")
        if self.multi_select:
            self._validate_multi()
        else:
            truth = [i for i, o in enumerate(self.options) if o.action_id == self.action_id]
            if truth != ([self.answer_index] if self.answer_index >= 0 else []):
                raise ValueError(
                    f"answer_index {self.answer_index} does not mark the action {self.action_id}"
                )
        if not (math.isfinite(self.start) and math.isfinite(self.stop)) or self.start < 0:
            raise ValueError(f"start {self.start} / stop {self.stop} must be finite and >= 0")
        if self.stop <= self.start:
            raise ValueError(f"stop {self.stop} is not after start {self.start}")
        if any(
            not isinstance(o.text, str) or not isinstance(o.action_id, str) for o in self.options
        ):
            raise ValueError("option text and action_id must be strings")
        ids = [o.action_id for o in self.options]
        if not self.single_label:
            for action in (*ids, self.action_id):
                parse_action_id(action)  # ValueError naming the malformed id
        if self.single_label and any(single_action_class(i) is None for i in ids):
            raise ValueError("a single-label question's options must have class ids as actions")
        if len(set(ids)) != len(ids):
            raise ValueError("two options share an action id")
        if len(set(self.option_texts)) != len(self.options):
            raise ValueError("two options share a text")
        if len(self.prior_actions) not in (0, 2):
            raise ValueError("prior_actions must hold 0 or 2 entries")

    def _validate_multi(self) -> None:
        """A multi-select question: ``answer_indices`` mark exactly the true options."""
        if len(set(self.action_ids)) != len(self.action_ids):
            raise ValueError("action_ids repeats an action")
        if self.action_ids[0] != self.action_id:
            raise ValueError(f"action_ids start with {self.action_ids[0]}, not {self.action_id}")
        truth = tuple(i for i, o in enumerate(self.options) if o.action_id in self.action_ids)
        if truth != self.answer_indices:
            raise ValueError(
                f"answer_indices {list(self.answer_indices)} do not mark the actions "
                f"{list(self.action_ids)} (options {list(truth)})"
            )
        if self.answer_index != (truth[0] if truth else -1):
            raise ValueError(f"answer_index {self.answer_index} is not the first true option")


OPTION_KEYS = ("text", "action_id", "source", "text_source")


def _option(index: int, data: object) -> Option:
    """An option from its JSON object; unknown or missing keys are named."""
    if not isinstance(data, dict):
        raise ValueError(f"option {index} is not an object")
    missing = [key for key in OPTION_KEYS if key not in data]
    unknown = sorted(set(data) - {*OPTION_KEYS, "rank"})
    problems = []
    if missing:
        problems.append(f"missing key(s) {missing}")
    if unknown:
        problems.append(f"unknown key(s) {unknown}")
    if problems:
        raise ValueError(f"option {index}: " + ", ".join(problems))
    wrong = [key for key in OPTION_KEYS if not isinstance(data[key], str)]
    if wrong:
        raise ValueError(f"option {index}: {', '.join(wrong)} must be text")
    rank = data.get("rank")
    if rank is not None and (type(rank) is not int or rank < 1):
        raise ValueError(f"option {index}: rank must be a positive integer, got {rank!r}")
    return Option(**data)


def _multi(data: dict) -> dict:
    """``action_ids`` and ``answer_indices`` of a multi-select question's record (both or none)."""
    if "action_ids" not in data and "answer_indices" not in data:
        return {}
    ids, indices = data.get("action_ids"), data.get("answer_indices")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ValueError("action_ids must be a non-empty list of action ids")
    if not isinstance(indices, list) or not all(type(i) is int for i in indices):
        raise ValueError("answer_indices must be a list of option indices")
    return {"action_ids": tuple(ids), "answer_indices": tuple(indices)}


def _prior_action(index: int, data: object) -> PriorAction:
    """A previous action from its JSON object, its fields checked."""
    if not isinstance(data, dict) or set(data) != {"id", "offset", "narration", "action_id"}:
        raise ValueError(f"prior action {index}: needs exactly id, offset, narration, action_id")
    offset = data["offset"]
    if type(offset) not in (int, float) or not math.isfinite(offset):
        raise ValueError(f"prior action {index}: offset must be a number, got {offset!r}")
    if not all(isinstance(data[key], str) for key in ("id", "narration", "action_id")):
        raise ValueError(f"prior action {index}: id, narration and action_id must be text")
    return PriorAction(**data)


def dumps(question: Question) -> str:
    """One JSONL line (no newline), deterministic."""
    return json.dumps(question.to_dict(), ensure_ascii=False, separators=(", ", ": "))


def questions_bytes(questions: Iterable[Question]) -> bytes:
    """The bytes of a question file (JSONL, one question a line)."""
    return "".join(dumps(q) + "\n" for q in questions).encode("utf-8")


def write_questions(path: str | Path, questions: Iterable[Question]) -> str:
    """Write questions as JSONL atomically; returns the file's sha256."""
    data = questions_bytes(questions)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def read_questions(path: str | Path) -> list[Question]:
    """Read a question file; a truncated or malformed line raises an error naming its line."""
    path = Path(path)
    questions: list[Question] = []
    seen: set[str] = set()
    for number, record in read_jsonl(path, error=QuestionFileError):
        try:
            question = Question.from_dict(record)
        except KeyError as error:
            raise QuestionFileError(
                path, f"bad question: missing key {error}", line=number
            ) from None
        except (AttributeError, TypeError, ValueError, IndexError) as error:
            raise QuestionFileError(path, f"bad question: {error}", line=number) from None
        if question.id in seen:
            raise QuestionFileError(path, f"duplicate question id {question.id!r}", line=number)
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise QuestionFileError(path, "no questions")
    return questions
