"""``verbnoun eval`` as a library call: settings in, a run folder out.

:func:`eval_job` turns the command line's flat options (the same names for the notebook API's
``lva.eval``) into an :class:`EvalJob` of small settings objects: the model's own settings (from
:mod:`verbnoun.evaluate.registry`), what the prompt and parser do
(:class:`~verbnoun.evaluate.runner.EvalSettings`), where frames come from, the data set, how the
run goes, and the optional two-stage and open-vocabulary settings. An unknown option is a
one-line error. :func:`run_eval` checks what can be checked before a model is loaded (the
open-vocabulary mapper, the model's settings), builds the adapter through the registry, writes
two-stage questions when asked, finds the frames and hands everything to
:func:`~verbnoun.evaluate.runner.run_evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from verbnoun.bench.two_stage import TwoStageSettings
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import DataSettings
from verbnoun.evaluate.answer_sets import AnswerSetSettings
from verbnoun.evaluate.endpoint import MAX_CONSECUTIVE_FAILURES, RetryPolicy
from verbnoun.evaluate.registry import ADAPTERS, adapter_spec, option_names, settings_for
from verbnoun.evaluate.runner import EvalSettings

RETRY_OPTIONS = tuple(f.name for f in fields(RetryPolicy))  # tries, max_wait, ...
PATH_OPTIONS = ("questions", "videos", "annotations", "dataset", "predictions", "checkpoint",
                "embedding_model")  # fmt: skip


@dataclass(frozen=True)
class FrameSettings:
    """Where a run's frames come from: ``videos`` in ``layout``, or else the data set's
    description (its ``videos:`` section)."""

    videos: Path | None = None
    layout: str = "chunks"


@dataclass(frozen=True)
class OpenVocabSettings:
    """``--open-vocab``: free-text answers mapped to the data set's classes."""

    embedding_model: Path | None = None  # a local text-embedding model for what synonyms miss
    min_similarity: float = 0.5
    device: str | None = None


@dataclass(frozen=True)
class RunSettings:
    """How a run goes; nothing here changes an answer."""

    shard: str | None = None  # K/N (default: torchrun's rank, else the whole run)
    batch_size: int = 8
    workers: int = 2
    progress: bool = False
    max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES
    price_per_mtok: tuple[float, float] | None = None


@dataclass(frozen=True)
class EvalJob:
    """Everything one ``verbnoun eval`` needs."""

    model: str
    out: Path
    questions: Path | None
    adapter: Any  # the model's settings dataclass (its AdapterSpec's ``settings``)
    prompt: EvalSettings
    frames: FrameSettings
    data: DataSettings
    run: RunSettings
    two_stage: TwoStageSettings | None = None
    open_vocab: OpenVocabSettings | None = None
    answer_set: AnswerSetSettings | None = None  # multi-select questions: reply -> set


def _take(cls, options: dict, **renamed: str):
    """An instance of dataclass ``cls`` from the ``options`` named after its fields (or as
    ``renamed`` says), removing them from ``options``."""
    values = {}
    for f in fields(cls):
        key = renamed.get(f.name, f.name)
        if key in options:
            values[f.name] = options.pop(key)
    return cls(**values)


def eval_job(
    model: str, out: str | Path, questions: str | Path | None = None, **options: Any
) -> EvalJob:
    """The :class:`EvalJob` of ``verbnoun eval``'s options (names as on the command line, with
    underscores). The fields of :class:`~verbnoun.evaluate.endpoint.RetryPolicy` (``tries``,
    ``max_wait``, ...) make the endpoint's ``retry``; ``price_per_mtok`` may be ``"IN,OUT"``."""
    adapter_spec(model)
    options = {k: v for k, v in options.items()}
    for name in PATH_OPTIONS:
        if options.get(name) is not None:
            options[name] = Path(options[name])
    retry = {k: options.pop(k) for k in RETRY_OPTIONS if k in options}
    if retry:
        options["retry"] = RetryPolicy(**retry)
    if isinstance(options.get("price_per_mtok"), str):
        from verbnoun.evaluate.endpoint import parse_price

        options["price_per_mtok"] = parse_price(options["price_per_mtok"])
    shared = {k: options[k] for k in ("seed", "predictions", "device") if k in options}
    two_stage = options.pop("two_stage", False)
    top_k = {k: options.pop(k) for k in ("top_k", "option_text") if k in options}
    open_vocab = options.pop("open_vocab", False)
    mapping = {k: options.pop(k) for k in ("embedding_model", "min_similarity") if k in options}
    prompt = _take(EvalSettings, options)
    frames = _take(FrameSettings, options)
    data = _take(DataSettings, options)
    run = _take(RunSettings, options)
    answer_set = _take(AnswerSetSettings, options)
    unknown = sorted(set(options) - option_names())
    if unknown:
        raise VerbnounError(f"unknown eval option {unknown[0]!r}")
    return EvalJob(
        model=model, out=Path(out), questions=None if questions is None else Path(questions),
        adapter=settings_for(model, options), prompt=prompt, frames=frames, data=data, run=run,
        two_stage=TwoStageSettings(**top_k, predictions=shared.get("predictions"),
                                   seed=shared.get("seed", 0)) if two_stage else None,
        open_vocab=OpenVocabSettings(**mapping, device=shared.get("device"))
        if open_vocab else None, answer_set=answer_set,
    )  # fmt: skip


