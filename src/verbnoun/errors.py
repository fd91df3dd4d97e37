"""Errors that name what went wrong and where (file, line, field or id).

Every error a user can cause with bad input derives from :class:`VerbnounError`; the CLI prints
its message on one line and exits with status 1.
"""

from __future__ import annotations

from pathlib import Path


class VerbnounError(Exception):
    """Base class: a problem with the user's input or settings, reported in one line."""


class FileError(VerbnounError):
    """A file that cannot be used as it is: names the file, and the line, key or field when known.

    The message reads ``FILE:LINE [KEY]: field 'F': what is wrong`` (each part only when known).
    Every reader in :mod:`verbnoun.fileio` raises this class, or the subclass its caller asks for.
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        key: str | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        self.field = field
        where = self.path if line is None else f"{self.path}:{line}"
        if key is not None:
            where += f" [{key}]"
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class AnnotationError(FileError):
    """A malformed annotation file: names the file, and the line and field when known."""


class PredictionFileError(FileError):
    """A malformed or incomplete specialist prediction file: names the file and the key."""


class QuestionFileError(FileError):
    """A malformed or truncated question file: names the file and line."""


class VideoError(VerbnounError):
    """A video that cannot give the frames asked for: names the file (or video id) and segment."""

    def __init__(
        self,
        where: str | Path,
        message: str,
        *,
        segment: tuple[float, float] | None = None,
    ) -> None:
        self.path = str(where)
        self.segment = segment
        span = "" if segment is None else f" [segment {segment[0]:g}-{segment[1]:g} s]"
        super().__init__(f"{self.path}{span}: {message}")


class CheckpointError(VerbnounError):
    """A model checkpoint or model setting that cannot be used: names the file or key."""


class CheckpointFileError(CheckpointError, FileError):
    """A checkpoint file (config, index, safetensors header) that cannot be read: file and key."""


class DatasetDescriptionError(FileError):
    """A malformed data set description (YAML): names the file and the key."""
