"""A content-addressed on-disk store of decoded clips (``verbnoun frames cache``).

Each entry holds the frames of one segment as decoded for one setting: the key is the sha256 of
``(video id, start, stop, N, size, sampling rule, layout)``, the entry one ``.npz`` file
(``frames`` uint8 (N, H, W, 3), ``indices``, ``timestamps``) under ``entries/ab/abcdef....npz``.
Entries are written atomically (temporary file, then ``os.replace``), so an interrupted build leaves
only complete entries; a second build skips them. ``cache.json`` records the settings, counts and
the segments that could not be decoded (with the reason). Loaders read entries with
:meth:`FrameCache.get` instead of decoding the videos; ``np.load`` never unpickles.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from verbnoun.data.sampling import SAMPLING_RULE
from verbnoun.errors import FileError, VerbnounError
from verbnoun.fileio import read_json, require, write_json

MANIFEST = "cache.json"


@dataclass(frozen=True)
class CacheKey:
    """What determines a cached clip's pixels."""

    video_id: str
    start: float
    stop: float
    frames: int
    size: tuple[int, int] | None
    layout: str
    sampling: str = SAMPLING_RULE

    def digest(self) -> str:
        fields = asdict(self)
        fields["start"] = repr(float(self.start))
        fields["stop"] = repr(float(self.stop))
        fields["size"] = list(self.size) if self.size else None
        if self.size:  # resized while decoding: Pillow's bicubic since issue 12 (was swscale's)
            fields["resize"] = "pillow-bicubic"
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedClip:
    frames: np.ndarray
    indices: np.ndarray
    timestamps: np.ndarray


class FrameCache:
    """Read and write entries of a frame store rooted at ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: CacheKey) -> Path:
        digest = key.digest()
        return self.root / "entries" / digest[:2] / f"{digest}.npz"

    def __contains__(self, key: CacheKey) -> bool:
        return self.path(key).is_file()

    def get(self, key: CacheKey) -> CachedClip | None:
        """The cached clip for ``key``, or ``None`` when absent."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return CachedClip(data["frames"], data["indices"], data["timestamps"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise VerbnounError(f"{path}: unreadable cache entry ({error})") from None

    def put(self, key: CacheKey, frames: np.ndarray, indices, timestamps) -> Path:
        """Store a clip atomically; returns the entry's path."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            frames=np.ascontiguousarray(frames, dtype=np.uint8),
            indices=np.asarray(indices, dtype=np.int64),
            timestamps=np.asarray(timestamps, dtype=np.float64),
        )
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, path)
        return path

    def settings(self) -> dict:
        """The settings a cache was built with (from ``cache.json``)."""
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise VerbnounError(f"{manifest}: not a frame cache (no {MANIFEST})")
        settings = require(read_json(manifest), "settings", dict, manifest)
        for key in ("size", "frames", "layout", "sampling"):
            if key not in settings:
                raise FileError(manifest, "missing key", key=f"settings.{key}")
        return settings

    def key_for(self, video_id: str, start: float, stop: float) -> CacheKey:
        """The key of a segment under this cache's recorded settings."""
        s = self.settings()
        size = tuple(s["size"]) if s["size"] else None
        return CacheKey(video_id, start, stop, s["frames"], size, s["layout"], s["sampling"])


def build_cache(
    questions: str | Path,
    videos: str | Path,
    layout: str,
    frames: int,
    out: str | Path,
    *,
    size: int | tuple[int, int] | None = None,
    chunk_seconds: float | None = 15.0,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Decode each question's segment once into the store at ``out``; returns the summary also
    written to ``out/cache.json``. Existing entries are skipped, so a build can be resumed."""
    from verbnoun.bench.questions import read_questions
    from verbnoun.data.layouts import make_layout
    from verbnoun.data.video import VideoReader, target_size

    items = read_questions(questions)
    resize = target_size(size)
    reader = VideoReader(make_layout(layout, videos, chunk_seconds=chunk_seconds))
    cache = FrameCache(out)
    segments: dict[CacheKey, list[str]] = {}
    for question in items:
        key = CacheKey(question.video_id, question.start, question.stop, frames, resize, layout)
        segments.setdefault(key, []).append(question.id)
    counts = {"questions": len(items), "segments": len(segments), "written": 0, "existing": 0}
    skipped = []
    for done, (key, ids) in enumerate(segments.items(), start=1):
        if key in cache:
            counts["existing"] += 1
        else:
            try:
                clip = reader.read(key.video_id, key.start, key.stop, frames, size=resize)
            except VerbnounError as error:
                skipped.append({"questions": ids, "video_id": key.video_id, "reason": str(error)})
            else:
                cache.put(key, clip.frames, clip.indices, clip.timestamps)
                counts["written"] += 1
        if progress is not None:
            progress(done, len(segments))
    counts["skipped"] = len(skipped)
    summary = {
        "settings": {
            "frames": frames,
            "size": list(resize) if resize else None,
            "layout": layout,
            "sampling": SAMPLING_RULE,
            "chunk_seconds": chunk_seconds if layout == "chunks" else None,
        },
        "inputs": {"questions": str(questions), "videos": str(videos)},
        "counts": counts,
        "skipped": skipped,
    }
    write_json(Path(out) / MANIFEST, summary)
    return summary
