"""One reader per file format, and writes that never leave a half-written result.

Readers: every file the tool reads goes through one of :func:`read_bytes`, :func:`read_text`,
:func:`read_json`, :func:`read_jsonl`, :func:`read_yaml` or :func:`read_csv`. Each turns every
problem (missing file, folder where a file was expected, permission denied, a byte that is not
UTF-8, JSON/YAML syntax, a key given twice, a truncated last line, a wrong top-level type, ragged
CSV rows) into a :class:`~verbnoun.errors.FileError` (or the subclass the caller passes as
``error=``) whose one-line message names the file and the line or key. A UTF-8 byte-order mark is accepted and dropped, and
CRLF line ends read like LF. :func:`require` reads one key of a parsed mapping with its type.

Writers: :func:`atomic_write_bytes` and :func:`write_json` write one file; :func:`atomic_outputs`
gives temporary paths for several files (a question file and its manifest) and renames them over
the originals only when the whole block succeeded, so a failed run never destroys a finished one;
:func:`atomic_folder` does the same for a whole output folder (an export).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verbnoun.errors import FileError

BOM = "\ufeff"
_TYPE_NAMES = {
    dict: "a JSON object (mapping)",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- reading


def os_problem(error: OSError) -> str:
    """A short phrase for an OS error (no path: the caller's message names the file)."""
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, IsADirectoryError):
        return "is a folder, expected a file"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, NotADirectoryError):
        return "a part of the path is not a folder"
    return (error.strerror or type(error).__name__).lower()


def read_bytes(path: str | Path, *, error: type[FileError] = FileError) -> bytes:
    """The bytes of a file; a missing file, folder or unreadable file is a one-line error."""
    path = Path(path)
    if path.is_dir():
        raise error(path, "is a folder, expected a file")
    try:
        return path.read_bytes()
    except OSError as problem:
        raise error(path, os_problem(problem)) from None


def decode_utf8(
    data: bytes, path: str | Path, *, error: type[FileError] = FileError, first_line: int = 1
) -> str:
    """Decode UTF-8 (a leading BOM dropped); a bad byte is an error naming its line and column."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as problem:
        line = first_line + data.count(b"\n", 0, problem.start)
        column = problem.start - (data.rfind(b"\n", 0, problem.start) + 1) + 1
        byte = data[problem.start : problem.start + 1].hex()
        raise error(
            path, f"not UTF-8: byte 0x{byte} at column {column}; save the file as UTF-8", line=line
        ) from None
    return text[1:] if text.startswith(BOM) else text


def read_text(path: str | Path, *, error: type[FileError] = FileError) -> str:
    """A UTF-8 text file as a string (BOM dropped); errors name the file and the line."""
    return decode_utf8(read_bytes(path, error=error), path, error=error)


def _type_name(expect: type | tuple[type, ...]) -> str:
    kinds = expect if isinstance(expect, tuple) else (expect,)
    return " or ".join(_TYPE_NAMES.get(kind, kind.__name__) for kind in kinds)


def _value_name(value: object) -> str:
    if value is None:
        return "null"
    for kind in (bool, dict, list, str, int, float):
        if isinstance(value, kind):
            return _TYPE_NAMES[kind]
    return type(value).__name__


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """``json`` keeps the last of two equal keys silently; a file that has them is damaged."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


