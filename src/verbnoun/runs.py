"""Run folders: what every resumable run of the tool shares (``eval`` and ``annotate``).

A run folder holds a ``config.json`` and append-only JSON-lines logs of what the model answered,
one record a line, each with a string ``id``. This module owns the guarantees both runners give:

* **Config check-or-write** (:func:`check_or_write_config`): a new folder gets ``config.json``
  (the settings that can change a result, then what is only recorded, then ``created_with``);
  an old one is resumed only with the same settings, else refused in one line that names every
  differing key with its old and new value (``frames: 8 -> 16``; inside a mapping
  ``model_settings.api_protocol: 'chat' -> 'responses'``).
* **Append and flush** (:class:`Appender`): records are written as they arrive, a whole chunk at
  a time, flushed (and, with ``sync``, on disk) before the runner goes on, so a kill loses at
  most the chunk in flight.
* **Torn-tail repair** (:func:`repair_tail`): a last line a kill cut short (no newline) is
  removed before a process appends again; readers (:func:`iter_records`) skip it meanwhile.
  Any other bad line is a one-line error naming the file and line.
* **Shards** (:class:`Shard`): process K of N writes only its own log (``STEM.shard-K-of-N.jsonl``)
  and takes either the ids a stable hash gives it (:meth:`Shard.owns`) or a contiguous stretch of
  an ordered list (:meth:`Shard.stretch`); readers merge every shard file of a folder
  (:func:`merged`), so N processes, or a resumed run with another N, never clobber each other.
* **Fingerprints** (:func:`checkpoint_fingerprint`): a cheap identity of a model folder that a
  config records, so a run is not resumed with other weights under the same path.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from verbnoun import __version__
from verbnoun.errors import FileError, VerbnounError
from verbnoun.fileio import atomic_write_bytes, decode_utf8, parse_json, read_json, write_json

T = TypeVar("T")
CREATED_WITH = "created_with"
_SHOWN = 120  # characters of a value shown in a refusal


# --------------------------------------------------------------------------- shards


@dataclass(frozen=True)
class Shard:
    """Process ``index`` (1-based) of ``count`` working on one run folder."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if not text:
            return cls(1, 1)
        try:
            k, n = (int(part) for part in text.split("/"))
        except ValueError:
            raise VerbnounError(f"--shard must look like K/N, got {text!r}") from None
        if not 1 <= k <= n:
            raise VerbnounError(f"--shard {text}: need 1 <= K <= N")
        return cls(k, n)

    @classmethod
    def from_environment(cls, text: str | None = None) -> Shard:
        """``--shard K/N`` when given, else the process's place under ``torchrun`` (``RANK``,
        ``WORLD_SIZE``), else the whole run."""
        if text:
            return cls.parse(text)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            return cls(int(os.environ.get("RANK", "0")) + 1, world)
        return cls(1, 1)

    def owns(self, record_id: str) -> bool:
        """Whether this shard answers ``record_id`` (a stable hash: the same in every process)."""
        digest = hashlib.sha256(record_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def stretch(self, items: list[T]) -> list[T]:
        """This shard's contiguous stretch of ``items`` (the K-th of N, nearly equal parts)."""
        n = len(items)
        return items[(self.index - 1) * n // self.count : self.index * n // self.count]

    def file_name(self, stem: str) -> str:
        """This shard's log in a run folder: ``STEM.jsonl``, or ``STEM.shard-K-of-N.jsonl``."""
        if self.count == 1:
            return f"{stem}.jsonl"
        return f"{stem}.shard-{self.index}-of-{self.count}.jsonl"

    @property
    def filename(self) -> str:
        """The evaluation's predictions log of this shard."""
        return self.file_name("predictions")

    @property
    def failed_filename(self) -> str:
        """Where this shard records the questions the endpoint could not answer."""
        return self.file_name("failed")


def shard_files(folder: Path, stem: str) -> list[Path]:
    """Every shard's log of ``stem`` in a run folder (``STEM.jsonl`` and ``STEM.shard-*``)."""
    return sorted(folder.glob(f"{stem}*.jsonl"))


# --------------------------------------------------------------------------- config


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def differences(old: dict, new: dict, where: str = "") -> list[str]:
    """``key: old -> new`` for every key whose value differs (mappings compared key by key)."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        name = f"{where}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            lines += differences(a, b, f"{name}.")
        else:
            lines.append(f"{name}: {_shown(a)} -> {_shown(b)}")
    return lines


def _new_out(changed: list[str]) -> str:
    return "use a new --out"


def check_or_write_config(
    folder: Path,
    config: dict,
    *,
    recorded: dict | None = None,
    latest: dict | None = None,
    hint: Callable[[list[str]], str] = _new_out,
) -> None:
    """Write ``folder/config.json`` on a new run; on an old one, refuse any setting that differs.

    ``config``: the settings that can change a result (checked). ``recorded``: written on a new
    run and never checked (where the inputs were). ``latest``: never checked, rewritten as the
    latest run gives it (a ``None`` value is not recorded). ``hint(changed keys)``: what the
    refusal advises. Values are compared as JSON reads them back (a tuple equals its list).
    """
    path = folder / "config.json"
    fresh = json.loads(json.dumps(config))
    recorded = recorded or {}
    given = {k: v for k, v in (latest or {}).items() if v is not None}
    unchecked = {CREATED_WITH, *recorded, *(latest or {})}
    if not path.is_file():
        write_json(path, {**fresh, **recorded, CREATED_WITH: __version__, **given})
        return
    old = read_json(path, expect=dict)
    settings = {k: v for k, v in old.items() if k not in unchecked}
    changed = sorted(k for k in set(settings) | set(fresh) if settings.get(k) != fresh.get(k))
    if changed:
        details = ", ".join(differences(settings, fresh))
        raise VerbnounError(
            f"{path}: this run was made with other settings ({details}); {hint(changed)}"
        )
    if any(old.get(k) != v for k, v in json.loads(json.dumps(given)).items()):
        write_json(path, {**old, **given})


# --------------------------------------------------------------------------- logs


def repair_tail(path: Path) -> None:
    """Cut a last line left incomplete by a kill (no newline) from a log, reading only its end."""
    if not path.is_file():
        return
    with path.open("r+b") as handle:
        size = handle.seek(0, 2)
        step, tail = 4096, b""
        while size and not tail.count(b"\n"):
            begin = max(0, size - len(tail) - step)
            handle.seek(begin)
            tail = handle.read(size - begin)
            if begin == 0:
                break
        cut = tail.rfind(b"\n") + 1  # 0 when the file holds no complete line
        if cut < len(tail):
            handle.truncate(size - (len(tail) - cut))


def iter_records(
    path: Path,
    malformed: str = "malformed record",
    check: Callable[[dict], str | None] | None = None,
    *,
    say_json: bool = False,
) -> Iterator[dict]:
    """The complete records of one log, line by line (a last line cut short by a kill is
    skipped). A line that is not a JSON object with a string ``id`` is an error naming the file
    and line, ``FILE:LINE: MALFORMED`` (with ``say_json``, a line that does not parse says why:
    ``FILE:LINE: not valid JSON: ...``); a problem ``check`` finds reads
    ``FILE:LINE: MALFORMED: problem``."""
    if not path.is_file():
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return
            try:
                record = parse_json(decode_utf8(line, path, first_line=number), path, line=number)
            except FileError:
                if say_json:
                    raise
                raise FileError(path, malformed, line=number) from None
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise FileError(path, malformed, line=number)
            problem = check(record) if check is not None else None
            if problem:
                raise FileError(path, f"{malformed}: {problem}", line=number)
            yield record


def merged(
    folder: Path,
    stem: str,
    malformed: str = "malformed record",
    check: Callable[[dict], str | None] | None = None,
    *,
    say_json: bool = False,
) -> Iterator[dict]:
    """Every complete record of every shard's log of ``stem`` in a run folder, file by file."""
    for path in shard_files(folder, stem):
        yield from iter_records(path, malformed, check, say_json=say_json)


def jsonl_bytes(records: Iterable[dict]) -> bytes:
    """JSON lines as every log holds them (UTF-8, not ASCII-escaped, one ``\\n`` each)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def rewrite(path: Path, records: Iterable[dict]) -> None:
    """Replace a log by ``records`` atomically (readers see the old or the new file whole)."""
    atomic_write_bytes(path, jsonl_bytes(records))


class Appender:
    """A log opened for appending; :meth:`append` writes a chunk of records and flushes it (and,
    with ``sync``, asks the disk to keep it) before returning. Use as a context manager."""

    def __init__(self, path: Path, *, sync: bool = True) -> None:
        self.path = path
        self.sync = sync
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> Appender:
        self._handle = self.path.open("ab")
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @property
    def name(self) -> str:
        return str(self.path)

    def append(self, records: Iterable[dict]) -> None:
        assert self._handle is not None, "use the appender as a context manager"
        data = jsonl_bytes(records)
        if data:
            self._handle.write(data)
        self._handle.flush()
        if self.sync:
            os.fsync(self._handle.fileno())


# --------------------------------------------------------------------------- fingerprints


def checkpoint_fingerprint(directory: Path) -> str:
    """A cheap identity of a model folder: its ``config.json`` and the names and sizes of its
    files (not their bytes: reading gigabytes of weights at every start would cost minutes)."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.is_file():
            digest.update(f"{path.name}:{path.stat().st_size}\n".encode())
    config = directory / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    return digest.hexdigest()
