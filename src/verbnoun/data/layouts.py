"""Where a video's frames live on disk: one small interface, three layouts.

- ``ek100``: the original EPIC-KITCHENS-100 layout, one file per video,
  ``{root}/{participant}/videos/{video_id}.MP4`` (any fps).
- ``chunks``: LLaVAction's re-encoded layout, ``{root}/{participant}/{video_id}.MP4/{0,15,30,...}.MP4``
  where each file name is the chunk's start in seconds. Frame ``f`` of the video is frame
  ``f - round(chunk_start * fps)`` of its chunk; a segment may cross a chunk boundary.
- ``file``: a user's own single clip.
- ``flat``: one file per video directly under the root, ``{root}/{video_id}.mp4`` (or ``.MP4``),
  as Animal Kingdom ships its clips (``dataset/video/AAACXZTV.mp4``).

A layout only turns a video id into :class:`Piece` s (file + start time in the video); decoding is
the job of :mod:`verbnoun.data.video`. Paths derived from ids always stay under the root: ids
with path separators, ``..`` or other unexpected characters are refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from verbnoun.errors import VideoError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VIDEO_SUFFIXES = (".MP4", ".mp4")
LAYOUTS = ("ek100", "chunks", "file", "flat")


@dataclass(frozen=True)
class Piece:
    """One file holding part (or all) of a video, starting ``start`` seconds into the video."""

    path: Path
    start: float = 0.0


@runtime_checkable
class VideoLayout(Protocol):
    """Turns a video id into the ordered files that hold its frames."""

    name: str

    def pieces(self, video_id: str) -> list[Piece]:
        """The files of a video, in time order; raises :class:`VideoError` when none exist."""
        ...


def check_video_id(video_id: str) -> str:
    """Return ``video_id`` if it is safe to put in a path; raise :class:`VideoError` otherwise."""
    if not isinstance(video_id, str) or not _ID.match(video_id) or ".." in video_id:
        raise VideoError(
            repr(video_id),
            "invalid video id (allowed: letters, digits, '_', '-', '.', no '..' or slashes)",
        )
    return video_id


def participant_of(video_id: str) -> str:
    """The participant of an EK100-style video id: the part before the first underscore."""
    check_video_id(video_id)
    participant, sep, _ = video_id.partition("_")
    if not sep or not participant:
        raise VideoError(
            video_id, "cannot derive the participant (expected PARTICIPANT_NUMBER, e.g. P01_11)"
        )
    return participant


def _under(root: Path, *parts: str) -> Path:
    path = root.joinpath(*parts)
    normal = Path(os.path.normpath(path))
    if not normal.is_relative_to(Path(os.path.normpath(root))):
        raise VideoError(path, f"path leaves the video root {root}")
    return path


def _find(path_without_suffix: Path) -> Path | None:
    for suffix in _VIDEO_SUFFIXES:
        candidate = path_without_suffix.with_name(path_without_suffix.name + suffix)
        if candidate.exists():
            return candidate
    return None


class EK100Layout:
    """``{root}/{participant}/videos/{video_id}.MP4``: one file per video."""

    name = "ek100"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, video_id: str) -> Path:
        """The expected file of a video (``.MP4``, or ``.mp4`` when only that exists)."""
        base = _under(self.root, participant_of(video_id), "videos", video_id)
        return _find(base) or base.with_name(video_id + ".MP4")

    def pieces(self, video_id: str) -> list[Piece]:
        path = self.path(video_id)
        if not path.is_file():
            raise VideoError(path, f"video {video_id} not found (layout ek100)")
        return [Piece(path, 0.0)]


def chunk_name(start: float) -> str:
    """File stem of a chunk starting at ``start`` seconds: ``15`` for 15.0, ``7.5`` for 7.5."""
    return str(int(start)) if float(start).is_integer() else repr(float(start))


class ChunkLayout:
    """``{root}/{participant}/{video_id}.MP4/{start}.MP4``: a folder of chunks per video.

    ``chunk_seconds`` (default 15) is the chunk length: every file name must be a multiple of it,
    so that a mixed-up folder is caught. With ``chunk_seconds=None`` the starts are read from the
    file names whatever they are.
    """

    name = "chunks"

    def __init__(self, root: str | Path, chunk_seconds: float | None = 15.0) -> None:
        if chunk_seconds is not None and not chunk_seconds > 0:
            raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
        self.root = Path(root)
        self.chunk_seconds = chunk_seconds

    def folder(self, video_id: str) -> Path:
        """The folder of a video's chunks."""
        return _under(self.root, participant_of(video_id), video_id + ".MP4")

    def pieces(self, video_id: str) -> list[Piece]:
        folder = self.folder(video_id)
        if not folder.is_dir():
            raise VideoError(folder, f"video {video_id} not found (layout chunks: no folder)")
        starts: dict[float, Path] = {}
        for entry in folder.iterdir():
            if entry.suffix not in _VIDEO_SUFFIXES or entry.name.startswith("."):
                continue
            try:
                start = float(entry.stem)
            except ValueError:
                raise VideoError(entry, "chunk file name is not a start time in seconds") from None
            if self.chunk_seconds is not None:
                k = start / self.chunk_seconds
                if abs(k - round(k)) > 1e-9:
                    raise VideoError(
                        entry,
                        f"chunk start {start:g} s is not a multiple of the chunk length "
                        f"{self.chunk_seconds:g} s (set the chunk length, or read it from the names)",
                    )
            if start in starts:
                raise VideoError(entry, f"two chunks start at {start:g} s")
            starts[start] = entry
        if not starts:
            raise VideoError(folder, f"video {video_id} has no chunks")
        ordered = sorted(starts)
        if ordered[0] != 0:
            raise VideoError(folder, f"the first chunk starts at {ordered[0]:g} s, not 0")
        if self.chunk_seconds is not None:
            expected = [k * self.chunk_seconds for k in range(len(ordered))]
            missing = [chunk_name(s) for s in expected if s not in starts]
            if missing:
                raise VideoError(folder, f"missing chunk(s): {', '.join(missing[:5])}")
        return [Piece(starts[s], s) for s in ordered]