def parse_json(
    text: str,
    path: str | Path,
    *,
    line: int | None = None,
    expect: type | tuple[type, ...] | None = None,
    error: type[FileError] = FileError,
) -> Any:
    """Parse JSON text from ``path`` (at ``line`` for one JSONL line); errors name the place."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as duplicate:
        raise error(path, f"duplicate key {duplicate.key!r} in one object", line=line) from None
    except json.JSONDecodeError as problem:
        where = line if line is not None else problem.lineno
        column = f" at column {problem.colno}" if line is None or problem.lineno == 1 else ""
        raise error(path, f"not valid JSON: {problem.msg}{column}", line=where) from None
    except RecursionError:
        raise error(path, "not valid JSON: nested too deeply", line=line) from None
    if expect is not None and (
        not isinstance(value, expect) or (isinstance(value, bool) and bool not in _tuple(expect))
    ):
        raise error(
            path, f"expected {_type_name(expect)}, found {_value_name(value)}", line=line
        ) from None
    return value


def _tuple(expect: type | tuple[type, ...]) -> tuple[type, ...]:
    return expect if isinstance(expect, tuple) else (expect,)


def read_json(
    path: str | Path,
    *,
    expect: type | tuple[type, ...] | None = dict,
    error: type[FileError] = FileError,
) -> Any:
    """Read a JSON file; by default it must hold a JSON object (``expect=None`` for anything)."""
    text = read_text(path, error=error)
    if not text.strip():
        raise error(path, "empty file, expected JSON")
    return parse_json(text, path, expect=expect, error=error)


def read_jsonl(
    path: str | Path,
    *,
    expect: type | tuple[type, ...] | None = dict,
    error: type[FileError] = FileError,
) -> list[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSON-lines file.

    A last line that does not parse and has no newline is reported as truncated (a write that
    was cut off); any other line that does not parse is named with its number.
    """
    text = read_text(path, error=error)
    lines = text.splitlines(keepends=True)
    rows: list[tuple[int, Any]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rows.append((number, parse_json(raw, path, line=number, expect=expect, error=error)))
        except FileError:
            if number == len(lines) and not raw.endswith(("\n", "\r")):
                raise error(
                    path, "last line is truncated (the file was cut off mid-write)", line=number
                ) from None
            raise
    return rows


def read_yaml(
    path: str | Path,
    *,
    expect: type | tuple[type, ...] | None = dict,
    error: type[FileError] = FileError,
) -> Any:
    """Read YAML with ``yaml.safe_load``; syntax errors (tabs included) name the line."""
    import yaml

    text = read_text(path, error=error)
    try:
        _refuse_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        value = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None) or getattr(problem, "context_mark", None)
        line = None if mark is None else mark.line + 1
        what = getattr(problem, "problem", None) or type(problem).__name__
        if "\\t" in what or "tab" in what:
            what += " (YAML does not allow tabs for indentation)"
        raise error(path, f"not valid YAML: {what}", line=line) from None
    except RecursionError:
        raise error(path, "not valid YAML: nested too deeply") from None
    if expect is not None:
        if value is None:
            raise error(path, f"empty file, expected {_type_name(expect)}")
        if not isinstance(value, expect):
            raise error(path, f"expected {_type_name(expect)}, found {_value_name(value)}")
    return value


def _refuse_duplicate_keys(node: Any) -> None:
    """Raise a YAML error at a key given twice in one mapping of a composed document (safe
    loading keeps the last one silently); ``<<`` merge keys may repeat on purpose."""
    import yaml

    stack = [] if node is None else [node]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key.value!r}", key.start_mark
                        )
                    seen.add((key.tag, key.value))
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


@dataclass(frozen=True)
class CsvTable:
    """A CSV file: its header and ``(line number, row)`` pairs (line of the row's first line)."""

    path: Path
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]


def read_csv(
    path: str | Path,
    *,
    required: Sequence[str] = (),
    error: type[FileError] = FileError,
    delimiter: str = ",",
    header: bool = True,
) -> CsvTable:
    """Read a comma-separated file with a header row; every row must have the header's width.

    Missing required columns are named together with the columns found (a file saved with
    another delimiter shows up here as one long column name). ``delimiter``: another one-character
    separator (``" "`` also folds runs of spaces); ``header=False``: the file has no header row,
    its columns are named by position (``"0"``, ``"1"``, ...) from the first row's width.
    """
    path = Path(path)
    text = read_text(path, error=error)
    if not text.strip():
        raise error(path, "empty file (no header)", line=1)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise error(path, "contains a NUL byte (not a text CSV file)", line=line)
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=delimiter == " "
    )
    try:
        if header:
            names = [name.strip() for name in next(reader)]
        else:  # columns named by position, from the first row's width
            first = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                                    skipinitialspace=delimiter == " "))  # fmt: skip
            names = [str(i) for i in range(len(first))]
        if not any(names):
            raise error(path, "empty header row", line=1)
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise error(path, f"duplicate column(s): {', '.join(duplicated)}", line=1)
        missing = [name for name in required if name not in names]
        if missing:
            found = ", ".join(repr(name) for name in names)
            hint = " (is the file comma-separated?)" if len(names) == 1 else ""
            raise error(
                path,
                f"missing required column(s): {', '.join(missing)}; found {found}{hint}",
                line=1,
            )
        rows: list[tuple[int, dict[str, str]]] = []
        start = reader.line_num + 1
        for values in reader:
            line = start
            start = reader.line_num + 1
            if not values or not any(value.strip() for value in values):
                continue
            if len(values) != len(names):
                where = "as in the header" if header else "as in the first row"
                raise error(
                    path,
                    f"expected {len(names)} fields per row ({where}), found {len(values)}",
                    line=line,
                )
            rows.append((line, dict(zip(names, values, strict=True))))
    except csv.Error as problem:
        raise error(path, f"not valid CSV: {problem}", line=reader.line_num or 1) from None
    return CsvTable(path, names, rows)


