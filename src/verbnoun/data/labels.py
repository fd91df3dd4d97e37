"""A segment's labels from table cells: class ids, action ids, several rows merged into one.

:class:`LabelCells` turns a label cell into class ids of one
:class:`~verbnoun.data.ek100.ClassVocabulary` (integer ids, or keys / synonyms matched
case-insensitively; a cell may hold a list); :func:`label_lists` reads the label lists of a
multi-label row (verbs and nouns paired by position, no action twice); :func:`action_ids` makes
a segment's action ids from its verb/noun (or action) id lists; :func:`merge_rows` joins the rows
that share a segment id (``segments.multi_label.rows``: ``per_label`` or ``per_frame``) into one
:class:`~verbnoun.data.ek100.Segment`. Every bad cell or row raises
:class:`~verbnoun.errors.AnnotationError` naming the file, line and column.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from verbnoun.data.description import LabelRows, TableSpec
from verbnoun.data.ek100 import ClassVocabulary, Segment, action_id
from verbnoun.errors import AnnotationError


class LabelCells:
    """Turns label cells into class ids: integer ids, or keys / synonyms (case-insensitive)."""

    def __init__(self, classes: ClassVocabulary) -> None:
        self.classes = classes
        self._lookup: dict[str, int] | None = None

    def lookup(self) -> dict[str, int]:
        if self._lookup is None:
            table: dict[str, int] = {}
            for class_id, (key, names) in enumerate(
                zip(self.classes.keys, self.classes.instances, strict=True)
            ):
                for name in (key, *names):
                    folded = name.casefold()
                    if table.setdefault(folded, class_id) != class_id:
                        other = self.classes.keys[table[folded]]
                        raise AnnotationError(
                            self.classes.source,
                            f"name {name!r} belongs to two {self.classes.kind} classes "
                            f"({other!r} and {key!r}): labels given as keys are ambiguous",
                        )
            self._lookup = table
        return self._lookup

    @staticmethod
    def _first_of_list(text: str, path: Path, line: int, column: str) -> str:
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise AnnotationError(
                path, f"not a list: {text[:80]!r}", line=line, field=column
            ) from None
        return str(items[0]).strip() if isinstance(items, list) and items else ""

    def parse_list(
        self,
        value: Any,
        values: str,
        path: Path,
        line: int,
        column: str,
        separator: str,
        unique: bool = True,
    ) -> list[int]:
        """Every class id of a cell holding several labels (``separator``-separated text, a JSON
        list, or a ``[3, 4]`` list cell); an empty list is an error, and so is a label given
        twice when ``unique`` (a verb list may repeat a verb: its pairs with the nouns differ)."""
        if isinstance(value, list):
            items = value
        else:
            text = value.strip() if isinstance(value, str) else "" if value is None else str(value)
            if text.startswith("[") and text.endswith("]"):
                try:
                    items = ast.literal_eval(text)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    items = None
                if not isinstance(items, list):
                    raise AnnotationError(
                        path, f"not a list: {text[:80]!r}", line=line, field=column
                    )
            else:
                items = text.split(separator) if text else []
        items = [i.strip() if isinstance(i, str) else i for i in items]
        kind = self.classes.kind
        if not items or all(i in ("", None) for i in items):
            raise AnnotationError(path, f"empty {kind} label list", line=line, field=column)
        ids: list[int] = []
        for item in items:
            if item in ("", None):
                raise AnnotationError(
                    path, f"empty {kind} label in the list {value!r}", line=line, field=column
                )
            class_id = self.parse(str(item), values, path, line, column)
            if unique and class_id in ids:
                raise AnnotationError(
                    path,
                    f"{kind} label {item!r} given twice in one segment",
                    line=line,
                    field=column,
                )
            ids.append(class_id)
        return ids

    def parse(self, value: Any, values: str, path: Path, line: int, column: str) -> int:
        if isinstance(value, list):
            value = value[0] if value else ""
        text = value.strip() if isinstance(value, str) else "" if value is None else str(value)
        if text.startswith("[") and text.endswith("]"):  # a list cell ("[3, 4]"): the first
            first = text[1:-1].partition(",")[0].strip()
            text = first if first.isdigit() else self._first_of_list(text, path, line, column)
        kind = self.classes.kind
        if not text:
            raise AnnotationError(path, f"empty {kind} label", line=line, field=column)
        if values == "id":
            if not text.lstrip("-").isdigit():
                raise AnnotationError(
                    path, f"{kind} class id must be an integer, got {text!r}", line=line,
                    field=column,
                )  # fmt: skip
            class_id = int(text)
            if class_id not in self.classes:
                raise AnnotationError(
                    path,
                    f"unknown {kind} class id {class_id} (0..{len(self.classes) - 1} in "
                    f"{self.classes.source})",
                    line=line,
                    field=column,
                )
            return class_id
        class_id = self.lookup().get(text.casefold())
        if class_id is None:
            raise AnnotationError(
                path,
                f"{kind} label {text!r} is not in the class list {self.classes.source}",
                line=line,
                field=column,
            )
        return class_id


def action_ids(lists: dict[str, list[int]], single_label: bool) -> tuple[str, ...]:
    if single_label:
        return tuple(str(i) for i in lists["action"])
    return tuple(action_id(v, n) for v, n in zip(lists["verb"], lists["noun"], strict=True))


def merge_rows(
    path: Path,
    rows: list[Segment],
    layout: LabelRows,
    columns: dict[str, str],
    display: Callable[[str], str] | None,
) -> list[Segment]:
    """Rows sharing a segment id as one segment (``per_label``: a row per label, the same start
    and stop, each label once; ``per_frame``: a row per frame, labels united, the segment
    spanning its frames), in the order of each segment's first row."""
    groups: dict[str, list[Segment]] = {}
    for row in rows:
        groups.setdefault(row.narration_id, []).append(row)
    merged = []
    for group in groups.values():
        first = group[0]
        ids: list[str] = list(first.action_ids)
        seen_at = dict.fromkeys(ids, first.line)  # each label's first row
        for other in group[1:]:
            if other.video_id != first.video_id:
                raise AnnotationError(
                    path,
                    f"segment {first.narration_id!r} is in video {first.video_id!r} at line "
                    f"{first.line} but in {other.video_id!r} here",
                    line=other.line,
                    field=columns["video"],
                )
            if layout.same_span and (other.start, other.stop) != (first.start, first.stop):
                raise AnnotationError(
                    path,
                    f"segment {first.narration_id!r}: start/stop differ from its row at line "
                    f"{first.line} (rows of one segment share them)",
                    line=other.line,
                    field=columns["start"],
                )
            for action in other.action_ids:
                if action not in ids:
                    ids.append(action)
                    seen_at[action] = other.line
                elif layout.repeats_refused:
                    raise AnnotationError(
                        path,
                        f"label {action} given twice in segment {first.narration_id!r} (first "
                        f"at line {seen_at[action]})",
                        line=other.line,
                    )
        if not ids:  # an unlabelled file: the rows keep no labels
            merged.append(_span(first, group))
            continue
        narration = "; ".join(display(a) for a in ids) if display else first.narration
        merged.append(replace(_span(first, group), action_ids=tuple(ids), narration=narration))
    return merged


