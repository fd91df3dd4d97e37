"""``verbnoun export lmms-eval``: an lmms-eval task folder for an MQA question file.

The folder holds, for task ``NAME``:

* ``NAME.yaml``: the task (a local JSON data file, no hub download; ``generate_until`` with
  greedy settings; our two metrics, ``mqa_accuracy`` and ``mqa_unparsed_rate``; the video
  settings in ``lmms_eval_specific_kwargs``);
* ``utils.py``: the functions the YAML names, re-exported from
  :mod:`verbnoun.integrations.lmms_eval.task` (frames per SPEC 2 by our decoder, the question's
  exact prompt, our parser and metrics);
* ``docs.jsonl``: one document per question (its id, its record as ``mqa build`` wrote it, the
  parser's name);
* ``export.json``: the inputs with their sha256, the settings, and the command that runs it.

Run it with ``python -m lmms_eval --include_path OUT --tasks NAME --model llavaction
--model_args checkpoint=DIR`` (or any other lmms-eval model that takes frames).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from verbnoun.cli_options import FramesOpt, Layout, LayoutOpt, SizeOpt
from verbnoun.errors import VerbnounError

TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FUNCTIONS = (
    "doc_to_visual",
    "doc_to_text",
    "doc_to_target",
    "process_results",
    "aggregate_accuracy",
    "aggregate_unparsed_rate",
)


@dataclass(frozen=True)
class ExportSettings:
    """Everything about an exported task that can change its result."""

    videos: str
    layout: str
    frames: int = 8
    size: int | None = None
    time_instruction: bool = True
    parser: str = "strict"
    max_new_tokens: int = 16


def default_task_name(questions: Path) -> str:
    """``llavaction_`` + the question file's stem with anything but letters and digits as ``_``."""
    return "llavaction_" + re.sub(r"[^A-Za-z0-9]+", "_", questions.stem).strip("_").lower()


def _yaml(value: object) -> str:
    """A YAML scalar (JSON is YAML: strings quoted and escaped, null, true/false, numbers)."""
    return json.dumps(value, ensure_ascii=False)


def task_yaml(name: str, docs: Path, settings: ExportSettings, sha256: str) -> str:
    """The text of the task YAML (written by hand: lmms-eval's ``!function`` tags)."""
    kwargs = "\n".join(
        f"    {key}: {_yaml(value)}"
        for key, value in asdict(settings).items()
        if key in ("videos", "layout", "frames", "size", "time_instruction")
    )
    return f"""# lmms-eval task written by `verbnoun export lmms-eval` (see export.json)
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {_yaml(str(docs))}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: !function utils.doc_to_target
process_results: !function utils.process_results
generation_kwargs:
  max_new_tokens: {settings.max_new_tokens}
  temperature: 0
  do_sample: false
  until: []
metric_list:
  - metric: mqa_accuracy
    aggregation: !function utils.aggregate_accuracy
    higher_is_better: true
  - metric: mqa_unparsed_rate
    aggregation: !function utils.aggregate_unparsed_rate
    higher_is_better: false
lmms_eval_specific_kwargs:
  default:
{kwargs}
metadata:
  version: 1
  questions_sha256: {_yaml(sha256)}
"""


UTILS = (
    '"""Task functions of a `verbnoun export lmms-eval` task (they live in the verbnoun\n'
    'package; install it, with its `lmms` extra, where lmms-eval runs)."""\n\n'
    "from verbnoun.integrations.lmms_eval.task import (  # noqa: F401\n"
    + "".join(f"    {name},\n" for name in FUNCTIONS)
    + ")\n"
)


def _check_videos(questions, settings: ExportSettings) -> None:
    """Every question's video must resolve in the layout (an error names the first missing)."""
    from verbnoun.data.layouts import make_layout

    layout = make_layout(settings.layout, settings.videos)
    for video_id in sorted({q.video_id for q in questions}):
        layout.pieces(video_id)