def run_eval(job: EvalJob) -> dict | None:
    """Run ``job``: the run's metrics, or ``None`` when other shards of the run still have
    questions."""
    from verbnoun.bench.two_stage import two_stage_questions
    from verbnoun.evaluate.frames import frames_for
    from verbnoun.evaluate.runner import Shard, run_evaluation
    from verbnoun.progress import Heartbeat

    mapper = None if job.open_vocab is None else open_vocab_mapper(job)  # before a model loads
    spec = adapter_spec(job.model)
    with Heartbeat(f"eval: loading model {job.model}", enabled=job.run.progress):
        adapter = spec.build(job.adapter, job.data)
    questions = job.questions
    if job.two_stage is not None:
        questions = two_stage_questions(job.out, job.data, job.two_stage)
    elif questions is None:
        raise VerbnounError("give --questions FILE (or --two-stage with --predictions)")
    frame_source = None
    if adapter.needs_frames:
        frame_source = frames_for(
            job.model, job.frames.videos, job.frames.layout, job.prompt.frames, job.prompt.size,
            job.data.dataset, job.data.annotations,
        )  # fmt: skip
    run = job.run
    return run_evaluation(
        questions, adapter, job.out, job.prompt, frame_source=frame_source,
        shard=Shard.from_environment(run.shard), batch_size=run.batch_size,
        workers=run.workers, progress=run.progress, annotations=data_source(job.data),
        open_vocab=mapper, max_consecutive_failures=run.max_consecutive_failures,
        price_per_mtok=run.price_per_mtok, answer_set=job.answer_set,
    )  # fmt: skip


def open_vocab_mapper(job: EvalJob):
    """The mapper of ``--open-vocab``, after checking that the model writes free text."""
    spec = adapter_spec(job.model)
    if spec.text_answers == "never":
        always = [n for n, s in ADAPTERS.items() if s.text_answers == "always"]
        generating = [n for n, s in ADAPTERS.items() if s.text_answers == "generate"]
        raise VerbnounError(
            f"--open-vocab needs a model that writes text ({', '.join(always)}, or "
            f"{' / '.join(generating)} with --scoring generate), not {job.model!r}"
        )
    if not spec.writes_text(job.adapter):
        raise VerbnounError(f"--open-vocab with --model {job.model} needs --scoring generate")
    if job.two_stage is not None:
        raise VerbnounError(
            "--open-vocab asks without options: it does not combine with --two-stage"
        )
    from verbnoun.interpret.open_vocab import OpenVocabMapper

    source = job.data.open()
    if source is None:
        raise VerbnounError(
            "--open-vocab needs the class lists: give --annotations DIR or --dataset FILE.yaml"
        )
    settings = job.open_vocab or OpenVocabSettings()
    return OpenVocabMapper(
        source.verbs(), source.nouns(), embedding_model=settings.embedding_model,
        min_similarity=settings.min_similarity, device=settings.device,
    )  # fmt: skip


def data_source(data: DataSettings):
    """What the runner and the score read breakdowns from: the open data set of ``dataset``
    (paths relative to ``annotations``), else the ``annotations`` path itself."""
    if data.dataset is None:
        return data.annotations
    return data.open()
