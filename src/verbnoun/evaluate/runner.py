"""The evaluation runner: questions in, ``RUN_DIR/{config,predictions,metrics}`` out, resumable.

* ``config.json`` holds everything that can change a result (model and its settings, frames,
  resolution, prompt variant, parser and its version, the questions' sha256). Running again with
  the same settings resumes; with different settings it refuses to mix into the old run.
* Predictions are appended and flushed as they arrive, one JSON line per question, to
  ``predictions.jsonl`` (or ``predictions.shard-K-of-N.jsonl`` under ``--shard K/N``). A line cut
  short by a kill is dropped on the next start; nothing answered is lost or answered twice.
* Shards split the *unanswered* questions by a stable hash of their id, so N processes (or a
  resumed run with another N) never clobber each other and ``score`` merges all files.
* Frames are decoded by worker threads ahead of the model (bounded prefetch).
* Open-vocabulary runs (``open_vocab``: a mapper) ask the direct-narration question instead of
  the multiple-choice one, map each free-text answer to (verb class, noun class) and score top-1
  verb, noun and action after mapping, with the share of answers that could not be mapped.
* Multi-select questions (several labels per segment) are read as sets, as the run's
  ``answer_set`` names (:mod:`verbnoun.evaluate.answer_sets`: the multi-select parser, every
  action of a free-text answer, or a threshold on option probabilities; recorded in
  ``config.json``'s ``multilabel``); a record holds the chosen ``labels`` (``null``: unparsed)
  and ``correct`` means the set is exactly the truth. The metrics add ``multilabel``: Jaccard
  accuracy, exact match, per-class precision/recall/F1 and, with scores, mAP
  (:mod:`verbnoun.evaluate.multilabel`).
* A question an endpoint could not answer (its tries used up) goes to ``failed.jsonl`` (or
  ``failed.shard-K-of-N.jsonl``) with the kind and HTTP status of its last failure, never to
  the predictions; the run goes on, and running it again asks only those (and the unasked).
  ``max_consecutive_failures`` failed in a row stop the run early (the endpoint is down); a
  refusal (bad key, unknown model) stops it at once. Nothing answered is lost either way.
  ``metrics.json`` is written once every question is answered or failed: it counts the failed
  ones by kind, gives the accuracy over the answered and over all asked, the token usage, the
  requests per second and, with a price, the estimated cost.

The run folder's shared guarantees (config check, appending, torn lines, shards) are
:mod:`verbnoun.runs`'; this module says what an evaluation asks. What a prediction record holds
(made from a reply, read back from the run folder) is :mod:`verbnoun.evaluate.records`'; the
figures of ``metrics.json`` are :mod:`verbnoun.evaluate.run_metrics`'.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from verbnoun import runs
from verbnoun.bench.questions import Question, read_questions
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Adapter, Request, abilities_of
from verbnoun.evaluate.answer_sets import AnswerSetSettings, reader
from verbnoun.evaluate.endpoint import MAX_CONSECUTIVE_FAILURES, EndpointDown, EndpointRefused
from verbnoun.evaluate.prompt_record import PromptLog
from verbnoun.evaluate.records import (
    answered,
    compact_failed,
    failed_record,
    failures,
    mapped_records,
    parsed_records,
    read_predictions,
    selected_records,
    with_usage,
)
from verbnoun.evaluate.run_metrics import compute_metrics
from verbnoun.fileio import sha256_file, write_json
from verbnoun.interpret.parsing import PARSER_VERSIONS, get_parser
from verbnoun.progress import Progress
from verbnoun.runs import Shard

if TYPE_CHECKING:
    from verbnoun.interpret.open_vocab import OpenVocabMapper

FrameSource = Callable[[Question], object]
PRIOR_ACTIONS = ("none", "ground_truth", "model")
WHOLE_RUN = Shard(1, 1)


@dataclass(frozen=True)
class EvalSettings:
    """Everything about a run, besides the model, that can change its result."""

    frames: int = 8
    size: int | None = None
    time_instruction: bool = True
    prior_actions: str = "none"
    parser: str = "strict"
    sampling: str = "midpoint"  # SPEC 2; no jitter at evaluation
    frames_control: str = "none"  # evaluate.frames.FRAME_CONTROLS: other-clip, blank

    def check(self) -> None:
        from verbnoun.evaluate.frames import FRAME_CONTROLS

        if self.frames < 1:
            raise VerbnounError(f"--frames must be at least 1, got {self.frames}")
        if self.frames_control not in FRAME_CONTROLS:
            raise VerbnounError(
                f"unknown frames control {self.frames_control!r}; choose one of "
                f"{', '.join(FRAME_CONTROLS)}"
            )
        if self.prior_actions not in PRIOR_ACTIONS:
            raise VerbnounError(f"unknown prior-actions mode {self.prior_actions!r}")
        get_parser(self.parser)


def run_config(
    settings: EvalSettings,
    adapter: Adapter,
    questions_path: Path,
    open_vocab: OpenVocabMapper | None = None,
    answer_set: AnswerSetSettings | None = None,
) -> dict:
    recorded = asdict(settings)
    if settings.frames_control == "none":  # only when set, so that older runs still resume
        del recorded["frames_control"]
    config = {
        "kind": "llavaction.eval",
        "model": adapter.name,
        "model_settings": adapter.settings(),
        **recorded,
        "parser_version": PARSER_VERSIONS[settings.parser],
        "questions_sha256": sha256_file(questions_path),
    }
    if open_vocab is not None:  # only then, so that older multiple-choice runs still resume
        config["open_vocab"] = {"prompt": "direct_narration", **open_vocab.settings()}
    if answer_set is not None:  # multi-select questions only: other runs' configs are unchanged
        config["multilabel"] = answer_set.record()
    return config


def check_or_write_config(
    run_dir: Path, config: dict, questions_path: Path, transport: dict | None = None
) -> None:
    """Write config.json on a new run; on an old one, refuse any setting that differs
    (:func:`verbnoun.runs.check_or_write_config`). ``transport`` (how requests are sent and
    retried: no result depends on it) is recorded as the latest run gave it."""

    def hint(changed: list[str]) -> str:
        if changed == ["parser_version"]:  # rescore it first: verbnoun score --reparse
            return (
                f"rescore its answers with `verbnoun score --reparse {run_dir} --out NEW`, "
                "then go on in NEW"
            )
        return "use a new --out"

    runs.check_or_write_config(
        run_dir, config, recorded={"questions": str(questions_path.resolve())},
        latest={"transport": transport}, hint=hint,
    )  # fmt: skip


def _batches(items: Sequence[Question], size: int) -> Iterator[list[Question]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _frames(batch: list[Question], frame_source: FrameSource | None) -> list:
    """Decode a batch's frames (runs in a worker thread, ahead of the model)."""
    return [frame_source(q) if frame_source is not None else None for q in batch]