def _span(first: Segment, group: list[Segment]) -> Segment:
    """``first`` stretched over every row of its group (per_frame rows)."""
    start = min(group, key=lambda s: s.start)
    stop = max(group, key=lambda s: s.stop)
    return replace(
        first,
        start=start.start,
        start_timestamp=start.start_timestamp,
        start_frame=start.start_frame,
        stop=stop.stop,
        stop_timestamp=stop.stop_timestamp,
        stop_frame=stop.stop_frame,
    )


def label_lists(
    cells: Callable[[str], LabelCells],
    label_fields: Sequence[str],
    single_label: bool,
    spec: TableSpec,
    path: Path,
    line: int,
    row: dict,
) -> dict[str, list[int]]:
    """The class ids of each label field of a multi-label row (verb and noun lists paired
    by position, so of equal length); ``cells(kind)`` reads the cells of one label field."""
    separator = spec.multi_label.separator  # type: ignore[union-attr]
    lists = {}
    for kind in label_fields:
        column = spec.columns[kind]
        lists[kind] = cells(kind).parse_list(
            row.get(column), spec.class_values, path, line, column, separator, single_label
        )
    if not single_label:
        if len(lists["verb"]) != len(lists["noun"]):
            raise AnnotationError(
                path,
                f"{len(lists['verb'])} verbs but {len(lists['noun'])} nouns: a multi-label "
                "row pairs them by position",
                line=line,
                field=spec.columns["noun"],
            )
        pairs = list(zip(lists["verb"], lists["noun"], strict=True))
        twice = next((p for i, p in enumerate(pairs) if p in pairs[:i]), None)
        if twice is not None:
            raise AnnotationError(
                path,
                f"action {action_id(*twice)} given twice in one segment",
                line=line,
                field=spec.columns["verb"],
            )
    return lists
