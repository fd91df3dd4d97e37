"""Helpers of the damaged-input battery: the finished world, the refusal check, damage tools.

:func:`refused` runs a command in-process and asserts what issue 17 asks of every bad input: a
non-zero exit, no traceback, exactly one ``verbnoun: error:`` line naming the damaged file and
the place (line, key or id), not the last-resort "unexpected" message, and every finished
output given in ``keep`` byte-identical afterwards.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from verbnoun.cli import main

VALIDATION = "EPIC_100_validation.csv"
TRAIN = "EPIC_100_train.csv"
VERBS = "EPIC_100_verb_classes.csv"
NOUNS = "EPIC_100_noun_classes.csv"
TAIL_VERBS = "EPIC_100_tail_verbs.csv"


@dataclass
class World:
    """Finished inputs and outputs every case starts from (copied before damaging)."""

    root: Path
    kitchen: Path  # annotations/, dataset.yaml
    questions: Path
    run: Path
    predictions: Path  # specialist predictions of the validation split, keyed by row
    video: Path
    videos: Path  # an (empty) chunk-layout video root


def write_clip(path: Path, frames: int = 20, fps: int = 10) -> Path:
    """A small grey video (64 px, ``frames`` frames), written by the synthetic kitchen's writer."""
    from verbnoun.data.synth import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    grey = (np.full((64, 64, 3), (i * 12) % 256, dtype=np.uint8) for i in range(frames))
    return write_video(path, grey, fps)


def cli(*args: object) -> int:
    return main([str(a) for a in args])


def snapshot(*paths: Path) -> dict[str, bytes]:
    """Every file under ``paths`` (files or folders) with its bytes."""
    files: dict[str, bytes] = {}
    for path in paths:
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file():
                    files[str(item)] = item.read_bytes()
        elif path.is_file():
            files[str(path)] = path.read_bytes()
    return files


def refused(
    capsys, argv: list, *, file: str | Path, place: str | None, keep: tuple[Path, ...] = ()
) -> str:
    """Run ``argv`` and check the refusal; returns the error line."""
    before = snapshot(*keep)
    assert before or not keep, "nothing to protect: the fixture is wrong"
    code = cli(*argv)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("verbnoun: error:")]
    assert len(errors) == 1, output
    line = errors[0]
    assert "unexpected" not in line, line  # a named error, not the last-resort handler
    assert Path(file).name in line, f"{Path(file).name} not named in: {line}"
    if place is not None:
        assert re.search(place, line), f"{place!r} not in: {line}"
    assert snapshot(*keep) == before, "an earlier finished output changed"
    return line


def copy_kitchen(world: World, tmp_path: Path) -> Path:
    """A private copy of the kitchen's annotations and description."""
    target = tmp_path / "kitchen"
    shutil.copytree(world.kitchen, target)
    return target


def finished_benchmark(world: World, tmp_path: Path) -> tuple[Path, Path]:
    """A finished question file and manifest at the --out of the next build."""
    out = tmp_path / "out" / "bench.jsonl"
    out.parent.mkdir()
    shutil.copy(world.questions, out)
    shutil.copy(world.questions.with_name("q.manifest.json"), out.with_name("bench.manifest.json"))
    return out, out.with_name("bench.manifest.json")


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def set_line(path: Path, number: int, change: Callable[[bytes], bytes]) -> None:
    """Replace line ``number`` (1-based) of a file by ``change(line)``."""
    lines = lines_of(path)
    lines[number - 1] = change(lines[number - 1])
    path.write_bytes(b"".join(lines))


def set_field(path: Path, number: int, column: str, value: str) -> None:
    """Set one CSV cell (simple rows without quoted commas in the columns before it)."""
    header = lines_of(path)[0].decode().rstrip("\r\n").split(",")
    index = header.index(column)

    def change(line: bytes) -> bytes:
        row = next(csv.reader(io.StringIO(line.decode())))
        row[index] = value
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(row)
        return buffer.getvalue().encode()

    set_line(path, number, change)


def header_only(path: Path) -> None:
    path.write_bytes(lines_of(path)[0])


def truncate_mid_line(path: Path) -> None:
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n")
    path.write_bytes(data[: last + 30])


def drop_column(column: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        rows = list(csv.reader(io.StringIO(path.read_text())))
        index = rows[0].index(column)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            [r[:index] + r[index + 1 :] for r in rows]
        )
        path.write_text(buffer.getvalue())

    return damage


def duplicate_id(path: Path) -> None:
    earlier = lines_of(path)[7].split(b",")[0].decode()
    set_field(path, 9, "narration_id", earlier)


def swap_times(path: Path) -> None:
    row = lines_of(path)[5].decode().split(",")
    set_field(path, 6, "start_timestamp", row[5])
    set_field(path, 6, "stop_timestamp", row[4])


def replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def dangling_symlink(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.with_name("gone.csv"))