def _prior_texts(question: Question, done: dict[str, dict], questions: dict[str, Question]):
    """The model's own earlier answers for a question's two previous actions (older first).

    Falls back to the ground-truth narration for a previous action the model did not answer
    (not in the question set, or unparsed); returns the texts and where they came from.
    """
    texts, sources = [], []
    for prior in question.prior_actions:
        record = done.get(prior.id)
        earlier = questions.get(prior.id)
        if record is not None and earlier is not None and record["choice"] is not None:
            texts.append(earlier.options[record["choice"]].text)
            sources.append("model")
        else:
            texts.append(prior.narration)
            sources.append("ground_truth")
    return tuple(texts), sources


def _narration_request(question: Question, frames, settings: EvalSettings) -> Request:
    """The direct-narration question of SPEC 5(d) about a question's clip (no options)."""
    from verbnoun.bench import prompts

    duration = question.duration if settings.time_instruction else None
    turn = prompts.user_turn(prompts.DIRECT_NARRATION, duration=duration, n_frames=settings.frames)
    return Request(
        question=question,
        prompt=prompts.chat_prompt(turn),
        task=prompts.DIRECT_NARRATION,
        frames=frames,
    )


def _request(question: Question, frames, settings: EvalSettings, prior_texts=None) -> Request:
    options = {"with_prior_actions": settings.prior_actions != "none", "prior_texts": prior_texts}
    return Request(
        question=question,
        prompt=question.prompt(
            settings.frames, time_instruction=settings.time_instruction, **options
        ),
        task=question.task(**options),
        frames=frames,
    )


def build_request(
    question: Question,
    frames,
    settings: EvalSettings,
    *,
    open_vocab: bool = False,
    done: dict[str, dict] | None = None,
    by_id: dict[str, Question] | None = None,
) -> Request:
    """The request the runner makes of a question (``verbnoun show-prompt`` rebuilds it the
    same way): the direct-narration question for an open-vocabulary run, else the
    multiple-choice one, with the previous actions as ``settings.prior_actions`` says (``model``:
    the model's own answers in ``done``, of the questions in ``by_id``)."""
    texts, sources = None, None
    if settings.prior_actions == "model" and question.prior_actions:
        texts, sources = _prior_texts(question, done or {}, by_id or {})
    if open_vocab:
        request = _narration_request(question, frames, settings)
    else:
        request = _request(question, frames, settings, texts)
    request.extra = {"prior_sources": sources} if sources else {}
    return request


