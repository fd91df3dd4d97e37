"""``make demo``: the whole pipeline on the embedded synthetic kitchen, offline, on a CPU.

Stages compose by files under the run folder (each stage is also a CLI command):

1. ``kitchen/``: the synthetic kitchen, annotations and videos (``llavaction synth``);
2. ``specialist/``: the built-in specialist, with cross-validated train predictions and
   predictions for validation (``llavaction specialist train / predict``);
3. ``mqa/validation-{random,prior-hard,specialist}.jsonl``: benchmarks (``mqa build``),
   summarised in ``benchmarks.html`` / ``benchmarks.json``;
4. ``sft/``: hard MQA (the specialist's top 10, training rule), prior actions and direct
   narration records, and their mixture (``sft build``);
5. ``train/{model,no-action-token}/``: the tiny LLaVAction, and the same without the action
   token (the ablation) (``llavaction train``);
6. ``eval/{random,hard}-{model}/``: baselines, the specialist and both models on the random and
   the hard (specialist) benchmark (``eval``);
7. ``report.html``: all runs compared, with every hard question and its frames (``report``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from llavaction.bench.build import BuildSettings, build_benchmark
from llavaction.bench.questions import read_questions
from llavaction.bench.stats import summarize
from llavaction.fileio import atomic_write_bytes, write_json

BENCHMARKS = {"random": "random", "prior-hard": "prior-hard", "hard": "specialist"}
FRAMES, SIZE = 8, 32


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    videos: int = 40,
    steps: int = 800,
    specialist_epochs: int = 30,
    progress: bool = False,
) -> Path:
    """Run every demo stage into ``out`` (finished stages are reused); returns ``report.html``."""
    from llavaction.data.layouts import make_layout
    from llavaction.data.synth import render_kitchen
    from llavaction.train.specialist import (
        SpecialistSettings,
        predict_specialist,
        train_specialist,
    )

    out = Path(out)
    kitchen = out / "kitchen"
    recipe = {"videos": videos, "seed": seed}
    marker = kitchen / "kitchen.json"
    if not marker.is_file() or json.loads(marker.read_text()) != recipe:
        render_kitchen(kitchen, videos=videos, seed=seed)
        write_json(marker, recipe)
    annotations, video_root = kitchen / "annotations", kitchen / "videos"
    layout = make_layout("chunks", video_root)

    specialist = out / "specialist"
    settings = SpecialistSettings(epochs=specialist_epochs, folds=2, seed=seed)
    if not (specialist / "predictions_validation.json").is_file():
        train_specialist(annotations, layout, specialist, settings)
        predict_specialist(
            specialist,
            annotations,
            layout,
            "validation",
            specialist / "predictions_validation.json",
        )

    questions = _benchmarks(out, annotations, specialist / "predictions_validation.json", seed)
    mixture = _sft(out, annotations, specialist / "predictions_train.json", seed)
    checkpoints = {
        name: _train(out / "train" / name, mixture, video_root, steps, seed, action_tokens)
        for name, action_tokens in (("model", 1), ("no-action-token", 0))
    }
    runs = _evaluate(out, questions, annotations, video_root, specialist, checkpoints, progress)

    from llavaction.evaluate.frames import make_frame_source
    from llavaction.evaluate.report import write_report

    frames_of = make_frame_source(video_root, "chunks", FRAMES, 96)
    hard_first = sorted(runs, key=lambda r: not r.path.name.startswith("hard-"))
    return write_report(
        hard_first,
        out / "report.html",
        frames_of=frames_of,
        title="llavaction demo: synthetic kitchen",
    )


def _benchmarks(out: Path, annotations: Path, predictions: Path, seed: int) -> dict[str, Path]:
    sections, paths = [], {}
    for name, strategy in BENCHMARKS.items():
        path = out / "mqa" / f"validation-{name}.jsonl"
        settings = BuildSettings(split="validation", distractors=strategy, seed=seed)
        manifest = build_benchmark(
            annotations, path, settings, predictions if strategy == "specialist" else None
        )
        questions = read_questions(path)
        paths[name] = path
        sections.append(
            {
                "name": f"validation, {strategy} distractors",
                "questions_file": str(path.relative_to(out)),
                "sha256": manifest["output"]["sha256"],
                "summary": summarize(questions),
                "samples": [
                    {"id": q.id, "prompt": q.prompt(FRAMES), "answer": q.target()}
                    for q in questions[:3]
                ],
            }
        )
    summary = {"run": str(out), "seed": seed, "benchmarks": sections}
    write_json(out / "benchmarks.json", summary)
    atomic_write_bytes(out / "benchmarks.html", render_html(summary).encode("utf-8"))
    return paths


def _sft(out: Path, annotations: Path, train_predictions: Path, seed: int) -> Path:
    import yaml

    from llavaction.train.sft import SftSettings, build_sft

    datasets = []
    for copy in range(3):  # each train segment with three sets of hard distractors
        folder = out / "sft" / f"mqa-{copy}"
        build_sft(
            annotations, folder, SftSettings(seed=seed + copy, tasks=("mqa", "prior")),
            train_predictions,
        )  # fmt: skip
        datasets.append({"json_path": f"mqa-{copy}/mqa.jsonl", "sampling_strategy": "all"})
    build_sft(annotations, out / "sft" / "narration", SftSettings(seed=seed, tasks=("narration",)))
    datasets.append({"json_path": "narration/narration.jsonl", "sampling_strategy": "all"})
    mixture = out / "sft" / "mixture.yaml"
    atomic_write_bytes(mixture, yaml.safe_dump({"datasets": datasets}).encode("utf-8"))
    return mixture


def _train(
    run_dir: Path, mixture: Path, videos: Path, steps: int, seed: int, action_tokens: int
) -> Path:
    from llavaction.train.config import config_from_dict
    from llavaction.train.trainer import train

    checkpoint = run_dir / "checkpoints" / f"step-{steps:06d}"
    if not checkpoint.is_dir():
        config = config_from_dict({
            "run_dir": str(run_dir), "seed": seed, "steps": steps, "batch_size": 8,
            "threads": 1, "progress": False, "log_every": 50, "save_every": 0,
            "model": {"tiny": True, "action_tokens": action_tokens},
            "data": {"mixture": str(mixture), "videos": str(videos), "frames": FRAMES,
                     "size": SIZE, "workers": 2},
            "optim": {"lr": 1e-3, "warmup_steps": 100, "min_lr_ratio": 0.1},
        })  # fmt: skip
        train(config)
    return checkpoint


def _evaluate(out, questions, annotations, videos, specialist, checkpoints, progress) -> list:
    from llavaction.bench.predictions import load_predictions
    from llavaction.data.annotations import EK100Annotations
    from llavaction.evaluate.adapters import PriorAdapter, RandomAdapter, SpecialistAdapter
    from llavaction.evaluate.frames import make_frame_source
    from llavaction.evaluate.local_adapter import LlavactionAdapter
    from llavaction.evaluate.runner import EvalSettings, run_evaluation
    from llavaction.evaluate.score import load_run

    folder = EK100Annotations(annotations)
    vocabulary = folder.action_vocabulary(("train",))
    frequency = {a: vocabulary.frequency(a) for a in vocabulary.actions}
    predictions = load_predictions(specialist / "predictions_validation.json")
    by_id = {s.narration_id: predictions.ranked(s) for s in folder.segments("validation")}
    adapters = {
        "random": RandomAdapter(0),
        "prior": PriorAdapter(frequency, "kitchen:train"),
        "specialist": SpecialistAdapter(by_id, "predictions_validation.json"),
        **{
            name: LlavactionAdapter(path, mode="text", device="cpu")
            for name, path in checkpoints.items()
        },
    }
    source = make_frame_source(videos, "chunks", FRAMES, SIZE)
    runs = []
    for bench in ("random", "hard"):
        for name, adapter in adapters.items():
            run = out / "eval" / f"{bench}-{name}"
            run_evaluation(
                questions[bench], adapter, run, EvalSettings(frames=FRAMES, size=SIZE),
                frame_source=source, progress=progress, annotations=annotations,
            )  # fmt: skip
            runs.append(load_run(run, annotations=annotations))
    return runs


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
