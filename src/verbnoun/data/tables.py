"""The rows of the tables a dataset description names, and the cell helpers their readers share.

:func:`read_table` reads a CSV or JSONL file with :mod:`verbnoun.fileio` and gives its header
(``None`` for JSONL) and ``(line, row)`` pairs; :func:`check_columns` raises an
:class:`~verbnoun.errors.AnnotationError` naming the file, the column and the YAML key when a
described column is missing; :func:`cell_text` is a cell as stripped text (``""`` when absent).
Used by :mod:`verbnoun.data.dataset` (segment tables) and :mod:`verbnoun.data.class_lists`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from verbnoun.errors import AnnotationError
from verbnoun.fileio import read_csv, read_jsonl


def read_table(
    path: Path, table_format: str | None, delimiter: str = ",", header: bool = True
) -> tuple[list[str] | None, Iterator[tuple[int, dict]]]:
    """The header (CSV; ``None`` for JSONL) and ``(line, row)`` pairs of a table file."""
    kind = table_format or ("jsonl" if path.suffix.lower() in (".jsonl", ".json") else "csv")
    if kind == "jsonl":
        return None, iter(read_jsonl(path, expect=dict, error=AnnotationError))
    table = read_csv(path, error=AnnotationError, delimiter=delimiter, header=header)
    return table.header, iter(table.rows)


def check_columns(
    path: Path, header: list[str] | None, columns: dict[str, str], yaml_path: Path, key: str
) -> None:
    if header is None:
        return
    for name, column in columns.items():
        if column not in header:
            raise AnnotationError(
                path,
                f"column {column!r} (from {key}.{name} in {yaml_path}) not found; the file has: "
                + ", ".join(header),
                line=1,
            )


def cell_text(row: dict, column: str) -> str:
    value = row.get(column)
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


# a frame cell or class id named by its image file ("00012.jpg")
IMAGE_NAME = re.compile(r"(?<=\d)\.(?:jpe?g|png)$", re.IGNORECASE)