def run_evaluation(
    questions_path: str | Path,
    adapter: Adapter,
    run_dir: str | Path,
    settings: EvalSettings,
    *,
    frame_source: FrameSource | None = None,
    shard: Shard = WHOLE_RUN,
    batch_size: int = 8,
    workers: int = 2,
    progress: bool = True,
    annotations: str | Path | None = None,
    open_vocab: OpenVocabMapper | None = None,
    max_consecutive_failures: int = MAX_CONSECUTIVE_FAILURES,
    price_per_mtok: tuple[float, float] | None = None,
    answer_set: AnswerSetSettings | None = None,
) -> dict | None:
    """Answer every unanswered question of this shard; returns the metrics once every question
    is answered or failed (``None`` while some are not asked yet, e.g. by other shards).

    With ``open_vocab`` (a mapper), ask the direct-narration question and score the mapped
    free-text answers instead of the multiple-choice ones. Questions the model's endpoint could
    not answer are recorded as failed (see the module's docstring);
    ``max_consecutive_failures`` of them in a row (0: no limit) raise :class:`EndpointDown`
    once everything is written, a refusal raises :class:`EndpointRefused`.
    ``price_per_mtok``: (input, output) price per million tokens, for the estimated cost.
    ``answer_set``: how a multi-select question's reply becomes a set (default: the
    multi-select parser; every mapped action with ``open_vocab``)."""
    settings.check()
    questions_path = Path(questions_path)
    run_dir = Path(run_dir)
    questions = read_questions(questions_path)
    if adapter.needs_frames and frame_source is None:
        raise VerbnounError(f"model {adapter.name!r} needs frames: give --videos and --layout")
    if open_vocab is not None:
        _check_open_vocab(questions_path, questions, settings)
    answers = _answer_set(questions_path, questions, answer_set, open_vocab is not None)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_config(settings, adapter, questions_path, open_vocab, answers)
    transport = None
    can = abilities_of(adapter)  # declared: streaming, transport settings, stats
    if can.transport:
        transport = {
            **adapter.transport_settings(),  # type: ignore[attr-defined]
            "max_consecutive_failures": max_consecutive_failures,
        }
    check_or_write_config(run_dir, config, questions_path, transport)
    own_file = run_dir / shard.filename
    own_failed = run_dir / shard.failed_filename
    read_predictions(own_file, repair=True)
    done = answered(run_dir)
    compact_failed(own_failed, done)
    todo = [q for q in questions if q.id not in done and shard.owns(q.id)]
    parse = get_parser(settings.parser)
    by_id = {q.id: q for q in questions}
    source = frame_source if adapter.needs_frames else None
    asked = PromptLog(  # the exact prompt of one question per template: prompts.jsonl
        run_dir, shard.filename.replace("predictions", "prompts", 1), adapter,
        settings.prior_actions, open_vocab is not None,
    )  # fmt: skip
    if source is not None and settings.frames_control != "none":
        from verbnoun.evaluate.frames import controlled

        source = controlled(source, questions, settings.frames_control)

    stats = adapter.stats if can.stats else None  # type: ignore[attr-defined]
    sent_before = stats.requests if stats is not None else 0
    tally = {"answered": len(done), "failed": 0, "in_a_row": 0, "asked": 0}
    started = time.perf_counter()

    def status() -> str:
        retrying = f" retrying {stats.retrying}" if stats is not None else ""
        return f"answered {tally['answered']} failed {tally['failed']}{retrying}"

    with (
        runs.Appender(own_file) as out,
        runs.Appender(own_failed) as failed_out,
        _progress(progress, len(questions), len(done), len(todo), status) as advance,
    ):
        parts = (
            part
            for batch, frames in _prefetched(todo, batch_size, source, workers, head=can.streams)
            for part in _independent_parts(batch, frames, settings)
        )

        def requests_of(part) -> Iterator[Request]:
            for question, clip in part:
                request = build_request(
                    question, clip, settings, open_vocab=open_vocab is not None, done=done,
                    by_id=by_id,
                )  # fmt: skip
                asked.note(request)
                yield request

        streams = (list(requests_of(part)) for part in parts)
        if can.streams and settings.prior_actions != "model":
            # one stream over all parts: no question waits for the slowest of its batch
            streams = iter([(request for part in parts for request in requests_of(part))])
        if answers is not None:
            records_of = selected_records(reader(answers), open_vocab)
        elif open_vocab is not None:
            records_of = mapped_records(open_vocab)
        else:
            records_of = parsed_records(parse)
        for requests in streams:
            chunks = _answer(adapter, requests, records_of)
            try:
                for records in chunks:
                    refused = _write(records, out, failed_out, done, tally)
                    advance(len(records))
                    if refused is not None:
                        raise EndpointRefused(refused)
                    if 0 < max_consecutive_failures <= tally["in_a_row"]:
                        where = failed_out.name
                        raise EndpointDown(_stop_message(run_dir, questions, tally, where))
            finally:
                chunks.close()  # a stop: the requests still out are given up

    merged = answered(run_dir)
    compact_failed(own_failed, merged)
    if own_failed.is_file() and own_failed.stat().st_size == 0:
        own_failed.unlink()
    failed = failures(run_dir, merged)
    if not all(q.id in merged or q.id in failed for q in questions):
        return None
    metrics = compute_metrics(
        questions, merged, annotations=annotations, open_vocab=open_vocab is not None,
        failed=failed, price_per_mtok=price_per_mtok,
        answer_set=answers.answer_set if answers is not None else None,
    )  # fmt: skip
    if stats is not None:
        metrics["throughput"] = _throughput(
            run_dir, tally["asked"], stats.requests - sent_before, time.perf_counter() - started
        )
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def _write(
    records: list[dict], out: runs.Appender, failed_out: runs.Appender, done: dict, tally: dict
) -> str | None:
    """Append answered records to the predictions and failed ones to the failed file (both
    flushed to disk); keep the tally. Returns the message of a refusal (not recorded)."""
    refused = None
    answers, failed = [], []
    for record in records:
        failure = record.get("failed")
        if failure is not None and failure["kind"] == "refused":
            refused = refused or failure["message"]
            continue
        tally["asked"] += 1
        if failure is None:
            done[record["id"]] = record
            answers.append(record)
            tally["answered"] += 1
            tally["in_a_row"] = 0
        else:
            failed.append(record)
            tally["failed"] += 1
            tally["in_a_row"] += 1
            tally["last"] = failure
    out.append(answers)
    failed_out.append(failed)
    return refused


