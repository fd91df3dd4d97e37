"""Any action data set, described by a small YAML file, read into the objects EK100 uses.

A *dataset description* says where a data set's segment tables are (CSV or JSONL), which columns
hold what, the class lists, the splits, and how the videos are stored.
:func:`~verbnoun.data.description.load_description` reads and validates it (``yaml.safe_load``; every error names the YAML file and the key);
:class:`GenericDataset` turns it into :class:`~verbnoun.data.ek100.Segment` s,
:class:`~verbnoun.data.ek100.ClassVocabulary` s and an
:class:`~verbnoun.data.annotations.ActionVocabulary`, exactly as
:class:`~verbnoun.data.annotations.EK100Annotations` does for an EK100 folder. Both satisfy
:class:`ActionDataset`, the one interface the benchmark builder, the baselines, the metrics and
the SFT builder use.

Paths in a description are relative to the *root*: the folder given on the command line
(``--annotations DIR`` next to ``--dataset FILE.yaml``) or, without one, the YAML file's folder.

Two kinds of labels:

* ``labels: verb_noun``: a verb and a noun class per segment; the action id is ``"verb:noun"``
  (EK100's convention).
* ``labels: action``: one action class per segment (no verb/noun split). The action id is the
  class id as a string (``"7"``); verb and noun are not applicable (``null`` in question files
  and metrics, ``-1`` in SFT records).

See ``configs/datasets/`` for EPIC-KITCHENS-100 described this way, and
``docs/guides/your-own-dataset.md`` for a worked example.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from verbnoun.data.annotations import ActionVocabulary, EK100Annotations
from verbnoun.data.class_lists import mapped_classes, read_class_list
from verbnoun.data.description import (
    ActionListSpec,
    DatasetDescription,
    SplitSource,
    VideoSpec,
    load_description,
)
from verbnoun.data.ek100 import (
    ClassVocabulary,
    Segment,
    action_id,
    parse_timestamp,
)
from verbnoun.data.labels import LabelCells, action_ids, label_lists, merge_rows
from verbnoun.data.tables import IMAGE_NAME, cell_text, check_columns, read_table
from verbnoun.errors import AnnotationError, DatasetDescriptionError, VerbnounError
from verbnoun.fileio import sha256_file


@runtime_checkable
class ActionDataset(Protocol):
    """What every stage needs from a data set (EK100 folder or generic description)."""

    root: Path
    single_label: bool
    multi_label: bool  # several labels per segment (Segment.action_ids)

    def verbs(self) -> ClassVocabulary: ...

    def nouns(self) -> ClassVocabulary: ...

    def action_classes(self) -> ClassVocabulary | None: ...

    def segments(self, split: str, *, require_labels: bool = False) -> list[Segment]: ...

    def split_paths(self, split: str) -> list[Path]: ...

    def relative(self, path: Path) -> str: ...

    def inputs(self, *extra: str | Path | None) -> list[dict]: ...

    def action_vocabulary(self, splits: Sequence[str] = ...) -> ActionVocabulary: ...

    def tail_classes(self) -> tuple[set[int], set[int]] | None: ...

    def unseen_participants(self, split: str) -> set[str] | None: ...


# ----------------------------------------------------------------------------- timestamps


def format_timestamp(seconds: float) -> str:
    """Seconds as EK100's ``HH:MM:SS.ff``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{secs:05.2f}"


# ----------------------------------------------------------------------------- the data set


