"""EPIC-KITCHENS-100 tables: segment CSVs and verb / noun class CSVs, validated row by row.

A *segment* is one annotated action (one row of a segment CSV). Labelled files (train, validation,
the labelled UDA files) carry 15 columns; timestamp-only files (test, unlabelled UDA) carry the
first 8. Every error names the file, the line (1-based, header = line 1) and the field.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from verbnoun.errors import AnnotationError
from verbnoun.fileio import CsvTable, read_csv

TIMESTAMP_COLUMNS: tuple[str, ...] = (
    "narration_id",
    "participant_id",
    "video_id",
    "narration_timestamp",
    "start_timestamp",
    "stop_timestamp",
    "start_frame",
    "stop_frame",
)
LABEL_COLUMNS: tuple[str, ...] = (
    "narration",
    "verb",
    "verb_class",
    "noun",
    "noun_class",
    "all_nouns",
    "all_noun_classes",
)
SEGMENT_COLUMNS: tuple[str, ...] = TIMESTAMP_COLUMNS + LABEL_COLUMNS
CLASS_COLUMNS: tuple[str, ...] = ("id", "key", "instances", "category")

_TIMESTAMP = re.compile(r"^(\d{1,3}):([0-5]\d):([0-5]\d(?:\.\d+)?)$")


def parse_timestamp(text: str) -> float:
    """Parse an EK100 timestamp ``HH:MM:SS.ff`` (fraction optional) into seconds.

    >>> parse_timestamp("00:01:02.50")
    62.5
    """
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"not a HH:MM:SS.ff timestamp: {text!r}")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def time_field(text: str, path: Path, line: int, column: str) -> float:
    """A time cell of a table: seconds (``12.5``) or ``HH:MM:SS.ff``; else an error naming the
    file, line and column."""
    text = text.strip()
    try:
        return parse_timestamp(text) if ":" in text else float(text)
    except ValueError:
        raise AnnotationError(path, f"not a time: {text!r}", line=line, field=column) from None


def action_id(verb_class: int, noun_class: int) -> str:
    """The action id of a (verb, noun) pair: the string ``"{verb_class}:{noun_class}"``."""
    return f"{verb_class}:{noun_class}"


def single_action_class(text: str) -> int | None:
    """The class id of a single-label action id (a plain class id such as ``"7"``), else None.

    Single-label data sets (one action class per segment, no verb/noun split) use the action
    class id itself, as a string, as the action id; verb/noun data sets use ``"verb:noun"``.
    """
    return int(text) if text.isdigit() else None


def parse_action_id(text: str) -> tuple[int, int]:
    """Split an action id ``"v:n"`` into its two class ids; raises ``ValueError`` when malformed."""
    verb, sep, noun = text.partition(":")
    if not sep or not verb.isdigit() or not noun.isdigit():
        raise ValueError(f"not an action id of the form 'verb:noun': {text!r}")
    return int(verb), int(noun)


@dataclass(frozen=True)
class Segment:
    """One annotated action: a row of an EK100 segment CSV.

    ``row`` is the 0-based data-row index in its file (the key of the original prediction files);
    ``line`` the 1-based line number of the row (header = line 1). Class fields are ``None`` in
    timestamp-only files. A single-label segment (a data set with one action class per segment)
    has ``action_class`` set and no verb or noun class; its action id is the class id as a string.
    """

    narration_id: str
    participant_id: str
    video_id: str
    start: float
    stop: float
    start_timestamp: str
    stop_timestamp: str
    start_frame: int
    stop_frame: int
    row: int
    line: int
    source: str
    narration: str | None = None
    verb: str | None = None
    verb_class: int | None = None
    noun: str | None = None
    noun_class: int | None = None
    all_noun_classes: tuple[int, ...] = ()
    action_class: int | None = None
    # multi-label data sets: every action id of the segment in file order (the first is also in
    # the single fields above); empty in single-label data sets
    action_ids: tuple[str, ...] = ()

    @property
    def multi_label(self) -> bool:
        """True for a segment of a data set with several labels per segment."""
        return bool(self.action_ids)

    @property
    def all_action_ids(self) -> tuple[str, ...]:
        """Every action id of the segment: ``action_ids``, or the one ``action_id``."""
        return self.action_ids or (self.action_id,)

    @property
    def labelled(self) -> bool:
        return self.action_class is not None or (
            self.verb_class is not None and self.noun_class is not None
        )

    @property
    def action_id(self) -> str:
        if self.action_class is not None:
            return str(self.action_class)
        if self.verb_class is None or self.noun_class is None:
            raise ValueError(f"segment {self.narration_id} has no verb/noun labels")
        return action_id(self.verb_class, self.noun_class)

    @property
    def duration(self) -> float:
        return self.stop - self.start


@dataclass(frozen=True)
class ClassVocabulary:
    """Verb, noun (or single-label action) classes: id -> key, instances and category."""

    kind: str  # "verb", "noun" or "action"
    keys: tuple[str, ...]
    instances: tuple[tuple[str, ...], ...] = field(repr=False)
    categories: tuple[str, ...] = field(repr=False)
    source: str = ""

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, class_id: object) -> bool:
        return isinstance(class_id, int) and 0 <= class_id < len(self.keys)

    def display(self, class_id: int) -> str:
        """Readable name: verbs as their key (``turn-on``), nouns ``a:b`` -> ``b a``."""
        key = self.keys[class_id]
        if self.kind == "noun":
            return " ".join(reversed(key.split(":")))
        return key


def _read_csv(path: Path, required: Sequence[str]) -> CsvTable:
    """The table of an annotation CSV (see :func:`verbnoun.fileio.read_csv`)."""
    return read_csv(path, required=required, error=AnnotationError)


def read_classes(path: str | Path, kind: str) -> ClassVocabulary:
    """Read an EK100 class CSV (``id, key, instances, category``); ids must be 0..n-1 in order."""
    path = Path(path)
    table = _read_csv(path, CLASS_COLUMNS)
    keys: list[str] = []
    instances: list[tuple[str, ...]] = []
    categories: list[str] = []
    for line, row in table.rows:
        try:
            class_id = int(row["id"])
        except ValueError:
            raise AnnotationError(
                path, f"not an integer: {row['id']!r}", line=line, field="id"
            ) from None
        if class_id != len(keys):
            raise AnnotationError(
                path,
                f"class ids must run 0, 1, 2, ...; expected {len(keys)}, got {class_id}",
                line=line,
                field="id",
            )
        key = row["key"].strip()
        if not key:
            raise AnnotationError(path, "empty class key", line=line, field="key")
        if key in keys:
            raise AnnotationError(
                path,
                f"duplicate class key {key!r} (also class {keys.index(key)})",
                line=line,
                field="key",
            )
        keys.append(key)
        instances.append(tuple(_parse_list(path, line, "instances", row["instances"], str)))
        categories.append(row["category"].strip())
    if not keys:
        raise AnnotationError(path, "no classes")
    return ClassVocabulary(kind, tuple(keys), tuple(instances), tuple(categories), str(path))


def _parse_list(path: Path, line: int, name: str, text: str, kind: type) -> list:
    if kind is int:  # fast path for the common "[2, 5]" form of all_noun_classes
        inner = text.strip()
        if inner.startswith("[") and inner.endswith("]"):
            parts = [p.strip() for p in inner[1:-1].split(",") if p.strip()]
            if all(p.isdigit() for p in parts):
                return [int(p) for p in parts]
    try:
        value = ast.literal_eval(text) if text.strip() else []
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise AnnotationError(path, f"not a list: {text[:80]!r}", line=line, field=name) from None
    if not isinstance(value, list | tuple) or not all(isinstance(v, kind) for v in value):
        raise AnnotationError(
            path, f"not a list of {kind.__name__}: {text!r}", line=line, field=name
        )
    return list(value)


def _int_field(path: Path, line: int, row: dict, name: str) -> int:
    text = row[name]
    try:
        return int(text)
    except (TypeError, ValueError):
        raise AnnotationError(path, f"not an integer: {text!r}", line=line, field=name) from None


def _class_field(
    path: Path, line: int, row: dict, name: str, classes: ClassVocabulary | None
) -> int:
    value = _int_field(path, line, row, name)
    if value < 0 or (classes is not None and value not in classes):
        limit = f" (0..{len(classes) - 1} in {classes.source})" if classes is not None else ""
        raise AnnotationError(
            path, f"unknown {name.split('_')[0]} class id {value}{limit}", line=line, field=name
        )
    return value


def read_segments(
    path: str | Path,
    *,
    verbs: ClassVocabulary | None = None,
    nouns: ClassVocabulary | None = None,
    require_labels: bool = False,
) -> list[Segment]:
    """Read and validate an EK100 segment CSV (labelled or timestamp-only).

    Checks: required columns, one field per column, unique narration ids, ``HH:MM:SS.ff``
    timestamps with stop after start, integer frames with stop after start, and (labelled files)
    class ids inside the given vocabularies. Raises :class:`AnnotationError` naming file, line
    and field.
    """
    path = Path(path)
    table = _read_csv(path, TIMESTAMP_COLUMNS)
    segments: list[Segment] = []
    seen: dict[str, int] = {}
    header = table.header
    labelled = all(name in header for name in LABEL_COLUMNS)
    if require_labels and not labelled:
        missing = [name for name in LABEL_COLUMNS if name not in header]
        raise AnnotationError(
            path, f"labels required but missing column(s): {', '.join(missing)}", line=1
        )
    for index, (line, row) in enumerate(table.rows):
        segments.append(_parse_segment(path, line, index, row, labelled, verbs, nouns))
        nid = segments[-1].narration_id
        if nid in seen:
            raise AnnotationError(
                path,
                f"duplicate narration_id {nid!r} (first on line {seen[nid]})",
                line=line,
                field="narration_id",
            )
        seen[nid] = line
    return segments


def _parse_segment(
    path: Path,
    line: int,
    index: int,
    row: dict,
    labelled: bool,
    verbs: ClassVocabulary | None,
    nouns: ClassVocabulary | None,
) -> Segment:
    for name in ("narration_id", "participant_id", "video_id"):
        if not row[name].strip():
            raise AnnotationError(path, "empty value", line=line, field=name)
    times = {}
    for name in ("start_timestamp", "stop_timestamp"):
        try:
            times[name] = parse_timestamp(row[name])
        except ValueError as error:
            raise AnnotationError(path, str(error), line=line, field=name) from None
    start, stop = times["start_timestamp"], times["stop_timestamp"]
    if stop <= start:
        raise AnnotationError(
            path,
            f"stop {row['stop_timestamp']} is not after start {row['start_timestamp']}",
            line=line,
            field="stop_timestamp",
        )
    start_frame = _int_field(path, line, row, "start_frame")
    stop_frame = _int_field(path, line, row, "stop_frame")
    if start_frame < 0:
        raise AnnotationError(path, f"negative frame {start_frame}", line=line, field="start_frame")
    if stop_frame < start_frame:
        raise AnnotationError(
            path,
            f"stop_frame {stop_frame} is before start_frame {start_frame}",
            line=line,
            field="stop_frame",
        )
    labels: dict = {}
    if labelled:
        narration = row["narration"].strip()
        if not narration:
            raise AnnotationError(path, "empty narration", line=line, field="narration")
        labels = {
            "narration": narration,
            "verb": row["verb"].strip(),
            "verb_class": _class_field(path, line, row, "verb_class", verbs),
            "noun": row["noun"].strip(),
            "noun_class": _class_field(path, line, row, "noun_class", nouns),
            "all_noun_classes": tuple(
                _parse_list(path, line, "all_noun_classes", row["all_noun_classes"], int)
            ),
        }
    return Segment(
        narration_id=row["narration_id"].strip(),
        participant_id=row["participant_id"].strip(),
        video_id=row["video_id"].strip(),
        start=start,
        stop=stop,
        start_timestamp=row["start_timestamp"].strip(),
        stop_timestamp=row["stop_timestamp"].strip(),
        start_frame=start_frame,
        stop_frame=stop_frame,
        row=index,
        line=line,
        source=str(path),
        **labels,
    )


def read_id_list(path: str | Path, column: str) -> list[str]:
    """Read a one-column CSV of ids (tail classes, unseen participants)."""
    table = _read_csv(Path(path), (column,))
    return [row[column].strip() for _, row in table.rows if row[column].strip()]


def read_class_ids(path: str | Path, column: str, classes: ClassVocabulary) -> set[int]:
    """Read a one-column CSV of class ids (EK100's tail classes), each inside ``classes``."""
    path = Path(path)
    ids: set[int] = set()
    for line, row in _read_csv(path, (column,)).rows:
        text = row[column].strip()
        if not text:
            continue
        if not text.isdigit() or int(text) not in classes:
            raise AnnotationError(
                path,
                f"not a {classes.kind} class id (0..{len(classes) - 1}): {text!r}",
                line=line,
                field=column,
            )
        ids.add(int(text))
    return ids