def _stop_message(run_dir: Path, questions: Sequence[Question], tally: dict, where: str) -> str:
    last = tally["last"]
    status = f", HTTP {last['status']}" if last.get("status") is not None else ""
    done = answered(run_dir)
    failed = failures(run_dir, done)
    waiting = len(questions) - len(done) - len(failed)
    return (
        f"stopped after {tally['in_a_row']} questions in a row failed (last: {last['kind']}"
        f"{status}): the endpoint looks down. Kept: {len(done)} answered, {len(failed)} failed "
        f"({where}), {waiting} not asked; run the same command again to go on"
    )


def _throughput(run_dir: Path, asked: int, requests: int, seconds: float) -> dict:
    """Requests and questions per second of this invocation (of the previous one, kept from
    metrics.json, when this one asked nothing)."""
    if asked == 0 and (run_dir / "metrics.json").is_file():
        try:
            old = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
            if isinstance(old.get("throughput"), dict):
                return old["throughput"]
        except (ValueError, AttributeError):  # unreadable: this invocation's figures instead
            pass
    return {
        "questions": asked,
        "requests": requests,
        "seconds": round(seconds, 3),
        "requests_per_second": round(requests / seconds, 4) if seconds > 0 else None,
        "questions_per_second": round(asked / seconds, 4) if seconds > 0 else None,
    }


def _check_open_vocab(path: Path, questions: Sequence[Question], settings: EvalSettings) -> None:
    if settings.prior_actions != "none":
        raise VerbnounError("--open-vocab asks the direct-narration question: no --prior-actions")
    single = next((q for q in questions if q.verb_class is None or q.noun_class is None), None)
    if single is not None:
        raise VerbnounError(
            f"{path}: question {single.id} has no verb/noun classes; --open-vocab maps answers "
            "to verb and noun classes"
        )


