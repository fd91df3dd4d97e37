"""SFT data (SPEC 5): task generators writing LLaVA-format JSONL, and mixture files.

One record per line, keys in SPEC 5's order::

    {"id", "video", "start_timestamp", "end_timestamp", "question_type", "verb_id", "noun_id",
     "action_id", "conversations": [{"from": "human", "value": "<image>\\n" + task},
                                    {"from": "gpt", "value": answer}]}

* ``video`` is the video id; ``start_timestamp`` / ``end_timestamp`` are the seconds of the clip
  the model sees (for temporal detection: the padded window). ``verb_id``, ``noun_id`` and
  ``action_id`` (index in the action vocabulary) are -1 when unknown.
* ``id`` is ``"{task}:{narration_id}"`` so that ids stay unique across the files of a mixture.
* **The time instruction is not stored.** The human turn is ``<image>\\n`` + task text; the
  trainer inserts SPEC 3.1's time instruction right after ``<image>\\n`` at load time, because
  it depends on the number of frames sampled (:func:`with_time_instruction`).

Tasks (``--tasks``): ``mqa`` (hard multiple choice: a specialist's top-2K without the truth, K-1 at
random, SPEC 5(a); without a prediction file, the ``prior-hard`` strategy, and the manifest says
so), ``prior`` (a modifier of ``mqa``: with probability 0.3 a qualifying question shows the two
previous actions, SPEC 5(b)), ``temporal`` (SPEC 5(c)) and ``narration`` (SPEC 5(d)).

Temporal detection asks for ``'start_timestamp: end_timestamp'`` rounded to 2 decimals and is
answered in exactly that format (``"1.25: 3.40"``); the original asked that but answered
``start, end``. The segment is padded by 3 s split at random before and after; the window's start
is clamped at 0 (its end is left as is: the frame sampler clamps it to the video's last frame,
which leaves the relative times right).

Mixture files (SPEC 5) list task files and how much of each to use::

    datasets:
      - json_path: mqa.jsonl          # relative to the YAML's folder, or absolute
        sampling_strategy: all        # all | first:N | end:N | random:N | first:P% (end, random too)

:func:`load_mixture` applies them as LLaVA-NeXT does (``P%`` rounds up; ``N`` past the file's
length takes it all; ``random`` returns its sample in random order), seeded and deterministic.
Files may be JSONL or a JSON list.

Every random choice comes from a generator seeded by the build seed, the task and the narration id,
so each file is deterministic in the seed and independent of build order.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from verbnoun.bench import prompts
from verbnoun.bench.build import BuildSettings, OptionTexts, build_questions
from verbnoun.bench.strategies import strategy_for
from verbnoun.data.annotations import ActionVocabulary
from verbnoun.data.dataset import ActionDataset, as_dataset, describe
from verbnoun.data.ek100 import Segment
from verbnoun.errors import VerbnounError
from verbnoun.fileio import (
    atomic_outputs,
    atomic_write_bytes,
    json_bytes,
    read_json,
    read_jsonl,
    read_yaml,
    sha256_bytes,
)

TASKS = ("mqa", "prior", "temporal", "narration")
PRIOR_PROBABILITY = 0.3  # SPEC 5(b)
TEMPORAL_PAD = 3.0  # seconds, SPEC 5(c)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SftSettings:
    """Everything that changes the content of the task files."""

    split: str = "train"
    tasks: tuple[str, ...] = ("mqa", "prior", "temporal", "narration")
    num_options: int = 5
    option_text: str = "narration"
    seed: int = 0
    prior_probability: float = PRIOR_PROBABILITY
    temporal_pad: float = TEMPORAL_PAD
    distractors: str | None = None  # None: specialist with --predictions, else prior-hard
    specialist_pool: int = 0  # specialist distractors from its top N (0: 2K, the release)

    def check(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise VerbnounError(f"unknown task(s) {', '.join(unknown)}; choose from {TASKS}")
        if not self.tasks:
            raise VerbnounError("no task given")
        if "prior" in self.tasks and "mqa" not in self.tasks:
            raise VerbnounError("task 'prior' changes 'mqa' questions: add 'mqa' to --tasks")
        if 0 < self.specialist_pool < self.num_options - 1:
            raise VerbnounError(
                f"--specialist-pool {self.specialist_pool} holds fewer than the "
                f"{self.num_options - 1} distractors a question needs"
            )


def task_rng(seed: int, task: str, narration_id: str) -> random.Random:
    """One generator per (task, segment): independent of order, process and hash seed."""
    return random.Random(f"llavaction-sft:{seed}:{task}:{narration_id}")


def record(
    task: str,
    question_type: str,
    segment: Segment,
    vocabulary: ActionVocabulary,
    task_text: str,
    answer: str,
    *,
    start: float | None = None,
    end: float | None = None,
) -> dict:
    """One SPEC 5 record about a segment (class ids -1 when unknown or not applicable: a
    single-label segment has no verb or noun, only its action's index)."""
    labelled = segment.labelled
    return {
        "id": f"{task}:{segment.narration_id}",
        "video": segment.video_id,
        "start_timestamp": round(segment.start if start is None else start, 3),
        "end_timestamp": round(segment.stop if end is None else end, 3),
        "question_type": question_type,
        "verb_id": segment.verb_class if segment.verb_class is not None else -1,
        "noun_id": segment.noun_class if segment.noun_class is not None else -1,
        "action_id": vocabulary.index.get(segment.action_id, -1) if labelled else -1,
        "conversations": [
            {"from": "human", "value": prompts.user_turn(task_text)},
            {"from": "gpt", "value": answer},
        ],
    }


def with_time_instruction(human_value: str, duration: float, n_frames: int) -> str:
    """Insert SPEC 3.1's time instruction after ``<image>\\n`` (what the trainer does at load)."""
    head = prompts.IMAGE_TOKEN + "\n"
    if not human_value.startswith(head):
        raise VerbnounError(f"human turn does not start with {head!r}: {human_value[:40]!r}")
    return head + prompts.time_instruction(duration, n_frames) + human_value[len(head) :]


def mqa_records(
    segments: Sequence[Segment],
    vocabulary: ActionVocabulary,
    strategy,
    texts: OptionTexts,
    settings: SftSettings,
) -> list[dict]:
    """Hard multiple-choice records; with ``prior``, 30% of qualifying ones show prior actions."""
    build = BuildSettings(
        split=settings.split,
        distractors=strategy.name,
        num_options=settings.num_options,
        option_text=settings.option_text,
        seed=settings.seed,
        specialist_rule="training",
        specialist_pool=settings.specialist_pool,
    )
    questions = build_questions(segments, strategy, texts, build)
    records = []
    for segment, question in zip(segments, questions, strict=True):
        use_prior = (
            "prior" in settings.tasks
            and bool(question.prior_actions)
            and task_rng(settings.seed, "prior", segment.narration_id).random()
            < settings.prior_probability
        )
        task = question.task(with_prior_actions=use_prior)
        question_type = "mqa_prior_actions" if use_prior else "mqa"
        records.append(record("mqa", question_type, segment, vocabulary, task, question.target()))
    return records


def temporal_window(
    start: float, stop: float, rng: random.Random, pad: float
) -> tuple[float, float]:
    """The padded window: ``pad`` seconds split at random before and after; start clamped at 0."""
    before = rng.random() * pad
    return max(0.0, start - before), stop + (pad - before)


def temporal_answer(start: float, stop: float, window_start: float) -> str:
    """``'start: end'`` relative to the window, 2 decimals: the format the question asks for."""
    return f"{start - window_start:.2f}: {stop - window_start:.2f}"


def temporal_records(
    segments: Sequence[Segment], vocabulary: ActionVocabulary, settings: SftSettings
) -> list[dict]:
    """Temporal detection (SPEC 5(c)): where in the padded clip does the action happen?"""
    records = []
    for segment in segments:
        rng = task_rng(settings.seed, "temporal", segment.narration_id)
        window_start, window_end = temporal_window(
            segment.start, segment.stop, rng, settings.temporal_pad
        )
        question = prompts.TEMPORAL_DETECTION.format(
            narration=segment.narration or "", duration=f"{segment.duration:.2f}"
        )
        answer = temporal_answer(segment.start, segment.stop, window_start)
        records.append(
            record("temporal", "temporal_detection", segment, vocabulary, question, answer,
                   start=window_start, end=window_end)
        )  # fmt: skip
    return records


def narration_records(segments: Sequence[Segment], vocabulary: ActionVocabulary) -> list[dict]:
    """Direct narration (SPEC 5(d)): the prompt -> the segment's own narration."""
    return [
        record("narration", "direct_narration", s, vocabulary, prompts.DIRECT_NARRATION,
               s.narration or "")
        for s in segments
    ]  # fmt: skip


def dumps_record(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(", ", ": "))


def write_records(path: str | Path, records: Sequence[dict]) -> str:
    """Write records as JSONL atomically; returns the file's sha256."""
    data = "".join(dumps_record(r) + "\n" for r in records).encode("utf-8")
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def build_sft(
    annotations_dir: str | Path | ActionDataset,
    out_dir: str | Path,
    settings: SftSettings,
    predictions_path: str | Path | None = None,
) -> dict:
    """Write one JSONL per task, add them to ``out_dir/mixture.yaml``, and write the manifest.

    ``annotations_dir``: an EK100 annotation folder, a dataset description YAML, or an
    :class:`~verbnoun.data.dataset.ActionDataset` already in use (its parsed tables are
    reused; the manifest's inputs then list every file it has read). Single-label data sets
    work the same way (records carry verb and noun ids -1).
    """
    from verbnoun import __version__

    settings.check()
    annotations = as_dataset(annotations_dir)
    assert annotations is not None
    segments = annotations.segments(settings.split, require_labels=True)
    if not segments:
        files = ", ".join(str(p) for p in annotations.split_paths(settings.split))
        raise VerbnounError(f"no segments in {files} (split {settings.split!r})")
    vocabulary = annotations.action_vocabulary()
    out_dir = Path(out_dir)
    outputs: dict[str, dict] = {}
    pending: dict[Path, bytes] = {}  # written together at the end, only if everything succeeded
    distractors = None
    if "mqa" in settings.tasks:
        distractors = settings.distractors or (
            "specialist" if predictions_path is not None else "prior-hard"
        )
        if settings.specialist_pool and distractors != "specialist":
            raise VerbnounError("--specialist-pool is only used with specialist distractors")
        build = BuildSettings(split=settings.split, distractors=distractors,
                              num_options=settings.num_options, option_text=settings.option_text,
                              specialist_rule="training",
                              specialist_pool=settings.specialist_pool)  # fmt: skip
        build.check()
        strategy = strategy_for(build, annotations, vocabulary, predictions_path, segments)
        # a strategy may name where its distractors' texts come from (prior-grid: the split)
        texts = OptionTexts.of(
            annotations, getattr(strategy, "texts", None) or vocabulary, settings.option_text
        )
        outputs["mqa"] = _prepare(out_dir, "mqa", mqa_records(segments, vocabulary, strategy,
                                                              texts, settings), pending)  # fmt: skip
    elif predictions_path is not None:
        raise VerbnounError("--predictions is only used by the 'mqa' task")
    if "temporal" in settings.tasks:
        outputs["temporal"] = _prepare(out_dir, "temporal",
                                       temporal_records(segments, vocabulary, settings),
                                       pending)  # fmt: skip
    if "narration" in settings.tasks:
        outputs["narration"] = _prepare(out_dir, "narration",
                                        narration_records(segments, vocabulary),
                                        pending)  # fmt: skip
    mixture = out_dir / "mixture.yaml"
    pending[mixture] = mixture_bytes(mixture, [o["path"] for o in outputs.values()])
    inputs = annotations.inputs(predictions_path)
    manifest = {
        "kind": "llavaction.sft",
        "format_version": FORMAT_VERSION,
        "llavaction_version": __version__,
        **describe(annotations),
        "settings": {**asdict(settings), "tasks": list(settings.tasks)},
        "mqa_distractors": None
        if distractors is None
        else {
            "strategy": distractors,
            "rule": {
                "specialist": "training: K-1 of the specialist's top "
                f"{settings.specialist_pool or '2K'} without the ground truth",
                "prior-hard": "actions sharing the verb or noun of the answer, by frequency",
                "prior-grid": "a balanced verb x noun grid around the answer (version 1), every "
                "option equally likely to be the answer given the options",
                "random": "K-1 other actions, uniformly",
            }[distractors],
            "predictions": str(predictions_path) if predictions_path else None,
        },
        "time_instruction": "not stored; the trainer inserts it after '<image>\\n' at load time",
        "split_files": [annotations.relative(p) for p in annotations.split_paths(settings.split)],
        "inputs": inputs,
        "vocabulary": vocabulary.provenance,
        "segments": len(segments),
        "outputs": outputs,
        "mixture": mixture.name,
    }
    pending[out_dir / "sft.manifest.json"] = json_bytes(manifest)
    with atomic_outputs(*pending) as temporaries:
        for temporary, data in zip(temporaries, pending.values(), strict=True):
            temporary.write_bytes(data)
    return manifest


def _prepare(out_dir: Path, task: str, records: list[dict], pending: dict[Path, bytes]) -> dict:
    """The bytes of one task's JSONL (into ``pending``) and its manifest entry."""
    path = out_dir / f"{task}.jsonl"
    data = "".join(dumps_record(r) + "\n" for r in records).encode("utf-8")
    pending[path] = data
    sha = sha256_bytes(data)
    types: dict[str, int] = {}
    for r in records:
        types[r["question_type"]] = types.get(r["question_type"], 0) + 1
    return {"path": path.name, "sha256": sha, "records": len(records), "question_types": types}


# ----------------------------------------------------------------------------- mixtures

STRATEGIES = ("all", "first", "end", "random")


def parse_strategy(text: str) -> tuple[str, int | None, bool]:
    """``"random:100"`` -> ``("random", 100, False)``; ``"first:10%"`` -> ``("first", 10, True)``."""
    name, _, amount = str(text).strip().partition(":")
    if name not in STRATEGIES or (name == "all") != (amount == ""):
        raise ValueError(
            f"bad sampling_strategy {text!r} (all, first:N, end:N, random:N, first:P%)"
        )
    if name == "all":
        return name, None, False
    percent = amount.endswith("%")
    number = amount[:-1] if percent else amount
    if not number.isdigit() or (percent and int(number) > 100):
        raise ValueError(f"bad amount in sampling_strategy {text!r}")
    return name, int(number), percent


def sample_records(records: list[dict], strategy: str, rng: random.Random) -> list[dict]:
    """Apply one sampling strategy to a file's records."""
    name, amount, percent = parse_strategy(strategy)
    if name == "all" or amount is None:
        return list(records)
    count = math.ceil(amount * len(records) / 100) if percent else amount
    count = min(count, len(records))
    if name == "first":
        return records[:count]
    if name == "end":
        return records[len(records) - count :]
    return rng.sample(records, count)


def read_records(path: str | Path) -> list[dict]:
    """Records of a JSONL file (or a JSON list); errors name the file and line."""
    path = Path(path)
    if not path.exists():
        raise VerbnounError(f"{path}: SFT data file not found")
    if path.suffix == ".json":
        items = list(enumerate(read_json(path, expect=list), start=1))
    else:
        items = read_jsonl(path, expect=None)
    if not items:
        raise VerbnounError(f"{path}: no records")
    for number, item in items:
        if not isinstance(item, dict) or not isinstance(item.get("conversations"), list):
            raise VerbnounError(f"{path}:{number}: record without 'conversations'")
    return [item for _, item in items]


def load_mixture(path: str | Path, seed: int = 0) -> list[dict]:
    """All records of a mixture file, in dataset order, each dataset sampled by its strategy.

    ``json_path`` is resolved relative to the YAML file's folder. ``random:N`` draws with a
    generator seeded by ``seed``, the dataset's position and its ``json_path``.
    """
    path = Path(path)
    if not path.exists():
        raise VerbnounError(f"{path}: mixture file not found")
    data = read_yaml(path, expect=None)
    datasets = data.get("datasets") if isinstance(data, dict) else None
    if not isinstance(datasets, list) or not datasets:
        raise VerbnounError(f"{path}: expected 'datasets: [{{json_path, sampling_strategy}}]'")
    records: list[dict] = []
    for index, entry in enumerate(datasets):
        if not isinstance(entry, dict) or "json_path" not in entry:
            raise VerbnounError(f"{path}: datasets[{index}] has no json_path")
        strategy = str(entry.get("sampling_strategy", "all"))
        try:
            parse_strategy(strategy)
        except ValueError as error:
            raise VerbnounError(f"{path}: datasets[{index}]: {error}") from None
        rng = random.Random(f"llavaction-mixture:{seed}:{index}:{entry['json_path']}")
        file_records = read_records(path.parent / str(entry["json_path"]))
        records.extend(sample_records(file_records, strategy, rng))
    return records


def add_to_mixture(path: str | Path, json_paths: Sequence[str], strategy: str = "all") -> Path:
    """Create or extend a mixture file with the given files (entries already there are kept)."""
    path = Path(path)
    atomic_write_bytes(path, mixture_bytes(path, json_paths, strategy))
    return path


def mixture_bytes(path: str | Path, json_paths: Sequence[str], strategy: str = "all") -> bytes:
    """The mixture file ``path`` extended with the given files (entries already there are kept)."""
    import yaml

    path = Path(path)
    datasets: list[dict] = []
    if path.is_file():
        data = read_yaml(path, expect=None) or {}
        datasets = list(data.get("datasets") or []) if isinstance(data, dict) else []
    known = {str(d.get("json_path")) for d in datasets if isinstance(d, dict)}
    for json_path in json_paths:
        if json_path not in known:
            datasets.append({"json_path": json_path, "sampling_strategy": strategy})
            known.add(json_path)
    return yaml.safe_dump({"datasets": datasets}, sort_keys=False).encode("utf-8")
