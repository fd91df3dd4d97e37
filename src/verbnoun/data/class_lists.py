"""Class lists: the verb, noun or action classes of a data set, read from CSV or segment tables.

:func:`read_class_list` reads a class CSV (EK100's columns, or a ``key`` column with optional
``id``, ``synonyms`` and ``category``); :func:`mapped_classes` reads classes from tables whose
columns a description names (``classes.KIND.columns``), also from the segment tables themselves.
Both return a :class:`~verbnoun.data.ek100.ClassVocabulary` whose ids run 0..n-1; every error
is an :class:`~verbnoun.errors.AnnotationError` naming the file, line and column.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from verbnoun.data.ek100 import CLASS_COLUMNS, ClassVocabulary, read_classes
from verbnoun.data.tables import IMAGE_NAME, cell_text, check_columns, read_table
from verbnoun.errors import AnnotationError

_LIST_SPLIT = re.compile(r"\s*[|;]\s*")


def mapped_classes(
    paths: Sequence[Path],
    tables: Sequence[tuple[list[str] | None, Iterator[tuple[int, dict]]]],
    kind: str,
    columns: dict[str, str],
    yaml_path: Path,
    *,
    shared: bool = False,
) -> ClassVocabulary:
    """Classes from tables whose columns ``columns`` names (``id``, ``key``, optional
    ``synonyms`` and ``category``): ids in any order but together exactly 0..n-1. ``shared``:
    the tables are segment files, a class appears in many rows, always with the same key; else
    each id once. Without an ``id`` column the rows' order gives the ids."""
    entries: dict[int, tuple[str, tuple[str, ...], str, Path, int]] = {}
    for path, (header, rows) in zip(paths, tables, strict=True):
        check_columns(path, header, columns, yaml_path, f"classes.{kind}.columns")
        for line, row in rows:
            key = cell_text(row, columns["key"])
            if not key:
                raise AnnotationError(path, "empty class key", line=line, field=columns["key"])
            if "id" in columns:
                text = IMAGE_NAME.sub("", cell_text(row, columns["id"]))
                if not text.isdigit():
                    raise AnnotationError(
                        path, f"class id must be an integer >= 0, got {text!r}", line=line,
                        field=columns["id"],
                    )  # fmt: skip
                class_id = int(text)
            else:
                class_id = len(entries)
            if class_id in entries:
                first_key, _, _, first_path, first_line = entries[class_id]
                if not shared or first_key != key:
                    raise AnnotationError(
                        path,
                        f"class {class_id} is {key!r} here but {first_key!r} at {first_path} line "
                        f"{first_line}"
                        if first_key != key
                        else f"class id {class_id} twice",
                        line=line,
                        field=columns.get("id", columns["key"]),
                    )
                continue
            cell = cell_text(row, columns["synonyms"]) if "synonyms" in columns else ""
            names = tuple(v for v in _LIST_SPLIT.split(cell) if v) if cell else ()
            category = cell_text(row, columns["category"]) if "category" in columns else ""
            entries[class_id] = (key, names, category, path, line)
    if not entries:
        raise AnnotationError(paths[0], "no classes")
    missing = sorted(set(range(max(entries) + 1)) - set(entries))
    if missing:
        shown = ", ".join(str(m) for m in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise AnnotationError(
            paths[0],
            f"{kind} class ids must cover 0..{max(entries)}; missing {shown}",
            field=columns.get("id"),
        )
    ordered = [entries[i] for i in range(len(entries))]
    source = ", ".join(str(p) for p in paths)
    return ClassVocabulary(
        kind,
        tuple(e[0] for e in ordered),
        tuple(e[1] for e in ordered),
        tuple(e[2] for e in ordered),
        source,
    )


def read_class_list(path: str | Path, kind: str) -> ClassVocabulary:
    """A class CSV: EK100's (``id, key, instances, category``) or a simpler one with a ``key``
    column and optional ``id`` (0, 1, 2, ... in order), ``synonyms`` (``a|b`` or a Python list)
    and ``category`` columns. Errors name the file, line and column."""
    path = Path(path)
    header, rows = read_table(path, "csv")
    if all(c in header for c in CLASS_COLUMNS):  # type: ignore[operator]
        return read_classes(path, kind)
    if "key" not in header:  # type: ignore[operator]
        raise AnnotationError(
            path, f"a class list needs a 'key' column; the file has: {', '.join(header)}", line=1
        )  # type: ignore[arg-type]
    synonyms_column = next((c for c in ("synonyms", "instances") if c in header), None)  # type: ignore[operator]
    keys: list[str] = []
    synonyms: list[tuple[str, ...]] = []
    categories: list[str] = []
    for line, row in rows:
        if "id" in row:
            text = cell_text(row, "id")
            if not text.isdigit() or int(text) != len(keys):
                raise AnnotationError(
                    path,
                    f"class ids must run 0, 1, 2, ...; expected {len(keys)}, got {text!r}",
                    line=line,
                    field="id",
                )
        key = cell_text(row, "key")
        if not key:
            raise AnnotationError(path, "empty class key", line=line, field="key")
        keys.append(key)
        names: list[str] = []
        cell = cell_text(row, synonyms_column) if synonyms_column else ""
        if cell.startswith("["):
            try:
                value = ast.literal_eval(cell)
            except (ValueError, SyntaxError):
                value = None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise AnnotationError(
                    path, f"not a list of strings: {cell!r}", line=line, field=synonyms_column
                )
            names = [v.strip() for v in value if v.strip()]
        elif cell:
            names = [v for v in _LIST_SPLIT.split(cell) if v]
        synonyms.append(tuple(names))
        categories.append(cell_text(row, "category"))
    if not keys:
        raise AnnotationError(path, "no classes")
    return ClassVocabulary(kind, tuple(keys), tuple(synonyms), tuple(categories), str(path))
