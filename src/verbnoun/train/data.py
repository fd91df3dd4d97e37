"""Training data: the SFT mixture's records as model inputs, in a resumable global order.

* :func:`load_records` reads a mixture YAML (SPEC 5) with the SFT module's ``load_mixture`` and
  checks every record.
* :class:`SFTDataset` turns record ``i`` into token ids, labels (``supervision``: ``original``,
  LLaVA-NeXT's Qwen rule the released checkpoints were trained with, or ``answer``: the answers
  only; see :func:`~verbnoun.model.tokenization.encode_conversation`), pixel values of its
  sampled frames (SPEC 2, jittered per epoch) and its class ids. A record whose video is missing
  or corrupt comes back with ``error`` set, never with another clip's frames.
* :class:`GlobalBatchSampler` fixes the order of a whole run: epoch ``e`` is a seeded permutation,
  optimizer step ``s`` takes the next ``global_batch`` samples, cut into micro batches that go to
  (accumulation step, rank). The same global batch therefore gives the same micro batches whether
  it runs as 1 process with accumulation or as N processes, and a resumed run starts at any step.
* :func:`collate` pads the good samples' ids and labels into ``(B, L)`` tensors, stacks their
  frames, and lists the skipped ones; :func:`model_inputs` gives the model its per-row lists.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from verbnoun.bench import prompts
from verbnoun.data.loader import ClipDataset, ClipItem
from verbnoun.errors import VerbnounError
from verbnoun.model.architecture import IGNORE_INDEX
from verbnoun.model.tokenization import ROLES, SUPERVISION, encode_conversation

REQUIRED_KEYS = ("id", "conversations")
CLASS_KEYS = ("verb_id", "noun_id", "action_id")


class DataError(VerbnounError):
    """A mixture or record that cannot be trained on: names the file and record."""


# ---- mixture ------------------------------------------------------------------------------------


def load_records(mixture: str | Path, seed: int) -> list[dict]:
    """The records of a mixture YAML (SPEC 5), sampled per its strategies (seeded), checked."""
    from verbnoun.train.sft import load_mixture

    records = load_mixture(Path(mixture), seed)
    for number, record in enumerate(records):
        check_record(record, f"{mixture} (record {number})")
    if not records:
        raise DataError(f"{mixture}: the mixture has no records")
    return records


def check_record(record: dict, where: str) -> None:
    """Refuse a record the trainer cannot use, naming it. Turns alternate human, gpt, human,
    gpt, ... (one exchange or several); ``<image>`` may appear only in the first human turn."""
    for key in REQUIRED_KEYS:
        if key not in record:
            raise DataError(f"{where}: no '{key}'")
    turns = record["conversations"]
    expected = ["human", "gpt"] * (len(turns) // 2 if isinstance(turns, list) else 0)
    if (
        not isinstance(turns, list)
        or not turns
        or len(turns) % 2
        or any(not isinstance(t, dict) for t in turns)
        or [t.get("from") for t in turns] != expected
    ):
        raise DataError(
            f"{where} [{record['id']}]: expected alternating human and gpt turns, "
            "starting with human and ending with gpt"
        )
    for number, turn in enumerate(turns):
        if not isinstance(turn.get("value"), str):
            raise DataError(f"{where} [{record['id']}]: turn {number} has no text 'value'")
        if number and prompts.IMAGE_TOKEN in turn["value"]:
            raise DataError(
                f"{where} [{record['id']}]: turn {number} has {prompts.IMAGE_TOKEN}; only the "
                "first human turn may show the video"
            )
    if has_video(record):
        for key in ("video", "start_timestamp", "end_timestamp"):
            if key not in record:
                raise DataError(f"{where} [{record['id']}]: a video record needs '{key}'")
    for key in CLASS_KEYS:
        if not isinstance(record.get(key, -1), int):
            raise DataError(f"{where} [{record['id']}]: '{key}' must be an integer class id")


def has_video(record: dict) -> bool:
    """Whether the record's question shows the video (``<image>`` in the human turn)."""
    return prompts.IMAGE_TOKEN in record["conversations"][0]["value"]


