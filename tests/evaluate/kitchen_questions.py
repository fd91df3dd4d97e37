"""Question files of the synthetic kitchen's script for the evaluate tests (no videos rendered)."""

from __future__ import annotations

from pathlib import Path

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions, write_questions
from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations


def kitchen_questions(root: Path, videos: int, first: int | None = None) -> tuple[Path, Path]:
    """``(annotations, q.jsonl)``: the validation benchmark of a ``videos``-video kitchen (seed 0),
    its first ``first`` questions when given."""
    annotations = write_kitchen_annotations(root / "a", kitchen_script(videos, 0))
    path = root / "q.jsonl"
    if first is None:
        build_benchmark(annotations, path, BuildSettings())
    else:
        build_benchmark(annotations, root / "all.jsonl", BuildSettings())
        write_questions(path, read_questions(root / "all.jsonl")[:first])
    return annotations, path
