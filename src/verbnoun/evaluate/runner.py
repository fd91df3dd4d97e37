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
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from verbnoun import __version__
from verbnoun.bench.questions import Question, read_questions
from verbnoun.errors import VerbnounError
from verbnoun.evaluate.adapters import Adapter, Request
from verbnoun.evaluate.metrics import (
    accuracy_summary,
    grouped_accuracy,
    mean_class_accuracy,
    open_vocab_top1,
    recognition_top1,
)
from verbnoun.evaluate.parsing import PARSER_VERSION, get_parser
from verbnoun.fileio import sha256_file, write_json

if TYPE_CHECKING:
    from verbnoun.bench.open_vocab import OpenVocabMapper

FrameSource = Callable[[Question], object]
PRIOR_ACTIONS = ("none", "ground_truth", "model")


@dataclass(frozen=True)
class EvalSettings:
    """Everything about a run, besides the model, that can change its result."""

    frames: int = 8
    size: int | None = None
    time_instruction: bool = True
    prior_actions: str = "none"
    parser: str = "strict"
    sampling: str = "midpoint"  # SPEC 2; no jitter at evaluation

    def check(self) -> None:
        if self.frames < 1:
            raise VerbnounError(f"--frames must be at least 1, got {self.frames}")
        if self.prior_actions not in PRIOR_ACTIONS:
            raise VerbnounError(f"unknown prior-actions mode {self.prior_actions!r}")
        get_parser(self.parser)


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if not text:
            return cls(1, 1)
        try:
            k, n = (int(part) for part in text.split("/"))
        except ValueError:
            raise VerbnounError(f"--shard must look like K/N, got {text!r}") from None
        if not 1 <= k <= n:
            raise VerbnounError(f"--shard {text}: need 1 <= K <= N")
        return cls(k, n)

    @classmethod
    def from_environment(cls, text: str | None = None) -> Shard:
        """``--shard K/N`` when given, else the process's place under ``torchrun`` (``RANK``,
        ``WORLD_SIZE``), else the whole run."""
        if text:
            return cls.parse(text)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            return cls(int(os.environ.get("RANK", "0")) + 1, world)
        return cls(1, 1)

    def owns(self, question_id: str) -> bool:
        digest = hashlib.sha256(question_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    @property
    def filename(self) -> str:
        if self.count == 1:
            return "predictions.jsonl"
        return f"predictions.shard-{self.index}-of-{self.count}.jsonl"


def run_config(
    settings: EvalSettings,
    adapter: Adapter,
    questions_path: Path,
    open_vocab: OpenVocabMapper | None = None,
) -> dict:
    config = {
        "kind": "llavaction.eval",
        "model": adapter.name,
        "model_settings": adapter.settings(),
        **asdict(settings),
        "parser_version": PARSER_VERSION,
        "questions_sha256": sha256_file(questions_path),
    }
    if open_vocab is not None:  # only then, so that older multiple-choice runs still resume
        config["open_vocab"] = {"prompt": "direct_narration", **open_vocab.settings()}
    return config


def check_or_write_config(run_dir: Path, config: dict, questions_path: Path) -> None:
    """Write config.json on a new run; on an old one, refuse any setting that differs."""
    path = run_dir / "config.json"
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        old_settings = {k: v for k, v in old.items() if k not in ("questions", "created_with")}
        changed = sorted(
            key
            for key in set(old_settings) | set(config)
            if old_settings.get(key) != config.get(key)
        )
        if changed:
            details = ", ".join(
                f"{k}: {old_settings.get(k)!r} -> {config.get(k)!r}" for k in changed
            )
            raise VerbnounError(
                f"{path}: this run was made with other settings ({details}); use a new --out"
            )
        return
    write_json(
        path,
        {**config, "questions": str(questions_path.resolve()), "created_with": __version__},
    )


def read_predictions(path: Path, *, repair: bool = False) -> list[dict]:
    """Read one predictions file. A last line cut short by a kill is ignored (and, with
    ``repair``, removed from the file); any other malformed line is an error naming it."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    records = []
    complete = len(lines) - 1  # the part after the last newline is incomplete (or empty)
    for number, line in enumerate(lines[:complete], start=1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "id" not in record:
                raise ValueError("no id")
        except ValueError:
            raise VerbnounError(f"{path}:{number}: malformed prediction line") from None
        records.append(record)
    if lines[-1] and repair:
        with path.open("r+b") as handle:
            handle.truncate(len(data) - len(lines[-1]))
    return records


def prediction_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("predictions*.jsonl"))


def answered(run_dir: Path) -> dict[str, dict]:
    """All predictions of a run directory, merged over shard files (first answer wins)."""
    merged: dict[str, dict] = {}
    for path in prediction_files(run_dir):
        for record in read_predictions(path):
            merged.setdefault(record["id"], record)
    return merged


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


def run_evaluation(
    questions_path: str | Path,
    adapter: Adapter,
    run_dir: str | Path,
    settings: EvalSettings,
    *,
    frame_source: FrameSource | None = None,
    shard: Shard = Shard(1, 1),
    batch_size: int = 8,
    workers: int = 2,
    progress: bool = True,
    annotations: str | Path | None = None,
    open_vocab: OpenVocabMapper | None = None,
) -> dict | None:
    """Answer every unanswered question of this shard; returns the metrics once all are in.

    With ``open_vocab`` (a mapper), ask the direct-narration question and score the mapped
    free-text answers instead of the multiple-choice ones."""
    settings.check()
    questions_path = Path(questions_path)
    run_dir = Path(run_dir)
    questions = read_questions(questions_path)
    if adapter.needs_frames and frame_source is None:
        raise VerbnounError(f"model {adapter.name!r} needs frames: give --videos and --layout")
    if open_vocab is not None:
        _check_open_vocab(questions_path, questions, settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_config(settings, adapter, questions_path, open_vocab)
    check_or_write_config(run_dir, config, questions_path)
    own_file = run_dir / shard.filename
    read_predictions(own_file, repair=True)
    done = answered(run_dir)
    todo = [q for q in questions if q.id not in done and shard.owns(q.id)]
    parse = get_parser(settings.parser)
    by_id = {q.id: q for q in questions}
    source = frame_source if adapter.needs_frames else None

    with (
        own_file.open("a", encoding="utf-8") as out,
        _progress(progress, len(questions), len(done), len(todo)) as advance,
    ):
        for batch, frames in _prefetched(todo, batch_size, source, workers):
            for part in _independent_parts(batch, frames, settings):
                requests = []
                for question, clip in part:
                    texts, sources = None, None
                    if settings.prior_actions == "model" and question.prior_actions:
                        texts, sources = _prior_texts(question, done, by_id)
                    if open_vocab is not None:
                        request = _narration_request(question, clip, settings)
                    else:
                        request = _request(question, clip, settings, texts)
                    request.extra = {"prior_sources": sources} if sources else {}
                    requests.append(request)
                if open_vocab is not None:
                    records = _answer_open_vocab(adapter, requests, open_vocab)
                else:
                    records = _answer(adapter, requests, parse)
                for record in records:
                    done[record["id"]] = record
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
                advance(len(requests))

    merged = answered(run_dir)
    if not all(q.id in merged for q in questions):
        return None
    metrics = compute_metrics(
        questions, merged, annotations=annotations, open_vocab=open_vocab is not None
    )
    write_json(run_dir / "metrics.json", metrics)
    return metrics


def _check_open_vocab(path: Path, questions: Sequence[Question], settings: EvalSettings) -> None:
    if settings.prior_actions != "none":
        raise VerbnounError("--open-vocab asks the direct-narration question: no --prior-actions")
    single = next((q for q in questions if q.verb_class is None or q.noun_class is None), None)
    if single is not None:
        raise VerbnounError(
            f"{path}: question {single.id} has no verb/noun classes; --open-vocab maps answers "
            "to verb and noun classes"
        )


def _prefetched(
    todo: list[Question], batch_size: int, source: FrameSource | None, workers: int
) -> Iterator[tuple[list[Question], list]]:
    """Batches with their frames, decoded at most a few batches ahead of the model (bounded
    memory): by the source's own ``batches`` (worker processes) when it has one, else by
    ``workers`` threads; ``workers=0`` decodes in the caller's thread."""
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


def _answer(adapter: Adapter, requests: list[Request], parse) -> list[dict]:
    """Ask the model, parse every reply, and return the prediction records."""
    replies, latency = _ask(adapter, requests)
    records = []
    for request, reply in zip(requests, replies, strict=True):
        q = request.question
        parsed = parse(reply.raw, q.option_texts)
        record = {
            "id": q.id,
            "raw": reply.raw,
            "choice": parsed.index,
            "rule": parsed.rule,
            "correct": parsed.index == q.answer_index,
            "latency": round(latency, 4),
        }
        if reply.scores is not None:
            record["scores"] = reply.scores
        if request.extra.get("prior_sources"):
            record["prior_sources"] = request.extra["prior_sources"]
        records.append(record)
    return records


def _answer_open_vocab(
    adapter: Adapter, requests: list[Request], mapper: OpenVocabMapper
) -> list[dict]:
    """Ask for free text, map every answer to classes, and return the prediction records."""
    replies, latency = _ask(adapter, requests)
    mappings = mapper.map_many([reply.raw for reply in replies])
    records = []
    for request, reply, mapping in zip(requests, replies, mappings, strict=True):
        q = request.question
        records.append(
            {
                "id": q.id,
                "raw": reply.raw,
                "answer": mapping.text,
                "choice": None,  # no options were shown
                "verb_class": mapping.verb_class,
                "noun_class": mapping.noun_class,
                "action_id": mapping.action_id,
                "method": mapping.method,
                "confidence": round(mapping.confidence, 4),
                "mapping": {"verb": mapping.verb.to_dict(), "noun": mapping.noun.to_dict()},
                "correct": mapping.action_id == q.action_id,
                "latency": round(latency, 4),
            }
        )
    return records


def open_vocab_metrics(rows: Sequence[tuple[Question, dict]]) -> dict:
    """Top-1 verb, noun and action of mapped answers, the unmapped share and the methods."""
    mapped = open_vocab_top1(
        [(p["verb_class"], p["noun_class"]) for _, p in rows],
        [(q.verb_class, q.noun_class) for q, _ in rows],
    )
    methods: dict[str, int] = {}
    for _, p in rows:
        methods[p["method"]] = methods.get(p["method"], 0) + 1
    confidence = [p["confidence"] for _, p in rows]
    return {
        **mapped,
        "methods": dict(sorted(methods.items())),
        "mean_confidence": sum(confidence) / len(confidence) if confidence else float("nan"),
    }


class _progress:
    """A rich progress bar with ETA (or nothing), used as ``with ... as advance``."""

    def __init__(self, enabled: bool, total: int, done: int, todo: int) -> None:
        self.enabled, self.total, self.done, self.todo = enabled, total, done, todo

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        self.bar.__enter__()
        task = self.bar.add_task("eval", total=self.total, completed=self.done)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


def compute_metrics(
    questions: Sequence[Question],
    predictions: dict[str, dict],
    *,
    annotations=None,
    open_vocab: bool = False,
) -> dict:
    """Accuracy with its bootstrap interval, unparsed rate, per verb / noun breakdowns, and,
    given a data set (an EK100 annotation folder, a description YAML or an open data set), head
    vs. tail classes and seen vs. unseen participants where the data set names them.

    ``open_vocab``: the predictions are mapped free-text answers (no options): ``overall`` is
    the action top-1, its ``unparsed`` counts the answers that could not be mapped, and
    ``open_vocab`` holds top-1 verb, noun and action after mapping and the unmapped share.

    Single-label questions (one action class, no verb/noun split) get ``per_action`` instead of
    ``per_verb`` / ``per_noun`` (which are ``None``: not applicable), and ``labels: "action"``.
    """
    rows = [(q, predictions[q.id]) for q in questions if q.id in predictions]
    correct = [bool(p["correct"]) for _, p in rows]
    unparsed = sum(p["choice"] is None for _, p in rows)
    single = bool(rows) and all(q.single_label for q, _ in rows)
    chosen = [
        q.options[p["choice"]].action_id if p["choice"] is not None else "-:-" for q, p in rows
    ]
    metrics: dict = {
        "overall": accuracy_summary(correct, unparsed),
        # EK100 top-1 of the chosen option's action (two-stage recognition), and its ceiling:
        # how often the truth was among the options at all
        "recognition": recognition_top1(chosen, [q.action_id for q, _ in rows]),
        "truth_among_options": sum(q.answer_index >= 0 for q, _ in rows) / max(len(rows), 1),
    }
    if single:
        per_action = grouped_accuracy((q.action_class, p["correct"]) for q, p in rows)
        metrics.update(
            labels="action",
            per_verb=None,
            per_noun=None,
            per_action=per_action,
            mean_class_accuracy={
                "verb": None, "noun": None, "action": mean_class_accuracy(per_action)
            },
        )  # fmt: skip
    else:
        per_verb = grouped_accuracy((q.verb_class, p["correct"]) for q, p in rows)
        per_noun = grouped_accuracy((q.noun_class, p["correct"]) for q, p in rows)
        metrics.update(
            per_verb=per_verb,
            per_noun=per_noun,
            mean_class_accuracy={
                "verb": mean_class_accuracy(per_verb),
                "noun": mean_class_accuracy(per_noun),
            },
        )
    if open_vocab:  # no options were shown: no chosen option, no truth among options
        mapped = open_vocab_metrics(rows)
        metrics["overall"] = accuracy_summary(correct, mapped["unmapped_count"])
        metrics["open_vocab"] = mapped
        del metrics["recognition"], metrics["truth_among_options"]
    if annotations is not None:
        from verbnoun.data.dataset import as_dataset

        dataset = as_dataset(annotations)
        if single:
            tail_actions = getattr(dataset, "tail_actions", lambda: None)()
            if tail_actions is not None:
                metrics["head_tail"] = grouped_accuracy(
                    ("tail" if q.action_class in tail_actions else "head", p["correct"])
                    for q, p in rows
                )
        else:
            tails = dataset.tail_classes()  # type: ignore[union-attr]
            if tails is not None:
                tail_verbs, tail_nouns = tails
                metrics["head_tail"] = grouped_accuracy(
                    (
                        "tail"
                        if q.verb_class in tail_verbs or q.noun_class in tail_nouns
                        else "head",
                        p["correct"],
                    )
                    for q, p in rows
                )
        unseen = dataset.unseen_participants("validation")  # type: ignore[union-attr]
        if unseen is not None:
            metrics["participants"] = grouped_accuracy(
                ("unseen" if q.participant_id in unseen else "seen", p["correct"]) for q, p in rows
            )
    return metrics