class GenericDataset:
    """A data set read through a :class:`DatasetDescription` (satisfies :class:`ActionDataset`)."""

    def __init__(self, description: DatasetDescription, root: str | Path | None = None) -> None:
        self.description = description
        self.root = Path(root) if root is not None else description.path.parent
        if not self.root.is_dir():
            raise VerbnounError(f"{self.root}: data set root folder not found")
        self.single_label = description.labels == "action"
        self.multi_label = description.multi_label
        self._cache: dict = {}
        self.files_read: list[Path] = []

    # -- files

    def path(self, relative: str) -> Path:
        """A file under the root; paths must stay inside it."""
        candidate = self.root / relative
        if not candidate.resolve().is_relative_to(self.root.resolve()):
            raise DatasetDescriptionError(
                self.description.path, f"{relative}: path leaves the data set root {self.root}"
            )
        return candidate

    def relative(self, path: Path) -> str:
        """A file's name relative to the root, as written in manifests."""
        return path.relative_to(self.root).as_posix()

    def inputs(self, *extra: str | Path | None) -> list[dict]:
        """Every file read so far (relative to the root), any ``extra`` files, and the
        description itself, each with its sha256: the ``inputs`` of a manifest."""
        records = [{"path": self.relative(p), "sha256": sha256_file(p)} for p in self.files_read]
        records += [{"path": str(p), "sha256": sha256_file(p)} for p in extra if p is not None]
        path = self.description.path
        records.append({"path": str(path), "sha256": sha256_file(path), "role": "description"})
        return records

    def _record(self, path: Path) -> Path:
        if path not in self.files_read:
            self.files_read.append(path)
        return path

    # -- classes

    def _classes(self, kind: str) -> ClassVocabulary:
        if kind not in self.description.classes:
            labels = self.description.labels
            raise VerbnounError(
                f"{self.description.path}: a data set with labels: {labels} has no {kind} classes"
            )
        if kind not in self._cache:
            source = self.description.classes[kind]
            if source.inline:
                where = f"{self.description.path} [classes.{kind}]"
                keys = tuple(k for k, _ in source.inline)
                synonyms = tuple(s for _, s in source.inline)
                vocabulary = ClassVocabulary(kind, keys, synonyms, ("",) * len(keys), where)
            elif source.tables:
                spec = self.description.table
                found = [
                    self._record(self.path(t)) for t in source.tables if self.path(t).is_file()
                ]
                if not found:
                    raise VerbnounError(
                        f"{self.description.path} [classes.{kind}.tables]: none of "
                        f"{', '.join(source.tables)} exists under {self.root}"
                    )
                tables = [read_table(t, spec.format, spec.delimiter, spec.header) for t in found]
                vocabulary = mapped_classes(
                    found, tables, kind, source.columns or {}, self.description.path, shared=True
                )
            else:
                found = next((p for p in source.paths if self.path(p).is_file()), source.paths[0])
                path = self._record(self.path(found))
                if source.columns:
                    tables = [read_table(path, "csv")]
                    vocabulary = mapped_classes(
                        [path], tables, kind, source.columns, self.description.path
                    )
                else:
                    vocabulary = read_class_list(path, kind)
            if len(set(vocabulary.keys)) != len(vocabulary.keys):
                duplicate = next(k for k, n in Counter(vocabulary.keys).items() if n > 1)
                raise AnnotationError(vocabulary.source, f"duplicate class key {duplicate!r}")
            self._cache[kind] = vocabulary
        return self._cache[kind]

    def verbs(self) -> ClassVocabulary:
        return self._classes("verb")

    def nouns(self) -> ClassVocabulary:
        return self._classes("noun")

    def action_classes(self) -> ClassVocabulary | None:
        """The action classes of a single-label data set (``None`` for verb/noun data sets)."""
        return self._classes("action") if self.single_label else None

    def _labels(self, kind: str) -> LabelCells:
        key = ("labels", kind)
        if key not in self._cache:
            self._cache[key] = LabelCells(self._classes(kind))
        return self._cache[key]

    def display(self, class_ids: dict[str, int]) -> str:
        """Readable text of a segment's classes: ``verb noun`` or the action class's key."""
        return " ".join(
            self._classes(k).display(class_ids[k]) for k in self.description.label_fields
        )

    # -- splits and segments

    def _source(self, split: str) -> SplitSource:
        splits = self.description.splits
        if split not in splits:
            raise VerbnounError(
                f"{self.description.path}: unknown split {split!r}; the description has "
                + ", ".join(splits)
            )
        for source in splits[split]:
            needed = [*source.files, *([source.action_list.path] if source.action_list else [])]
            if all(self.path(name).is_file() for name in needed):
                return source
        tried = "; ".join(", ".join(s.files) for s in splits[split])
        raise VerbnounError(
            f"{self.description.path} [splits.{split}]: no file set of this split exists under "
            f"{self.root} (tried: {tried})"
        )

    def split_paths(self, split: str) -> list[Path]:
        """The segment files of a split (the first alternative whose files all exist)."""
        return [self.path(name) for name in self._source(split).files]

    def segments(self, split: str, *, require_labels: bool = False) -> list[Segment]:
        """All segments of a split, validated; ids unique within the split."""
        key = ("segments", split, require_labels)
        if key not in self._cache:
            segments: list[Segment] = []
            seen: dict[str, tuple[Path, int]] = {}
            for path in self.split_paths(split):
                for segment in self._read_segments(self._record(path), require_labels):
                    if segment.narration_id in seen:
                        first, line = seen[segment.narration_id]
                        raise AnnotationError(
                            path,
                            f"duplicate segment id {segment.narration_id!r} (first in {first} "
                            f"line {line})",
                            line=segment.line,
                            field=self.description.table.columns.get("id", "id"),
                        )
                    seen[segment.narration_id] = (path, segment.line)
                    segments.append(segment)
            self._cache[key] = segments
        return self._cache[key]

    def _read_segments(self, path: Path, require_labels: bool) -> list[Segment]:
        spec = self.description.table
        header, rows = read_table(path, spec.format, spec.delimiter, spec.header)
        columns = dict(spec.columns)
        label_columns = {k: columns[k] for k in self.description.label_fields}
        optional = {k: columns[k] for k in ("narration",) if k in columns}
        structural = {
            k: v for k, v in columns.items() if k not in label_columns and k not in optional
        }
        if spec.fps_column:
            structural["fps_column"] = spec.fps_column
        yaml_path = self.description.path
        check_columns(path, header, structural, yaml_path, "segments.columns")
        labelled_file = header is None or all(c in header for c in label_columns.values())
        if header is not None and labelled_file:
            check_columns(path, header, optional, yaml_path, "segments.columns")
        if require_labels and not labelled_file:
            missing = [c for c in label_columns.values() if c not in header]  # type: ignore[operator]
            raise AnnotationError(
                path, f"labels required but missing column(s): {', '.join(missing)}", line=1
            )
        per_video: Counter = Counter()
        segments = []
        for index, (line, row) in enumerate(rows):
            segments.append(
                self._segment(path, line, index, row, labelled_file, require_labels, per_video)
            )
        multi = spec.multi_label
        if multi is not None and multi.layout.grouped:
            display = None if "narration" in columns else self.action_display
            return merge_rows(path, segments, multi.layout, columns, display)
        return segments

    def _segment(
        self,
        path: Path,
        line: int,
        index: int,
        row: dict,
        labelled_file: bool,
        require_labels: bool,
        per_video: Counter,
    ) -> Segment:
        spec = self.description.table
        columns = spec.columns
        needed = ("video", "frame") if "frame" in columns else ("video", "start", "stop")
        if len(row) < len(needed) or any(columns[n] not in row for n in needed):
            missing = [columns[n] for n in needed if columns[n] not in row]
            raise AnnotationError(path, f"missing key(s) {', '.join(missing)}", line=line)
        video = cell_text(row, columns["video"])
        if not video:
            raise AnnotationError(path, "empty value", line=line, field=columns["video"])
        if "id" in columns:
            segment_id = cell_text(row, columns["id"])
            if not segment_id:
                raise AnnotationError(path, "empty value", line=line, field=columns["id"])
        else:
            segment_id = f"{video}_{per_video[video]}"
        per_video[video] += 1
        participant = cell_text(row, columns["participant"]) if "participant" in columns else ""
        if not participant:
            participant = video.partition("_")[0] or video
        fps = self._fps(path, line, row)
        if "frame" in columns:  # a frame list: the row is one frame, [frame, frame + 1)
            start, start_text, start_frame = self._time(path, line, row, "frame", fps)
            stop = (start_frame + 1) / fps  # type: ignore[operator]
            stop_text, stop_frame = format_timestamp(stop), start_frame + 1
        else:
            start, start_text, start_frame = self._time(path, line, row, "start", fps)
            stop, stop_text, stop_frame = self._time(path, line, row, "stop", fps)
        if stop <= start:
            raise AnnotationError(
                path,
                f"stop {stop_text} is not after start {start_text}",
                line=line,
                field=columns["stop"],
            )
        labels: dict = {}
        label_fields = self.description.label_fields
        has_labels = labelled_file and any(columns[k] in row for k in label_fields)
        if require_labels and not has_labels:
            raise AnnotationError(path, "labels required but missing", line=line)
        if has_labels:
            class_ids = {}
            if spec.multi_label is not None:
                lists = self._label_lists(path, line, row)
                class_ids = {kind: ids[0] for kind, ids in lists.items()}
                labels["action_ids"] = action_ids(lists, self.single_label)
            else:
                for kind in label_fields:
                    column = columns[kind]
                    class_ids[kind] = self._labels(kind).parse(
                        row.get(column), spec.class_values, path, line, column
                    )
            if "narration" in columns:
                narration = cell_text(row, columns["narration"])
                if not narration:
                    raise AnnotationError(
                        path, "empty narration", line=line, field=columns["narration"]
                    )
            elif "action_ids" in labels:
                narration = "; ".join(self.action_display(a) for a in labels["action_ids"])
            else:
                narration = self.display(class_ids)
            if self.single_label:
                labels |= {"narration": narration, "action_class": class_ids["action"]}
            else:
                verbs, nouns = self.verbs(), self.nouns()
                labels |= {
                    "narration": narration,
                    "verb": verbs.keys[class_ids["verb"]],
                    "verb_class": class_ids["verb"],
                    "noun": nouns.keys[class_ids["noun"]],
                    "noun_class": class_ids["noun"],
                }
        return Segment(
            narration_id=segment_id,
            participant_id=participant,
            video_id=video,
            start=start,
            stop=stop,
            start_timestamp=start_text,
            stop_timestamp=stop_text,
            start_frame=start_frame,
            stop_frame=stop_frame,
            row=index,
            line=line,
            source=str(path),
            **labels,
        )

    def _label_lists(self, path: Path, line: int, row: dict) -> dict[str, list[int]]:
        """The class ids of each label field of a multi-label row (:func:`label_lists`)."""
        spec = self.description.table
        return label_lists(
            self._labels, self.description.label_fields, self.single_label, spec, path, line, row
        )

    def action_display(self, action: str) -> str:
        """Readable text of one action id (``"7"`` or ``"3:12"``)."""
        if self.single_label:
            return self._classes("action").display(int(action))
        verb, _, noun = action.partition(":")
        return f"{self.verbs().display(int(verb))} {self.nouns().display(int(noun))}"

    def _fps(self, path: Path, line: int, row: dict) -> float | None:
        spec = self.description.table
        if spec.fps_column is None:
            return spec.fps
        text = cell_text(row, spec.fps_column)
        try:
            fps = float(text)
        except ValueError:
            fps = math.nan
        if not fps > 0 or math.isinf(fps):
            raise AnnotationError(
                path, f"fps must be a positive number, got {text!r}", line=line,
                field=spec.fps_column,
            )  # fmt: skip
        return fps

    def _time(
        self, path: Path, line: int, row: dict, name: str, fps: float | None
    ) -> tuple[float, str, int]:
        """(seconds, HH:MM:SS.ff text, frame or -1) of the start or stop cell."""
        spec = self.description.table
        column = spec.columns[name]
        text = cell_text(row, column)
        try:
            if spec.time == "timestamp":
                seconds = parse_timestamp(text)
                stamp = text
            elif spec.time == "frames":
                text = IMAGE_NAME.sub("", text)  # "00012.jpg": a frame named by its image file
                if not text.isdigit():
                    raise ValueError(f"not a frame number: {text!r}")
                frame = int(text)
                seconds = frame / fps  # type: ignore[operator]
                return seconds, format_timestamp(seconds), frame
            else:
                seconds = float(text)
                if not math.isfinite(seconds) or seconds < 0:
                    raise ValueError(f"not a time in seconds: {text!r}")
                stamp = format_timestamp(seconds)
        except ValueError as error:
            message = str(error)
            if "could not convert" in message:
                message = f"not a time in seconds: {text!r}"
            raise AnnotationError(path, message, line=line, field=column) from None
        frame = round(seconds * fps) if fps is not None else -1
        return seconds, stamp, frame

    # -- the action vocabulary

    def _action_list(self, spec: ActionListSpec) -> list[tuple[str, str]]:
        """(action id, narration) rows of an action list."""
        path = self._record(self.path(spec.path))
        header, rows = read_table(path, None)
        check_columns(path, header, spec.columns, self.description.path, "action_list.columns")
        result = []
        for line, row in rows:
            ids = {
                kind: self._labels(kind).parse(
                    row.get(spec.columns[kind]), spec.class_values, path, line, spec.columns[kind]
                )
                for kind in self.description.label_fields
            }
            narration = cell_text(row, spec.columns["narration"])
            if self.single_label:
                result.append((str(ids["action"]), narration))
            else:
                result.append((action_id(ids["verb"], ids["noun"]), narration))
        return result

    def _labelled_pairs(self, segments: Sequence[Segment]) -> Iterator[tuple[str, str]]:
        """(action id, narration) of every label: a multi-label segment gives each of its
        actions with the action's own display text (its narration describes them all)."""
        for s in segments:
            if s.multi_label:
                yield from ((a, self.action_display(a)) for a in s.action_ids)
            else:
                yield s.action_id, s.narration or ""

    def action_vocabulary(
        self, splits: Sequence[str] = ("train", "validation")
    ) -> ActionVocabulary:
        """Every action seen in the splits, sorted as strings, with narrations and frequencies.

        A split read with an ``action_list`` takes its actions from the list (one count per
        row); its segments add their narrations only when their action is in the vocabulary
        (the counts are then approximate, and the provenance says so).
        """
        splits = tuple(s for s in splits if s in self.description.splits)
        key = ("vocabulary", splits)
        if key in self._cache:
            return self._cache[key]
        counts: dict[str, Counter] = {}
        provenance: dict = {"splits": list(splits), "sources": []}
        partial: list[tuple[str, list[Segment], dict]] = []
        for split in splits:
            source = self._source(split)
            segments = self.segments(split, require_labels=True)
            provenance["sources"] += [self.relative(p) for p in self.split_paths(split)]
            if source.action_list is not None:
                rows = self._action_list(source.action_list)
                _add(counts, rows)
                provenance["sources"].append(source.action_list.path)
                info = {
                    "reason": "the split's actions come from its action list; its segments add "
                    "narrations of those actions only (approximate frequencies)",
                    "action_list": source.action_list.path,
                    "action_list_rows": len(rows),
                    "segments": len(segments),
                }
                provenance.setdefault("action_lists", {})[split] = info
                partial.append((split, segments, info))
            else:
                _add(counts, self._labelled_pairs(segments))
        for _split, segments, info in partial:
            kept = [s for s in segments if s.action_id in counts]
            _add(counts, ((s.action_id, s.narration) for s in kept))
            info["segments_outside_vocabulary"] = len(segments) - len(kept)
            info["actions_outside_vocabulary"] = sorted(
                {s.action_id for s in segments} - set(counts)
            )
        vocabulary = ActionVocabulary.from_counts(counts, provenance)
        self._cache[key] = vocabulary
        return vocabulary

    # -- evaluation breakdowns

    def _id_set(self, value: Any, key: str, kind: str | None) -> set:
        """A set of ids from an inline list or a one-column CSV (first column)."""
        if isinstance(value, list):
            items = [str(v).strip() for v in value]
            source: str | Path = f"{self.description.path} [{key}]"
        else:
            path = self._record(self.path(str(value)))
            header, rows = read_table(path, None)
            column = header[0] if header else ""
            items = [cell_text(row, column) for _, row in rows if cell_text(row, column)]
            source = path
        if kind is None:
            return set(items)
        labels = self._labels(kind)
        values = "id" if all(i.isdigit() for i in items) else "key"
        return {labels.parse(i, values, Path(str(source)), 0, key) for i in items}

    def tail_classes(self) -> tuple[set[int], set[int]] | None:
        """Tail verb and noun class ids, or ``None`` when the description names none."""
        tail = self.description.tail
        if self.single_label or not tail:
            return None
        return (
            self._id_set(tail["verb"], "evaluation.tail.verb", "verb") if "verb" in tail else set(),
            self._id_set(tail["noun"], "evaluation.tail.noun", "noun") if "noun" in tail else set(),
        )

    def tail_actions(self) -> set[int] | None:
        """Tail action classes of a single-label data set, or ``None``."""
        tail = self.description.tail
        if not self.single_label or "action" not in tail:
            return None
        return self._id_set(tail["action"], "evaluation.tail.action", "action")

    def unseen_participants(self, split: str) -> set[str] | None:
        """Participants of a split unseen in training, or ``None`` when not described."""
        unseen = self.description.unseen_participants
        if split not in unseen:
            return None
        return self._id_set(unseen[split], f"evaluation.unseen_participants.{split}", None)

    def video_layout(self, root: str | Path | None = None):
        """The :class:`~verbnoun.data.layouts.VideoLayout` of the description's videos
        (``root`` overrides the folder; relative roots are under the data set root)."""
        from verbnoun.data.layouts import make_layout

        spec = self.description.videos or VideoSpec()
        folder = Path(root) if root is not None else self.root / spec.root
        return make_layout(spec.layout, folder, chunk_seconds=spec.chunk_seconds)