class FlatLayout:
    """``{root}/{video_id}.mp4``: one file per video, no participant folders."""

    name = "flat"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, video_id: str) -> Path:
        """The expected file of a video (``.mp4`` or ``.MP4``)."""
        base = _under(self.root, check_video_id(video_id))
        return _find(base) or base.with_name(video_id + ".mp4")

    def pieces(self, video_id: str) -> list[Piece]:
        path = self.path(video_id)
        if not path.is_file():
            raise VideoError(path, f"video {video_id} not found (layout flat)")
        return [Piece(path, 0.0)]


class FileLayout:
    """A single clip given by its path; the video id is only a label."""

    name = "file"

    def __init__(self, path: str | Path) -> None:
        self.file = Path(path)

    def pieces(self, video_id: str = "") -> list[Piece]:
        if not self.file.is_file():
            raise VideoError(self.file, "video file not found")
        return [Piece(self.file, 0.0)]


def file_video_id(stem: str) -> str:
    """The video id of a video file given by its path (``--layout file``): its stem with every
    character outside ``A-Za-z0-9_.-`` replaced, never empty, never a path."""
    text = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).strip("._") or "video"
    return text.replace("..", "_")


def make_layout(name: str, root: str | Path, *, chunk_seconds: float | None = 15.0) -> VideoLayout:
    """The layout called ``name`` (``ek100``, ``chunks``, ``file`` or ``flat``) rooted at ``root``."""
    if name == "ek100":
        return EK100Layout(root)
    if name == "chunks":
        return ChunkLayout(root, chunk_seconds)
    if name == "file":
        return FileLayout(root)
    if name == "flat":
        return FlatLayout(root)
    raise ValueError(f"unknown layout {name!r} (choose from {', '.join(LAYOUTS)})")