def _answer_set(
    path: Path, questions: Sequence[Question], given: AnswerSetSettings | None, free_text: bool
) -> AnswerSetSettings | None:
    """How the run reads multi-select replies (``None``: the file has no multi-select
    question, and nothing but the default may be asked for)."""
    if not any(q.multi_select for q in questions):
        if given is not None and given != AnswerSetSettings():
            raise VerbnounError(
                f"{path}: --answer-set {given.answer_set} reads multi-select questions; this "
                "file has none"
            )
        return None
    if given is None or (free_text and given.answer_set == "letters"):
        threshold = given.threshold if given is not None else AnswerSetSettings.threshold
        given = AnswerSetSettings("free-text" if free_text else "letters", threshold)
    if (given.answer_set == "free-text") != free_text:
        raise VerbnounError(
            "--answer-set free-text reads free text: give --open-vocab"
            if not free_text
            else f"--open-vocab asks for free text: --answer-set {given.answer_set} reads options"
        )
    given.check()
    return given


def _prefetched(
    todo: list[Question],
    batch_size: int,
    source: FrameSource | None,
    workers: int,
    *,
    head: bool = False,
) -> Iterator[tuple[list[Question], list]]:
    """Batches with their frames, decoded at most a few batches ahead of the model (bounded
    memory): by the source's own ``batches`` (worker processes) when it has one, else by
    ``workers`` threads; ``workers=0`` decodes in the caller's thread. ``head``: the first
    question comes alone, decoded in the caller's thread, so that a streaming adapter sends it
    at once instead of waiting for the workers to start and decode a whole batch (they start
    while it is out; the frames are the same either way)."""
    if head and todo and source is not None:
        yield [todo[0]], _frames([todo[0]], source)
        todo = todo[1:]
    batches = _batches(todo, batch_size)
    if source is not None and hasattr(source, "batches"):
        yield from zip(batches, source.batches(todo, batch_size, workers), strict=True)
        return
    if workers == 0:
        for batch in batches:
            yield batch, _frames(batch, source)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for batch in batches:
            pending.append(pool.submit(lambda b: (b, _frames(b, source)), batch))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _independent_parts(batch: list[Question], frames: list, settings: EvalSettings):
    """Split a batch so that no question waits on the answer of another in the same part
    (only sequential prediction, ``prior_actions="model"``, creates such waits)."""
    part: list = []
    ids: set[str] = set()
    for question, clip in zip(batch, frames, strict=True):
        waits = settings.prior_actions == "model" and any(
            p.id in ids for p in question.prior_actions
        )
        if waits and part:
            yield part
            part, ids = [], set()
        part.append((question, clip))
        ids.add(question.id)
    if part:
        yield part


def _ask(adapter: Adapter, requests: list[Request]) -> tuple[list, float]:
    """The model's replies, one per request (checked), and the mean seconds per request."""
    start = time.perf_counter()
    replies = adapter.answer(requests)
    latency = (time.perf_counter() - start) / max(len(requests), 1)
    if len(replies) != len(requests):
        raise VerbnounError(
            f"model {adapter.name!r} returned {len(replies)} answers for {len(requests)} questions"
        )
    return replies, latency


def _replies(adapter: Adapter, requests) -> Iterator[list[tuple]]:
    """The model's replies as ``(request, reply, latency)`` chunks: one per reply as soon as it
    arrives from an adapter that streams them (``answer_each``: nothing answered waits in memory
    for a slower question; ``requests`` may be a lazy stream), else the whole batch (a list)."""
    if not abilities_of(adapter).streams:
        replies, latency = _ask(adapter, requests)
        yield list(zip(requests, replies, [latency] * len(requests), strict=True))
        return
    for request, reply in adapter.answer_each(requests):  # type: ignore[attr-defined]
        yield [(request, reply, reply.extra.get("api_latency", 0.0))]


def _answer(adapter: Adapter, requests: Iterable[Request], records_of) -> Iterator[list[dict]]:
    """Ask the model and yield the prediction records chunk by chunk: ``records_of`` makes the
    records of a chunk's answered ``(request, reply, latency)`` in order (:func:`parsed_records`,
    :func:`mapped_records`); a reply the endpoint could not give gets its failure record."""
    for chunk in _replies(adapter, requests):
        made = iter(records_of([item for item in chunk if item[1].failure is None]))
        yield [
            failed_record(request.question.id, reply) if reply.failure is not None
            else with_usage(next(made), reply)
            for request, reply, _ in chunk
        ]  # fmt: skip


def _progress(
    enabled: bool, total: int, done: int, todo: int, status: Callable[[], str]
) -> Progress:
    """The shared progress display (a bar on a terminal, plain lines otherwise), used as
    ``with ... as advance``; ``status`` ("answered A failed F retrying R") is read at every
    refresh."""
    return Progress("evaluating", total, done, enabled=enabled, status_of=status)