def class_ids(record: dict) -> list[int]:
    """Verb, noun and action class of a record (-1 where unknown)."""
    return [int(record.get(key, -1)) for key in CLASS_KEYS]


def tokenizer_corpus(records: Sequence[dict], limit: int = 5000) -> list[str]:
    """Texts to train a tiny tokenizer on: every prompt string and the records' turns."""
    texts = [
        prompts.chat_prompt(
            prompts.user_turn(prompts.mqa_task(["a b", "c d"]), duration=1.0, n_frames=8)
        )
    ]
    texts += [prompts.MQA, prompts.MQA_PRIOR_ACTIONS, prompts.DIRECT_NARRATION, prompts.CAPTION]
    texts += [prompts.TEMPORAL_DETECTION, prompts.TIME_INSTRUCTION, "0123456789 .:, A. B. C. D. E."]
    step = max(1, len(records) // limit)
    for record in records[::step]:
        texts += [turn["value"] for turn in record["conversations"]]
    return texts


# ---- dataset ------------------------------------------------------------------------------------


class SFTDataset(Dataset):
    """Record ``i`` (or ``(epoch, i)``) -> ``{index, id, video, input_ids, labels, pixel_values,
    actions, error}``. ``jitter``: seed of SPEC 2's frame jitter, drawn anew each epoch
    (``None``: evaluation-style midpoints)."""

    def __init__(
        self,
        records: Sequence[dict],
        processor,
        layout,
        *,
        frames: int,
        size: int | None = None,
        time_instruction: bool = True,
        jitter: int | None = None,
        supervision: str = "original",
    ) -> None:
        if supervision not in SUPERVISION:
            raise DataError(f"data.supervision: {supervision!r} (one of {', '.join(SUPERVISION)})")
        self.records = list(records)
        self.supervision = supervision
        self.jitter = jitter
        self.processor = processor
        self.frames = frames
        self.time_instruction = time_instruction
        items = [
            ClipItem(
                str(r.get("video") or "none"),
                float(r.get("start_timestamp", 0.0)),
                float(r.get("end_timestamp", 1.0)),
                str(r["id"]),
            )
            for r in self.records
        ]
        self.clips = ClipDataset(items, layout, frames, size=size, decoder_threads=1)

    def __len__(self) -> int:
        return len(self.records)

    def jitter_seed(self, epoch: int) -> int | None:
        """The frame jitter seed of an epoch (``None``: no jitter)."""
        return None if self.jitter is None else self.jitter * 1_000_003 + epoch

    def user_turn(self, record: dict) -> str:
        """The human turn, with SPEC 3.1's time instruction after ``<image>\\n`` when asked."""
        from verbnoun.train.sft import with_time_instruction

        text = record["conversations"][0]["value"]
        if self.time_instruction and text.startswith(prompts.IMAGE_TOKEN + "\n"):
            duration = float(record["end_timestamp"]) - float(record["start_timestamp"])
            text = with_time_instruction(text, duration, self.frames)
        return text

    def turns(self, record: dict) -> list[tuple[str, str]]:
        """The record's turns as ``(role, text)``: the first human turn with the time instruction
        (:meth:`user_turn`), the others as stored."""
        turns = record["conversations"]
        texts = [self.user_turn(record)] + [turn["value"] for turn in turns[1:]]
        return [(ROLES[turn["from"]], text) for turn, text in zip(turns, texts, strict=True)]

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        record = self.records[index]
        sample = {"index": index, "id": str(record["id"]), "video": record.get("video")}
        sample["error"] = None
        pixels = None
        if has_video(record):
            self.clips.jitter_seed = self.jitter_seed(epoch)
            clip = self.clips[index]
            if clip["error"] is not None:
                sample["error"] = clip["error"]
                return sample
            pixels = self.processor.pixel_values(clip["frames"].numpy())
        ids, labels = encode_conversation(self.processor, self.turns(record), self.supervision)
        sample.update(
            input_ids=torch.tensor(ids, dtype=torch.long),
            labels=torch.tensor(labels, dtype=torch.long),
            pixel_values=pixels,
            actions=torch.tensor(class_ids(record), dtype=torch.long),
        )
        return sample


def collate(samples: list[dict]) -> dict:
    """A micro batch of the good samples: token ids and labels right-padded into ``(B, L)``
    tensors with their lengths, pixel values stacked ``(B, F, 3, S, S)`` (a list when some rows
    have no video), actions ``(B, 3)``; and the skipped samples with their reasons. Few, large
    tensors keep the hand-over from worker processes cheap."""
    good = [s for s in samples if s["error"] is None]
    skipped = [
        {"id": s["id"], "video": s["video"], "reason": s["error"]} for s in samples if s["error"]
    ]
    batch: dict = {"ids": [s["id"] for s in good], "skipped": skipped, "size": len(samples)}
    if not good:
        return {**batch, "input_ids": None, "labels": None, "lengths": None, "videos": None,
                "actions": None}  # fmt: skip
    lengths = torch.tensor([len(s["input_ids"]) for s in good])
    input_ids = torch.zeros(len(good), int(lengths.max()), dtype=torch.long)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for row, sample in enumerate(good):
        input_ids[row, : lengths[row]] = sample["input_ids"]
        labels[row, : lengths[row]] = sample["labels"]
    pixels = [s["pixel_values"] for s in good]
    shapes = {None if p is None else tuple(p.shape) for p in pixels}
    videos = torch.stack(pixels) if len(shapes) == 1 and None not in shapes else pixels
    actions = torch.stack([s["actions"] for s in good])
    return {**batch, "input_ids": input_ids, "labels": labels, "lengths": lengths,
            "videos": videos, "actions": actions}  # fmt: skip


def model_inputs(batch: dict) -> tuple[list, list, list]:
    """The model's per-row lists (ids, videos, labels) from a collated micro batch."""
    lengths = batch["lengths"].tolist()
    ids = [batch["input_ids"][row, :n] for row, n in enumerate(lengths)]
    labels = [batch["labels"][row, :n] for row, n in enumerate(lengths)]
    return ids, list(batch["videos"]), labels


# ---- order --------------------------------------------------------------------------------------


class GlobalBatchSampler(Sampler[list[tuple[int, int]]]):
    """This rank's micro batches for optimizer steps ``[start, stop)`` of a run, as
    ``(epoch, record index)`` pairs (the epoch sets the frame jitter).

    Epoch ``e`` is a seeded permutation of the records; its step ``s`` covers positions
    ``[s*G, (s+1)*G)`` (``G = micro * accum * world``; the incomplete last global batch is
    dropped). Micro batch ``c`` of that range (``c = a * world + rank``) is accumulation step ``a``
    of ``rank``. One sampler spans the whole run, so one DataLoader (and its workers) does too."""

    def __init__(
        self,
        size: int,
        *,
        micro: int,
        accum: int,
        world: int,
        rank: int,
        seed: int,
        start: int = 0,
        stop: int | None = None,
    ) -> None:
        self.size, self.micro, self.accum, self.world, self.rank = size, micro, accum, world, rank
        self.seed, self.start = seed, start
        self.stop = stop if stop is not None else self.steps_per_epoch

    @property
    def global_batch(self) -> int:
        return self.micro * self.accum * self.world

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per pass over the records."""
        return self.size // self.global_batch

    def order(self, epoch: int) -> np.ndarray:
        """Epoch ``epoch``'s permutation of record indices (the same on every rank)."""
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        orders: dict[int, np.ndarray] = {}
        for step in range(self.start, self.stop):
            epoch, in_epoch = divmod(step, self.steps_per_epoch)
            if epoch not in orders:
                orders = {epoch: self.order(epoch)}
            base = in_epoch * self.global_batch
            for a in range(self.accum):
                chunk = base + (a * self.world + self.rank) * self.micro
                yield [(epoch, int(i)) for i in orders[epoch][chunk : chunk + self.micro]]

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.accum
