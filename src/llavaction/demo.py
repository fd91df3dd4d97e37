"""``make demo``: the pipeline on the embedded synthetic kitchen, offline, in under a minute.

Stages compose by files under the run folder:

1. ``kitchen/annotations/`` and ``kitchen/videos/``: the synthetic kitchen (``llavaction synth``);
2. ``mqa/validation-{random,prior-hard}.jsonl`` (+ manifests): benchmarks (``mqa build``),
   summarised in ``benchmarks.html`` / ``benchmarks.json``;
3. ``eval/{random,prior}/``: the blind baselines evaluated on the hard benchmark (``eval``);
4. ``report.html``: the evaluation report with the frames of each question (``report``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from llavaction.bench.build import BuildSettings, build_benchmark
from llavaction.bench.questions import read_questions
from llavaction.bench.stats import summarize
from llavaction.fileio import atomic_write_bytes, write_json

STRATEGIES = ("random", "prior-hard")


def run_demo(out: str | Path, *, seed: int = 0, videos: int = 40, progress: bool = False) -> Path:
    """Run every demo stage into ``out``; returns the path of ``report.html``."""
    from llavaction.data.annotations import EK100Annotations
    from llavaction.data.synth import render_kitchen
    from llavaction.evaluate.adapters import PriorAdapter, RandomAdapter
    from llavaction.evaluate.frames import make_frame_source
    from llavaction.evaluate.report import write_report
    from llavaction.evaluate.runner import EvalSettings, run_evaluation
    from llavaction.evaluate.score import load_run

    out = Path(out)
    kitchen = out / "kitchen"
    recipe = {"videos": videos, "seed": seed}
    marker = kitchen / "kitchen.json"
    if not marker.is_file() or json.loads(marker.read_text()) != recipe:
        render_kitchen(kitchen, videos=videos, seed=seed)
        write_json(marker, recipe)
    annotations = kitchen / "annotations"

    sections = []
    for strategy in STRATEGIES:
        path = out / "mqa" / f"validation-{strategy}.jsonl"
        settings = BuildSettings(split="validation", distractors=strategy, seed=seed)
        manifest = build_benchmark(annotations, path, settings)
        questions = read_questions(path)
        sections.append(
            {
                "name": f"validation, {strategy} distractors",
                "questions_file": str(path.relative_to(out)),
                "sha256": manifest["output"]["sha256"],
                "summary": summarize(questions),
                "samples": [
                    {"id": q.id, "prompt": q.prompt(8), "answer": q.target()} for q in questions[:3]
                ],
            }
        )
    summary = {"run": str(out), "seed": seed, "benchmarks": sections}
    write_json(out / "benchmarks.json", summary)
    atomic_write_bytes(out / "benchmarks.html", render_html(summary).encode("utf-8"))

    hard = out / "mqa" / "validation-prior-hard.jsonl"
    vocabulary = EK100Annotations(annotations).action_vocabulary(("train",))
    frequency = {a: vocabulary.frequency(a) for a in vocabulary.actions}
    baselines = {"random": RandomAdapter(seed), "prior": PriorAdapter(frequency, "kitchen:train")}
    for name, adapter in baselines.items():
        run_evaluation(
            hard, adapter, out / "eval" / name, EvalSettings(), progress=progress,
            annotations=annotations,
        )  # fmt: skip
    runs = [load_run(out / "eval" / name, annotations=annotations) for name in baselines]
    frames_of = make_frame_source(kitchen / "videos", "chunks", 8, 96)
    return write_report(
        runs, out / "report.html", frames_of=frames_of, title="llavaction demo: synthetic kitchen"
    )


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def render_html(report: dict) -> str:
    """The benchmark summary page; every string shown is escaped."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>llavaction benchmarks</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;"
        "text-align:left}pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap}</style>"
        "</head><body>",
        f"<h1>benchmarks of {html.escape(report['run'])}</h1>",
    ]
    for section in report["benchmarks"]:
        summary = section["summary"]
        parts.append(f"<h2>{html.escape(section['name'])}</h2>")
        parts.append(
            f"<p>file: <code>{html.escape(section['questions_file'])}</code>, sha256 "
            f"<code>{html.escape(section['sha256'])}</code></p>"
        )
        scalars = [(k, v) for k, v in summary.items() if not isinstance(v, dict)]
        parts.append(_table(scalars))
        for key in ("correct_letters", "distractor_sources"):
            parts.append(f"<h3>{html.escape(key.replace('_', ' '))}</h3>")
            parts.append(_table(list(summary[key].items())))
        parts.append("<h3>distractors sharing with the answer</h3>")
        parts.append(
            _table([(k, json.dumps(v)) for k, v in summary["distractors_sharing"].items()])
        )
        parts.append("<h3>sample prompts</h3>")
        for sample in section["samples"]:
            parts.append(
                f"<p>{html.escape(sample['id'])}: answer <b>{html.escape(sample['answer'])}</b></p>"
                f"<pre>{html.escape(sample['prompt'])}</pre>"
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)
