"""Errors that name what went wrong and where (file, line, field or id).

Every error a user can cause with bad input derives from :class:`VerbnounError`; the CLI prints
its message on one line and exits with status 1.
"""

from __future__ import annotations

from pathlib import Path


class VerbnounError(Exception):
    """Base class: a problem with the user's input or settings, reported in one line."""


class AnnotationError(VerbnounError):
    """A malformed annotation file: names the file, and the line and field when known."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class PredictionFileError(VerbnounError):
    """A malformed or incomplete specialist prediction file: names the file and the key."""

    def __init__(self, path: str | Path, message: str, *, key: str | None = None) -> None:
        self.path = str(path)
        self.key = key
        where = self.path if key is None else f"{self.path} [{key}]"
        super().__init__(f"{where}: {message}")


class QuestionFileError(VerbnounError):
    """A malformed or truncated question file: names the file and line."""

    def __init__(self, path: str | Path, message: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


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


class DatasetDescriptionError(VerbnounError):
    """A malformed data set description (YAML): names the file and the key."""

    def __init__(self, path: str | Path, message: str, *, key: str | None = None) -> None:
        self.path = str(path)
        self.key = key
        where = self.path if key is None else f"{self.path} [{key}]"
        super().__init__(f"{where}: {message}")