def export_task(
    questions_path: str | Path,
    out: str | Path,
    settings: ExportSettings,
    *,
    name: str | None = None,
) -> Path:
    """Write the task folder for a question file; returns the task YAML's path."""
    from verbnoun import __version__
    from verbnoun.bench.questions import dumps, read_questions
    from verbnoun.fileio import atomic_outputs, json_bytes, sha256_bytes, sha256_file
    from verbnoun.interpret.parsing import get_parser

    questions_path = Path(questions_path)
    out = Path(out)
    name = name or default_task_name(questions_path)
    if not TASK_NAME.match(name):
        raise VerbnounError(f"task name {name!r}: use letters, digits and _ only")
    if settings.frames < 1:
        raise VerbnounError(f"--frames must be at least 1, got {settings.frames}")
    try:
        get_parser(settings.parser)
    except ValueError as error:
        raise VerbnounError(str(error)) from None
    questions = read_questions(questions_path)
    several = next((q.id for q in questions if q.multi_select), None)
    if several is not None:  # the task scores one letter; a set needs verbnoun eval's reading
        raise VerbnounError(
            f"{questions_path}: question {several} is multi-select (several labels per "
            "segment); the lmms-eval task scores one letter: use verbnoun eval (--answer-set)"
        )
    with_prior = [q.id for q in questions if q.prior_actions]
    videos = Path(settings.videos)
    if not videos.is_dir():
        raise VerbnounError(f"{videos}: video folder not found")
    settings = ExportSettings(**{**asdict(settings), "videos": str(videos.resolve())})
    _check_videos(questions, settings)

    out.mkdir(parents=True, exist_ok=True)
    docs = out.resolve() / "docs.jsonl"
    lines = [
        json.dumps({"id": q.id, "llavaction_question": dumps(q), "parser": settings.parser})
        for q in questions
    ]
    docs_bytes = ("\n".join(lines) + "\n").encode("utf-8")
    sha256 = sha256_file(questions_path)
    yaml_path = out / f"{name}.yaml"
    export = json_bytes(
        {
            "kind": "llavaction.export.lmms-eval",
            "task": name,
            "questions": {"path": str(questions_path.resolve()), "sha256": sha256},
            "docs": {"path": str(docs), "sha256": sha256_bytes(docs_bytes), "count": len(lines)},
            "settings": asdict(settings),
            "prior_actions": "not used" if with_prior else "none in the file",
            "metrics": ["mqa_accuracy", "mqa_unparsed_rate"],
            "run": (
                f"python -m lmms_eval --include_path {out.resolve()} --tasks {name} "
                "--model llavaction --model_args checkpoint=DIR,frames="
                f"{settings.frames} --output_path results/"
            ),
            "created_with": __version__,
        },
    )
    files = {
        docs: docs_bytes,
        yaml_path: task_yaml(name, docs, settings, sha256).encode("utf-8"),
        out / "utils.py": UTILS.encode("utf-8"),
        out / "export.json": export,
    }
    with atomic_outputs(*files) as temporaries:  # all four land together, only on success
        for temporary, data in zip(temporaries, files.values(), strict=True):
            temporary.write_bytes(data)
    return yaml_path


def export_lmms_eval(
    questions: Annotated[Path, typer.Option(help="Question file (.jsonl) from `mqa build`.")],
    videos: Annotated[Path, typer.Option(help="Video root folder.")],
    out: Annotated[Path, typer.Option(help="Task folder to write (lmms-eval --include_path).")],
    layout: LayoutOpt = Layout.chunks,
    frames: FramesOpt = 8,
    size: SizeOpt = None,
    time_instruction: Annotated[
        bool, typer.Option(help="Prefix the SPEC 3 time instruction.")
    ] = True,
    parser: Annotated[str, typer.Option(help="Answer parser: strict or original.")] = "strict",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Generation length.")] = 16,
    task: Annotated[
        str | None, typer.Option(help="Task name (default: llavaction_ + the file's stem).")
    ] = None,
) -> None:
    """Write an lmms-eval task for an MQA question file (our frames, prompt, parser, metrics)."""
    settings = ExportSettings(
        videos=str(videos),
        layout=layout.value,
        frames=frames,
        size=size,
        time_instruction=time_instruction,
        parser=parser,
        max_new_tokens=max_new_tokens,
    )
    path = export_task(questions, out, settings, name=task)
    name = path.stem
    typer.echo(
        f"wrote lmms-eval task {name} to {path}\n"
        f"run: python -m lmms_eval --include_path {out} --tasks {name} --model llavaction "
        f"--model_args checkpoint=DIR,frames={frames} --output_path results/"
    )