def require(
    data: dict,
    key: str,
    expect: type | tuple[type, ...],
    path: str | Path,
    *,
    error: type[FileError] = FileError,
    where: str = "",
) -> Any:
    """``data[key]``, which must exist and be of type ``expect``; errors name the file and key."""
    name = f"{where}.{key}" if where else key
    if not isinstance(data, dict):
        raise error(path, f"expected a JSON object (mapping), found {_value_name(data)}")
    if key not in data:
        raise error(path, "missing key", key=name)
    value = data[key]
    kinds = _tuple(expect)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise error(path, f"expected {_type_name(expect)}, found {_value_name(value)}", key=name)
    return value


# --------------------------------------------------------------------------- writing


def _check_target(path: Path) -> None:
    """Refuse an output path that is a folder, or whose folder is a file, before writing."""
    if path.is_dir():
        raise FileError(path, "is a folder, expected a file to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise FileError(parent, "is a file, expected a folder to write into")
            break


def _temporary(path: Path) -> Path:
    """A hidden temporary name beside ``path`` that keeps its suffix (for suffix-aware writers)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """A CSV file's bytes (UTF-8, ``\\n`` line ends): the header, then the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file so that readers see either the old or the complete new content."""
    path = Path(path)
    _check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def json_bytes(data: object) -> bytes:
    """Pretty, key-ordered as given, UTF-8 JSON with a final newline (what write_json writes)."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_json(path: str | Path, data: object) -> None:
    """Pretty, key-ordered as given, UTF-8 JSON with a final newline, written atomically."""
    atomic_write_bytes(path, json_bytes(data))


@contextlib.contextmanager
def atomic_outputs(*paths: str | Path) -> Iterator[list[Path]]:
    """Temporary paths for ``paths``, renamed over them only if the block ends without error.

    Write every result into the yielded paths (same folders, same suffixes); when the block
    raises, the temporary files are removed and the old outputs are untouched. The renames happen
    one after another in the order given, after the whole block succeeded, so put the file that
    marks completion (a manifest) last.
    """
    targets = [Path(path) for path in paths]
    temporaries = [_temporary(path) for path in targets]
    for path in targets:
        _check_target(path)
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temporaries
        for tmp, path in zip(temporaries, targets, strict=True):
            if tmp.exists():
                os.replace(tmp, path)
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)


def check_replaceable(path: str | Path, *, marker: str) -> None:
    """Refuse an output folder that :func:`atomic_folder` must not replace (call it early)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileError(path, "exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).is_file():
        raise FileError(path, f"folder is not empty and holds no {marker}: choose a new folder")


@contextlib.contextmanager
def atomic_folder(path: str | Path, *, marker: str) -> Iterator[Path]:
    """A temporary folder beside ``path``, put in its place only if the block ends without error.

    An existing ``path`` is replaced only when it is empty or holds ``marker`` (a file an earlier
    run of the same command wrote); any other folder is refused before any work starts, so that
    no unrelated files are ever removed. On failure the temporary folder is removed and the old
    ``path`` is untouched.
    """
    path = Path(path)
    check_replaceable(path, marker=marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if path.exists():
            os.replace(path, old)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
