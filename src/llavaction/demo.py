"""``make demo``: the pipeline on the embedded synthetic kitchen, offline, in a few seconds.

Stages compose by files under the run folder:

1. ``kitchen/annotations/``: the kitchen's EK100-schema tables (``llavaction.data.kitchen``);
2. ``mqa/validation-{random,prior-hard}.jsonl`` (+ manifests): benchmarks built from them;
3. ``report.json`` and ``report.html``: what the benchmarks contain, with sample prompts.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from llavaction.bench.build import BuildSettings, build_benchmark
from llavaction.bench.questions import read_questions
from llavaction.bench.stats import summarize
from llavaction.data.kitchen import kitchen_script, write_kitchen_annotations
from llavaction.fileio import atomic_write_bytes, write_json

STRATEGIES = ("random", "prior-hard")


def run_demo(out: str | Path, *, seed: int = 0, videos: int = 40) -> Path:
    """Run every demo stage into ``out``; returns the path of ``report.html``."""
    out = Path(out)
    annotations = write_kitchen_annotations(
        out / "kitchen" / "annotations", kitchen_script(videos, seed)
    )
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
    report = {"run": str(out), "seed": seed, "benchmarks": sections}
    write_json(out / "report.json", report)
    report_path = out / "report.html"
    atomic_write_bytes(report_path, render_html(report).encode("utf-8"))
    return report_path


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def render_html(report: dict) -> str:
    """A self-contained HTML page; every string shown is escaped."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>llavaction demo report</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;"
        "text-align:left}pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap}</style></head><body>",
        f"<h1>llavaction demo: {html.escape(report['run'])}</h1>",
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
