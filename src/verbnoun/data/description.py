"""The dataset description: a small YAML file saying where a data set's tables are and how to read them.

:func:`load_description` reads it with ``yaml.safe_load`` and validates every key into frozen
dataclasses (:class:`DatasetDescription` and its parts); every error names the YAML file and the
dotted key. :class:`verbnoun.data.dataset.GenericDataset` reads the tables it describes. The
format is documented in ``docs/guides/your-own-dataset.md`` and shown in ``configs/datasets/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verbnoun.errors import DatasetDescriptionError
from verbnoun.fileio import read_yaml

FORMAT_VERSION = 1
LABELS = ("verb_noun", "action")
TIME_FORMATS = ("seconds", "timestamp", "frames")
CLASS_VALUES = ("id", "key")
TABLE_FORMATS = ("csv", "jsonl")
FIELDS = (
    "id", "video", "participant", "start", "stop", "frame", "narration", "verb", "noun", "action",
)  # fmt: skip
CLASS_FIELDS = ("id", "key", "synonyms", "category")
LABEL_FIELDS = {"verb_noun": ("verb", "noun"), "action": ("action",)}
_TOP_KEYS = (
    "format_version", "name", "labels", "segments", "classes", "splits", "evaluation", "videos",
)  # fmt: skip


@dataclass(frozen=True)
class LabelRows:
    """How the rows of a multi-label table make segments (``segments.multi_label.rows``), as
    facts the reader acts on: ``grouped`` (rows sharing the segment id are one segment, so the
    table needs an id column), ``frames`` (a row per frame: a ``frame`` column instead of start
    and stop, time in frames, the segment spanning its frames, its labels the union of theirs),
    ``same_span`` (the rows of a segment must give the same start and stop) and
    ``repeats_refused`` (a label in two rows of one segment is an error)."""

    name: str
    help: str
    grouped: bool = False
    frames: bool = False
    same_span: bool = False
    repeats_refused: bool = False


# the layouts by name; a new one is one entry (and what the reader does with its facts)
LABEL_ROWS: dict[str, LabelRows] = {
    rows.name: rows
    for rows in (
        LabelRows("one", "a row per segment, its labels listed in the label cell(s)"),
        LabelRows("per_label", "a row per label, rows sharing the segment id are one segment",
                  grouped=True, same_span=True, repeats_refused=True),
        LabelRows("per_frame", "a row per frame (Charades-style frame lists): the segment spans "
                  "its frames, its labels the union of theirs", grouped=True, frames=True),
    )
}  # fmt: skip


@dataclass(frozen=True)
class MultiLabelSpec:
    """Several labels per segment: ``separator`` splits a label cell into a list; ``rows`` names
    how rows make segments (:data:`LABEL_ROWS`: ``one``, ``per_label`` or ``per_frame``)."""

    separator: str = ","
    rows: str = "one"

    @property
    def layout(self) -> LabelRows:
        return LABEL_ROWS[self.rows]


@dataclass(frozen=True)
class TableSpec:
    """How to read a segment table: columns of each field, time format, label values."""

    columns: dict[str, str]
    time: str = "seconds"
    fps: float | None = None
    fps_column: str | None = None
    class_values: str = "id"
    format: str | None = None  # None: from each file's suffix
    delimiter: str = ","  # CSV: the field separator (" " folds runs of spaces)
    header: bool = True  # CSV: False = no header row, columns named "0", "1", ... by position
    multi_label: MultiLabelSpec | None = None  # None: one label per segment


@dataclass(frozen=True)
class ActionListSpec:
    """A table of (narration, classes) rows that defines a split's actions when its segment
    files are only part of it (EK100's train split without ``EPIC_100_train.csv``)."""

    path: str
    columns: dict[str, str]
    class_values: str = "id"


@dataclass(frozen=True)
class SplitSource:
    """One way to read a split: its segment files (and, optionally, an action list)."""

    files: tuple[str, ...]
    action_list: ActionListSpec | None = None


@dataclass(frozen=True)
class ClassSource:
    """A class list: a CSV (the first of ``paths`` that exists), ``inline`` entries, or the
    distinct (id, key) pairs of ``tables`` (segment files that name each row's class, read like
    the segment files). ``columns`` maps ``id``/``key``/``synonyms``/``category`` to the file's
    own column names (a class list whose columns have other names, ids in any order)."""

    kind: str
    paths: tuple[str, ...] = ()
    inline: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tables: tuple[str, ...] = ()
    columns: dict[str, str] | None = None


@dataclass(frozen=True)
class VideoSpec:
    """Where the videos are: a layout of :mod:`verbnoun.data.layouts` under ``root``."""

    layout: str = "chunks"
    root: str = "videos"
    chunk_seconds: float | None = 15.0


@dataclass(frozen=True)
class DatasetDescription:
    """A validated dataset description (see the module docstring and ``configs/datasets``)."""

    path: Path
    name: str
    labels: str
    table: TableSpec
    classes: dict[str, ClassSource]
    splits: dict[str, tuple[SplitSource, ...]]
    unseen_participants: dict[str, Any] = field(default_factory=dict)
    tail: dict[str, Any] = field(default_factory=dict)
    videos: VideoSpec | None = None

    @property
    def label_fields(self) -> tuple[str, ...]:
        return LABEL_FIELDS[self.labels]

    @property
    def multi_label(self) -> bool:
        """True when segments carry several labels (``segments.multi_label``)."""
        return self.table.multi_label is not None


class _Reader:
    """Typed access to a YAML mapping with errors naming the file and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str | None, message: str) -> DatasetDescriptionError:
        return DatasetDescriptionError(self.path, message, key=key)

    def mapping(self, value: Any, key: str, allowed: Sequence[str] | None = None) -> dict:
        if not isinstance(value, dict):
            raise self.error(key, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None:
            unknown = [str(k) for k in value if k not in allowed]
            if unknown:
                raise self.error(
                    key, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
                )
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def choice(self, value: Any, key: str, choices: Sequence[str]) -> str:
        if value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.error(key, "expected a file name or a non-empty list of file names")
        return tuple(self.string(item, f"{key}[{i}]") for i, item in enumerate(items))

    def number(self, value: Any, key: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value < float("inf")
        ):
            raise self.error(key, f"expected a positive number, got {value!r}")
        return float(value)


def load_description(path: str | Path) -> DatasetDescription:
    """Read and validate a dataset description YAML (``yaml.safe_load``).

    Raises :class:`DatasetDescriptionError` naming the file and the key for malformed YAML,
    unknown or missing keys and bad values.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetDescriptionError(path, "dataset description not found")
    data = read_yaml(path, expect=None, error=DatasetDescriptionError)
    r = _Reader(path)
    data = r.mapping(data, "(top level)", _TOP_KEYS)
    for required in ("segments", "classes", "splits"):
        if required not in data:
            raise r.error(required, "missing required key")
    version = data.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise r.error("format_version", f"unsupported version {version!r} (this reads 1)")
    labels = r.choice(data.get("labels", "verb_noun"), "labels", LABELS)
    table = _table_spec(r, data["segments"], labels)
    classes = _class_sources(r, data["classes"], labels)
    splits = _splits(r, data["splits"], labels)
    evaluation = r.mapping(
        data.get("evaluation", {}), "evaluation", ("unseen_participants", "tail")
    )
    unseen = r.mapping(evaluation.get("unseen_participants", {}), "evaluation.unseen_participants")
    tail = r.mapping(evaluation.get("tail", {}), "evaluation.tail", ("verb", "noun", "action"))
    if labels == "action" and set(tail) - {"action"}:
        raise r.error("evaluation.tail", "a single-label data set has only action tail classes")
    if labels == "verb_noun" and "action" in tail:
        raise r.error("evaluation.tail.action", "verb/noun data sets give verb and noun tails")
    videos = None
    if "videos" in data:
        spec = r.mapping(data["videos"], "videos", ("layout", "root", "chunk_seconds"))
        chunk = spec.get("chunk_seconds", 15.0)
        videos = VideoSpec(
            layout=r.choice(spec.get("layout", "chunks"), "videos.layout", _layouts()),
            root=r.string(spec.get("root", "videos"), "videos.root"),
            chunk_seconds=None if chunk in (None, 0) else r.number(chunk, "videos.chunk_seconds"),
        )
    return DatasetDescription(
        path=path,
        name=r.string(data.get("name", path.stem), "name"),
        labels=labels,
        table=table,
        classes=classes,
        splits=splits,
        unseen_participants=dict(unseen),
        tail=dict(tail),
        videos=videos,
    )


def _layouts() -> tuple[str, ...]:
    from verbnoun.data.layouts import LAYOUTS

    return LAYOUTS


def _columns(r: _Reader, value: Any, key: str, allowed: Sequence[str]) -> dict[str, str]:
    columns = r.mapping(value, key, allowed)
    return {str(k): r.string(v, f"{key}.{k}") for k, v in columns.items()}


def _table_spec(r: _Reader, value: Any, labels: str) -> TableSpec:
    keys = ("format", "columns", "time", "fps", "fps_column", "class_values", "delimiter",
            "header", "multi_label")  # fmt: skip
    spec = r.mapping(value, "segments", keys)
    if "columns" not in spec:
        raise r.error("segments.columns", "missing required key")
    columns = _columns(r, spec["columns"], "segments.columns", FIELDS)
    multi = _multi_label(r, spec["multi_label"]) if "multi_label" in spec else None
    per_frame = multi is not None and multi.layout.frames
    times = ("frame",) if per_frame else ("start", "stop")
    wrong = LABEL_FIELDS["action" if labels == "verb_noun" else "verb_noun"]
    for name in ("video", *times, *LABEL_FIELDS[labels]):
        if name not in columns:
            why = "multi_label.rows: per_frame" if name == "frame" else f"labels: {labels}"
            raise r.error(f"segments.columns.{name}", f"missing ({why})")
    for name in wrong:
        if name in columns:
            raise r.error(f"segments.columns.{name}", f"not a column of labels: {labels}")
    if per_frame and ("start" in columns or "stop" in columns):
        raise r.error(
            "segments.columns", "a per_frame table takes a frame column, not start and stop"
        )
    if not per_frame and "frame" in columns:
        raise r.error("segments.columns.frame", "a frame column needs multi_label.rows: per_frame")
    if multi is not None and multi.layout.grouped and "id" not in columns:
        raise r.error("segments.columns.id", "missing (rows of one segment share its id)")
    time = r.choice(spec.get("time", "frames" if per_frame else "seconds"), "segments.time",
                    TIME_FORMATS)  # fmt: skip
    if per_frame and time != "frames":
        raise r.error("segments.time", "a per_frame table counts time in frames")
    fps = r.number(spec["fps"], "segments.fps") if "fps" in spec else None
    fps_column = (
        r.string(spec["fps_column"], "segments.fps_column") if "fps_column" in spec else None
    )
    if time == "frames" and fps is None and fps_column is None:
        raise r.error("segments.fps", "time: frames needs fps (a number) or fps_column")
    delimiter = spec.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise r.error("segments.delimiter", f"expected one character, got {delimiter!r}")
    header = spec.get("header", True)
    if not isinstance(header, bool):
        raise r.error("segments.header", f"expected true or false, got {header!r}")
    return TableSpec(
        columns=columns,
        time=time,
        fps=fps,
        fps_column=fps_column,
        class_values=r.choice(
            spec.get("class_values", "id"), "segments.class_values", CLASS_VALUES
        ),
        format=r.choice(spec["format"], "segments.format", TABLE_FORMATS)
        if "format" in spec
        else None,
        delimiter=delimiter,
        header=header,
        multi_label=multi,
    )


def _multi_label(r: _Reader, value: Any) -> MultiLabelSpec:
    key = "segments.multi_label"
    if value is True:
        return MultiLabelSpec()
    spec = r.mapping(value, key, ("separator", "rows"))
    separator = spec.get("separator", ",")
    if not isinstance(separator, str) or not separator:
        raise r.error(f"{key}.separator", f"expected a non-empty string, got {separator!r}")
    return MultiLabelSpec(
        separator=separator,
        rows=r.choice(spec.get("rows", "one"), f"{key}.rows", tuple(LABEL_ROWS)),
    )


def _class_sources(r: _Reader, value: Any, labels: str) -> dict[str, ClassSource]:
    kinds = LABEL_FIELDS[labels]
    classes = r.mapping(value, "classes", kinds)
    sources = {}
    for kind in kinds:
        key = f"classes.{kind}"
        if kind not in classes:
            raise r.error(key, f"missing (labels: {labels})")
        item = classes[kind]
        if isinstance(item, dict):
            item = r.mapping(item, key, ("path", "inline", "tables", "columns"))
            if sum(name in item for name in ("path", "inline", "tables")) != 1:
                raise r.error(key, "give one of path (a CSV), inline (a list of classes) or tables")
            columns = None
            if "columns" in item:
                if "inline" in item:
                    raise r.error(f"{key}.columns", "inline classes have no columns")
                where = f"{key}.columns"
                columns = _columns(r, item["columns"], where, CLASS_FIELDS)
                if "key" not in columns:
                    raise r.error(f"{where}.key", "missing required key")
            if "tables" in item:
                if columns is None or "id" not in columns:
                    raise r.error(f"{key}.columns", "tables need columns with id and key")
                tables = r.strings(item["tables"], f"{key}.tables")
                sources[kind] = ClassSource(kind, tables=tables, columns=columns)
            elif "path" in item:
                paths = r.strings(item["path"], f"{key}.path")
                sources[kind] = ClassSource(kind, paths=paths, columns=columns)
            else:
                sources[kind] = ClassSource(kind, inline=_inline(r, item["inline"], key))
        else:
            sources[kind] = ClassSource(kind, paths=r.strings(item, key))
    return sources


def _inline(r: _Reader, value: Any, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, list) or not value:
        raise r.error(f"{key}.inline", "expected a non-empty list of classes")
    entries = []
    for i, item in enumerate(value):
        where = f"{key}.inline[{i}]"
        if isinstance(item, str):
            entries.append((r.string(item, where), ()))
            continue
        item = r.mapping(item, where, ("key", "synonyms"))
        synonyms = item.get("synonyms", [])
        if not isinstance(synonyms, list):
            raise r.error(f"{where}.synonyms", "expected a list of strings")
        entries.append(
            (
                r.string(item.get("key"), f"{where}.key"),
                tuple(r.string(s, f"{where}.synonyms[{j}]") for j, s in enumerate(synonyms)),
            )
        )
    return tuple(entries)


def _splits(r: _Reader, value: Any, labels: str) -> dict[str, tuple[SplitSource, ...]]:
    splits = r.mapping(value, "splits")
    if not splits:
        raise r.error("splits", "no split given")
    result = {}
    for name, item in splits.items():
        key = f"splits.{name}"
        if isinstance(item, list) and item and all(isinstance(i, dict | list) for i in item):
            alternatives = [_split_source(r, alt, f"{key}[{i}]", labels) for i, alt in
                            enumerate(item)]  # fmt: skip
        else:
            alternatives = [_split_source(r, item, key, labels)]
        result[str(name)] = tuple(alternatives)
    return result


def _split_source(r: _Reader, value: Any, key: str, labels: str) -> SplitSource:
    if not isinstance(value, dict):
        return SplitSource(files=r.strings(value, key))
    spec = r.mapping(value, key, ("files", "action_list"))
    if "files" not in spec:
        raise r.error(f"{key}.files", "missing required key")
    action_list = None
    if "action_list" in spec:
        where = f"{key}.action_list"
        item = r.mapping(spec["action_list"], where, ("path", "columns", "class_values"))
        if "path" not in item or "columns" not in item:
            raise r.error(where, "needs path and columns")
        columns = _columns(
            r, item["columns"], f"{where}.columns", ("narration", *LABEL_FIELDS[labels])
        )
        for name in ("narration", *LABEL_FIELDS[labels]):
            if name not in columns:
                raise r.error(f"{where}.columns.{name}", "missing")
        action_list = ActionListSpec(
            path=r.string(item["path"], f"{where}.path"),
            columns=columns,
            class_values=r.choice(
                item.get("class_values", "id"), f"{where}.class_values", CLASS_VALUES
            ),
        )
    return SplitSource(files=r.strings(spec["files"], f"{key}.files"), action_list=action_list)