def _add(counts: dict[str, Counter], pairs) -> None:
    for action, narration in pairs:
        counts.setdefault(action, Counter())[narration or ""] += 1


# ----------------------------------------------------------------------------- opening


def open_dataset(
    dataset: str | Path | None = None, annotations: str | Path | None = None
) -> ActionDataset | None:
    """The data set named on a command line.

    ``dataset`` (a description YAML) with ``annotations`` as the root its paths are relative to
    (default: the YAML's folder); or ``annotations`` alone: an EK100 annotation folder, or a
    description YAML. ``None`` when neither is given.
    """
    if dataset is not None:
        return GenericDataset(load_description(dataset), annotations)
    if annotations is None:
        return None
    path = Path(annotations)
    if path.suffix.lower() in (".yaml", ".yml"):
        return GenericDataset(load_description(path))
    return EK100Annotations(path)


def as_dataset(source: ActionDataset | str | Path | None) -> ActionDataset | None:
    """``source`` itself when it is a data set already, else :func:`open_dataset` of it."""
    if source is None or isinstance(source, EK100Annotations | GenericDataset):
        return source  # type: ignore[return-value]
    return open_dataset(annotations=source)


def describe(dataset: ActionDataset) -> dict:
    """What a manifest says about where the data came from."""
    if isinstance(dataset, GenericDataset):
        return {"annotations": str(dataset.root), "dataset": str(dataset.description.path)}
    return {"annotations": str(dataset.root)}
