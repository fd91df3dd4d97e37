"""Model adapters: anything that answers a batch of multiple-choice questions about clips.

One protocol, :class:`Adapter`. An adapter receives :class:`Request` objects (the question, its
chat prompt and task text, and the sampled frames when it needs them) and returns one
:class:`Reply` per request with the raw text output. Parsing and scoring happen in the runner,
the same way for every adapter.

What an adapter can do beyond ``answer`` is declared, never probed: its ``abilities``
(:class:`Abilities`: streaming replies, transport settings and counters, showing what it sent).
How it is found by name, its settings and what it needs are its :class:`AdapterSpec`, looked up
in :mod:`verbnoun.evaluate.registry`.

Baselines here need no frames: ``random`` (seeded), ``specialist`` (the option ranked highest by
a prediction file) and ``prior`` (the option whose action is most frequent in training: how much
of a benchmark is answerable blind).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from verbnoun.bench.prompts import letter
from verbnoun.bench.questions import Question
from verbnoun.errors import VerbnounError


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


@dataclass(frozen=True)
class Abilities:
    """What an adapter can do beyond ``answer`` (each ability names the member it promises)."""

    streams: bool = False  # answer_each(requests): (request, reply) pairs as each reply arrives
    transport: bool = False  # transport_settings(): how requests travel (retries, timeouts)
    stats: bool = False  # stats: a TransportStats (requests sent, retrying now)
    shows_prompt: bool = False  # sent(request): what the model was given, for prompts.jsonl


NO_ABILITIES = Abilities()


class Adapter(Protocol):
    """Answers batches of questions."""

    name: str
    needs_frames: bool
    abilities: Abilities

    def settings(self) -> dict:
        """Everything about the adapter that can change a result (saved in config.json)."""
        ...

    def answer(self, requests: Sequence[Request]) -> list[Reply]: ...


class Streaming(Adapter, Protocol):
    """An adapter with ``abilities.streams``."""

    def answer_each(self, requests: Iterable[Request]) -> Iterator[tuple[Request, Reply]]: ...


class ShowsPrompt(Adapter, Protocol):
    """An adapter with ``abilities.shows_prompt``."""

    def sent(self, request: Request) -> dict: ...


def abilities_of(adapter: object) -> Abilities:
    """The adapter's declared :class:`Abilities`. An adapter written before abilities were
    declared (no ``abilities``) is read from the members it has, so it keeps working."""
    declared = getattr(adapter, "abilities", None)
    if isinstance(declared, Abilities):
        return declared
    return Abilities(
        streams=callable(getattr(adapter, "answer_each", None)),
        transport=callable(getattr(adapter, "transport_settings", None)),
        stats=getattr(adapter, "stats", None) is not None,
        shows_prompt=callable(getattr(adapter, "sent", None)),
    )


@dataclass(frozen=True)
class DataSettings:
    """The run's data set, which some adapters read (``prior``: training frequencies;
    ``specialist``: row keys): an EK100 folder or description (``annotations``), or a
    description whose paths are relative to ``annotations`` (``dataset``)."""

    annotations: Path | None = None
    dataset: Path | None = None

    def open(self):
        """The open data set, or ``None`` when neither is given."""
        from verbnoun.data.dataset import open_dataset

        return open_dataset(self.dataset, self.annotations)


NEEDS = ("frames", "predictions", "annotations")
TEXT_ANSWERS = ("never", "always", "generate")  # generate: when its settings' mode is generate


@dataclass(frozen=True)
class AdapterSpec:
    """How an adapter is found by name and built.

    ``settings``: a frozen dataclass of the adapter's options; its fields take the options of
    the same name (``verbnoun eval --seed`` fills ``seed``), or the option ``options`` maps them
    to (``{"mode": "scoring"}``). ``needs``: what it reads besides the questions (of
    :data:`NEEDS`). ``text_answers``: whether it writes free text (``--open-vocab``): never,
    always, or with ``mode == "generate"``. ``build(settings, data)`` checks the settings and
    returns the adapter (``data``: the run's :class:`DataSettings`)."""

    name: str
    settings: type
    build: Callable[[Any, DataSettings], Adapter]
    needs: frozenset[str] = frozenset()
    text_answers: str = "never"
    options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(NEEDS)
        if unknown or self.text_answers not in TEXT_ANSWERS:
            raise ValueError(f"adapter {self.name!r}: unknown needs {sorted(unknown)} or "
                             f"text_answers {self.text_answers!r}")  # fmt: skip

    def writes_text(self, settings: Any) -> bool:
        if self.text_answers == "generate":
            return getattr(settings, "mode", None) == "generate"
        return self.text_answers == "always"


class RandomAdapter:
    """Picks a letter uniformly at random, seeded per question (order-independent)."""

    name = "random"
    needs_frames = False
    abilities = NO_ABILITIES

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
    empty, which the runner counts as unparsed rather than guessing. On a multi-select question
    each option also gets a score, minus its rank (the prediction files hold rankings, not
    probabilities: an option outside the ranking ranks last), so that ``--answer-set
    threshold`` and the multi-label mAP read the specialist's ranking.
    """

    name = "specialist"
    needs_frames = False
    abilities = NO_ABILITIES

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
            scores = None
            if request.question.multi_select:
                scores = [-float(position.get(o.action_id, len(ranked)))
                          for o in request.question.options]  # fmt: skip
            replies.append(Reply(letter(best) if known else "", scores=scores))
        return replies


class PriorAdapter:
    """Picks the option whose action is most frequent in the training split (ties: first)."""

    name = "prior"
    needs_frames = False
    abilities = NO_ABILITIES

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


@dataclass(frozen=True)
class RandomSettings:
    seed: int = 0  # seeds each question's draw


@dataclass(frozen=True)
class SpecialistSettings:
    predictions: Path | None = None  # a prediction file (ours or the release's)
    split: str = "validation"  # the split whose rows the file ranks


@dataclass(frozen=True)
class PriorSettings:
    """No options: the frequencies are the data set's training split."""


def _build_random(settings: RandomSettings, data: DataSettings) -> RandomAdapter:
    return RandomAdapter(settings.seed)


def _build_specialist(settings: SpecialistSettings, data: DataSettings) -> SpecialistAdapter:
    if settings.predictions is None:
        raise VerbnounError("--model specialist needs --predictions FILE")
    predictions = Path(settings.predictions)
    ranked = ranked_by_narration_id(predictions, data, settings.split)
    return SpecialistAdapter(ranked, predictions.name)


def _build_prior(settings: PriorSettings, data: DataSettings) -> PriorAdapter:
    source = data.open()
    if source is None:
        raise VerbnounError(
            "--model prior needs --annotations DIR or --dataset FILE.yaml (training frequencies)"
        )
    vocabulary = source.action_vocabulary(("train",))
    frequency = {a: vocabulary.frequency(a) for a in vocabulary.actions}
    name = Path(data.dataset or data.annotations).name  # type: ignore[arg-type]
    return PriorAdapter(frequency, f"{name}:train")


def ranked_by_narration_id(
    predictions: Path, data: DataSettings, split: str = "validation"
) -> dict[str, list[str]]:
    """Each segment's actions as a prediction file ranks them, by narration id (the file's
    CSV rows are mapped to ids through the data set, which must then be given)."""
    from verbnoun.bench.predictions import load_predictions

    folder = data.open()
    if folder is None:
        loaded = load_predictions(predictions)
        if loaded.format == "original":
            raise VerbnounError(
                f"{predictions}: keyed by CSV row; give --annotations DIR to map rows to ids"
            )
        return loaded.by_key
    actions = folder.action_classes()
    if actions is not None:  # single-label: action ids are class ids
        loaded = load_predictions(predictions, num_actions=len(actions))
    else:
        loaded = load_predictions(
            predictions, num_verbs=len(folder.verbs()), num_nouns=len(folder.nouns())
        )
    segments = folder.segments(split)
    loaded.check_fits(segments)  # a row or id outside the split: the file is for another CSV
    return {s.narration_id: loaded.ranked(s) for s in segments if loaded.key_of(s) in loaded.by_key}


RANDOM = AdapterSpec("random", RandomSettings, _build_random)
SPECIALIST = AdapterSpec(
    "specialist", SpecialistSettings, _build_specialist, needs=frozenset({"predictions"})
)
PRIOR = AdapterSpec("prior", PriorSettings, _build_prior, needs=frozenset({"annotations"}))
