"""A PyTorch-DataLoader-ready dataset of clips, with workers, bounded prefetch and skip records.

``ClipDataset`` turns ``(video_id, start, stop)`` items into decoded frames. A bad item (missing
file, corrupt video, segment past the end, ...) never crashes the loader and never gets another
clip's frames: its sample carries ``frames=None`` and the reason, :func:`collate_clips` drops it
from the batch and lists it under ``"skipped"``. Importing this module imports torch; importing
:mod:`verbnoun.data.video` does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from verbnoun.data.frame_cache import CacheKey, FrameCache
from verbnoun.data.layouts import VideoLayout
from verbnoun.data.sampling import Jitter
from verbnoun.data.video import PyAVBackend, Size, VideoReader, target_size
from verbnoun.errors import VerbnounError


@dataclass(frozen=True)
class ClipItem:
    """One segment to load; ``id`` names it in skip records (defaults to its position)."""

    video_id: str
    start: float
    stop: float
    id: str = ""


@dataclass(frozen=True)
class Skip:
    index: int
    id: str
    video_id: str
    reason: str


class ClipDataset(Dataset):
    """Frames of each item: a dict with ``frames`` (uint8 tensor (N, H, W, 3)) or ``None``.

    ``jitter_seed`` turns on SPEC 2's training jitter, deterministic per item; ``cache`` (a
    :class:`FrameCache` built with the same settings) is read before decoding;
    ``decoder_threads=1`` suits several worker processes (parallelism across clips).
    """

    def __init__(
        self,
        items: Sequence[ClipItem | tuple[str, float, float]],
        layout: VideoLayout,
        frames: int,
        *,
        size: Size = None,
        jitter_seed: int | None = None,
        cache: FrameCache | str | Path | None = None,
        decoder_threads: int = 0,
    ) -> None:
        self.items = [i if isinstance(i, ClipItem) else ClipItem(*i) for i in items]
        self.layout = layout
        self.frames = frames
        self.size = target_size(size)
        self.jitter_seed = jitter_seed
        self.cache = FrameCache(cache) if isinstance(cache, str | Path) else cache
        self.decoder_threads = decoder_threads  # FFmpeg threads per reader (0: its choice)
        self._reader: VideoReader | None = None  # one per worker process, made on first use

    def __len__(self) -> int:
        return len(self.items)

    def _sample(self, index: int, item: ClipItem) -> dict:
        return {
            "index": index,
            "id": item.id or str(index),
            "video_id": item.video_id,
            "start": item.start,
            "stop": item.stop,
            "frames": None,
            "indices": None,
            "timestamps": None,
            "error": None,
        }

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        sample = self._sample(index, item)
        if self.cache is not None and self.jitter_seed is None:
            key = CacheKey(
                item.video_id, item.start, item.stop, self.frames, self.size, self.layout.name
            )
            cached = self.cache.get(key)
            if cached is not None:
                sample.update(
                    frames=torch.from_numpy(cached.frames),
                    indices=cached.indices,
                    timestamps=cached.timestamps,
                )
                return sample
        if self._reader is None:
            backend = PyAVBackend(threads=self.decoder_threads)
            self._reader = VideoReader(self.layout, backend, size=self.size)
        jitter = None
        if self.jitter_seed is not None:
            jitter = Jitter(rng=np.random.default_rng([self.jitter_seed, index]))
        try:
            clip = self._reader.read(
                item.video_id, item.start, item.stop, self.frames, jitter=jitter
            )
        except VerbnounError as error:
            sample["error"] = str(error)
            return sample
        sample.update(
            frames=torch.from_numpy(clip.frames), indices=clip.indices, timestamps=clip.timestamps
        )
        return sample


def collate_clips(samples: list[dict]) -> dict:
    """Batch the good samples (frames stacked when they share a shape) and list the skipped."""
    good = [s for s in samples if s["error"] is None]
    skipped = [Skip(s["index"], s["id"], s["video_id"], s["error"]) for s in samples if s["error"]]
    frames: torch.Tensor | list[torch.Tensor] = [s["frames"] for s in good]
    if good and len({tuple(f.shape) for f in frames}) == 1:
        frames = torch.stack(frames)
    return {
        "frames": frames,
        "index": [s["index"] for s in good],
        "id": [s["id"] for s in good],
        "video_id": [s["video_id"] for s in good],
        "indices": [s["indices"] for s in good],
        "timestamps": [s["timestamps"] for s in good],
        "skipped": skipped,
    }


def clip_loader(
    dataset: ClipDataset,
    *,
    batch_size: int = 1,
    workers: int = 0,
    prefetch: int = 2,
    shuffle: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset``: ``workers`` processes, each holding at most ``prefetch``
    batches ahead (so memory stays bounded however many clips there are)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        prefetch_factor=prefetch if workers > 0 else None,
        collate_fn=collate_clips,
        persistent_workers=False,
    )


def iterate_clips(loader: DataLoader, skips: list[Skip]) -> Iterator[dict]:
    """Yield the loader's batches, appending every skipped item to ``skips``."""
    for batch in loader:
        skips.extend(batch["skipped"])
        yield batch
