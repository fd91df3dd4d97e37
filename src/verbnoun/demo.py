"""``make demo``: the whole pipeline on the embedded synthetic kitchen, offline, on a CPU.

Stages compose by files under the run folder (each stage is also a CLI command):

1. ``kitchen/``: the synthetic kitchen, annotations and videos (``verbnoun synth``);
2. ``specialist/``: the built-in specialist, with cross-validated train predictions and
   predictions for validation (``verbnoun specialist train / predict``);
3. ``mqa/validation-{random,prior-hard,specialist}.jsonl``: benchmarks (``mqa build``),
   summarised in ``benchmarks.html`` / ``benchmarks.json``;
4. ``sft/``: MQA records with prior actions and direct narration records, and their mixtures
   (``sft build``): ``mixture.yaml`` with hard distractors (the specialist's cross-validated
   top 10, training rule), ``mixture-random.yaml`` the same with random distractors;
5. ``train/{model,random-mqa}/``: the tiny LLaVAction trained on hard MQA, and the same recipe
   trained on random-distractor MQA (does hard training data help?) (``verbnoun train``);
   ``train/model/no-action-token/``: the action-token ablation at test time (the trained model
   with its action token left out of the input; a model trained without it would double the
   demo's training time);
6. ``eval/{random,hard}-{name}/``: baselines, the specialist, both models and the ablation on
   the random and the hard (specialist) benchmark (``eval``), option-likelihood scoring;
7. ``summary.json``: the table of accuracies and the paper's pattern checked on it: hard
   distractors are harder than random ones, and training on hard MQA helps (paired McNemar test
   against the random-MQA model, and the margin over the prior baseline);
8. ``report.html``: all runs compared, with every hard question and its frames (``report``).
9. ``annotate/{specialist,model}/``: two held-out videos annotated whole (1 s windows every
   0.5 s) by the specialist and by the trained model, scored against the truth: ethogram,
   timeline, segments and frame accuracy / edit / F1@k in ``summary.json`` (``annotate``).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, replace
from pathlib import Path

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions
from verbnoun.bench.stats import summarize
from verbnoun.errors import VerbnounError
from verbnoun.fileio import atomic_write_bytes, write_json

BENCHMARKS = {"random": "random", "prior-hard": "prior-hard", "hard": "specialist"}
# the trained models, by the distractors of their SFT MQA records: the same recipe otherwise
MODELS = {"model": "specialist", "random-mqa": "random"}
STAGES = ["kitchen", "specialist", "benchmarks", *(f"train {m}" for m in MODELS), "ablation",
          "evaluate", "annotate", "report"]  # fmt: skip


@dataclass(frozen=True)
class DemoRecipe:
    """The demo's data and training recipe (``benchmarks/bench_demo_seeds.py`` checks it over
    seeds). 4 frames of 32 px and batches of 16: more clips per second than 8 frames and
    batches of 8 on a CPU."""

    videos: int = 40
    steps: int = 800
    batch: int = 16
    frames: int = 4
    size: int = 32
    lr: float = 1e-3
    warmup: int = 100
    specialist_epochs: int = 30
    mqa_copies: int = 3  # each train segment with this many sets of distractors


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    recipe: DemoRecipe | None = None,
    progress: bool = False,
    **overrides,
) -> Path:
    """Run every demo stage into ``out`` (finished stages are reused); returns ``report.html``.

    ``recipe`` (default :class:`DemoRecipe`), with ``overrides`` of its fields (``videos=6``)."""
    from verbnoun.data.layouts import make_layout
    from verbnoun.data.synth import render_kitchen
    from verbnoun.progress import Stages
    from verbnoun.train.specialist import (
        SpecialistSettings,
        predict_specialist,
        train_specialist,
    )

    r = replace(recipe or DemoRecipe(), **overrides)
    out = Path(out)
    stages = Stages("demo", STAGES, enabled=progress)
    kitchen = out / "kitchen"
    made = {"videos": r.videos, "seed": seed}
    marker = kitchen / "kitchen.json"
    with stages("kitchen", f"{r.videos} videos, seed {seed}"):
        if not marker.is_file() or json.loads(marker.read_text()) != made:
            render_kitchen(kitchen, videos=r.videos, seed=seed)
            write_json(marker, made)
    annotations, video_root = kitchen / "annotations", kitchen / "videos"
    layout = make_layout("chunks", video_root)

    specialist = out / "specialist"
    settings = SpecialistSettings(epochs=r.specialist_epochs, folds=2, seed=seed)
    with stages("specialist", f"{r.specialist_epochs} epochs, 2 folds"):
        if not (specialist / "predictions_validation.json").is_file():
            train_specialist(annotations, layout, specialist, settings, progress=progress)
            predict_specialist(
                specialist,
                annotations,
                layout,
                "validation",
                specialist / "predictions_validation.json",
            )

    with stages("benchmarks"):
        questions = _benchmarks(
            out, annotations, specialist / "predictions_validation.json", seed, r.frames
        )
    checkpoints = {}
    for name, distractors in MODELS.items():
        with stages(f"train {name}", f"{distractors} distractors, {r.steps} steps"):
            mixture = _sft(
                out, annotations, specialist / "predictions_train.json", seed, distractors, r
            )
            checkpoints[name] = _train(out / "train" / name, mixture, video_root, r, seed, progress)
    with stages("ablation"):
        checkpoints["no-action-token"] = without_action_token(
            checkpoints["model"], out / "train" / "model" / "no-action-token"
        )
    with stages("evaluate", "12 runs"):
        runs = _evaluate(
            out, questions, annotations, video_root, specialist, checkpoints, r, progress
        )
    summary = summarize_demo(runs)
    with stages("annotate", "held-out videos, whole"):
        summary["annotate"] = annotate_stage(
            out, kitchen, specialist, checkpoints["model"], r, progress
        )
    write_json(out / "summary.json", summary)
    if progress:
        for line in summary_lines(summary):
            print(line)

    from verbnoun.evaluate.frames import make_frame_source
    from verbnoun.evaluate.report import write_report

    frames_of = make_frame_source(video_root, "chunks", r.frames, 96)
    hard_first = sorted(runs, key=lambda run: not run.path.name.startswith("hard-"))
    with stages("report"):
        return write_report(
            hard_first,
            out / "report.html",
            frames_of=frames_of,
            frame_settings={"frames": r.frames, "size": 96, "layout": "chunks"},
            title="verbnoun demo: synthetic kitchen",
            claims=demo_claims(),
            dataset=annotations,
            progress=progress,
        )


def _benchmarks(
    out: Path, annotations: Path, predictions: Path, seed: int, frames: int
) -> dict[str, Path]:
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
                    {"id": q.id, "prompt": q.prompt(frames), "answer": q.target()}
                    for q in questions[:3]
                ],
            }
        )
    summary = {"run": str(out), "seed": seed, "benchmarks": sections}
    write_json(out / "benchmarks.json", summary)
    atomic_write_bytes(out / "benchmarks.html", render_html(summary).encode("utf-8"))
    return paths


def _sft(
    out: Path,
    annotations: Path,
    train_predictions: Path,
    seed: int,
    distractors: str,
    recipe: DemoRecipe,
) -> Path:
    """MQA (+ prior actions) records with ``distractors``, in ``recipe.mqa_copies`` seeds, plus
    the direct narration records; their mixture (``mixture.yaml`` for the specialist's)."""
    import yaml

    from verbnoun.train.sft import SftSettings, build_sft

    sft = out / "sft"
    datasets = []
    for copy in range(recipe.mqa_copies):
        name = f"mqa-{copy}" if distractors == "specialist" else f"mqa-{distractors}-{copy}"
        settings = SftSettings(seed=seed + copy, tasks=("mqa", "prior"), distractors=distractors)
        predictions = train_predictions if distractors == "specialist" else None
        build_sft(annotations, sft / name, settings, predictions)
        datasets.append({"json_path": f"{name}/mqa.jsonl", "sampling_strategy": "all"})
    if not (sft / "narration" / "narration.jsonl").is_file():
        build_sft(annotations, sft / "narration", SftSettings(seed=seed, tasks=("narration",)))
    datasets.append({"json_path": "narration/narration.jsonl", "sampling_strategy": "all"})
    mixture = sft / (
        "mixture.yaml" if distractors == "specialist" else f"mixture-{distractors}.yaml"
    )
    atomic_write_bytes(mixture, yaml.safe_dump({"datasets": datasets}).encode("utf-8"))
    return mixture


def _train(
    run_dir: Path, mixture: Path, videos: Path, recipe: DemoRecipe, seed: int, progress: bool
) -> Path:
    """Train the tiny LLaVAction on ``mixture`` (reused when its last checkpoint exists)."""
    from verbnoun.train.config import config_from_dict
    from verbnoun.train.trainer import train

    checkpoint = run_dir / "checkpoints" / f"step-{recipe.steps:06d}"
    if not checkpoint.is_dir():
        config = config_from_dict({
            "run_dir": str(run_dir), "seed": seed, "steps": recipe.steps,
            "batch_size": recipe.batch, "threads": 1, "progress": progress, "log_every": 50,
            "save_every": 0, "model": {"tiny": True, "action_tokens": 1},
            "data": {"mixture": str(mixture), "videos": str(videos), "frames": recipe.frames,
                     "size": recipe.size, "workers": 2},
            "optim": {"lr": recipe.lr, "warmup_steps": recipe.warmup, "min_lr_ratio": 0.1},
        })  # fmt: skip
        train(config)
    return checkpoint


def without_action_token(checkpoint: Path, out: Path) -> Path:
    """The action-token ablation of a trained model, at test time: the same weights and
    tokenizer with the learned action token left out of the input (``action_tokens: 0``, and
    no verb/noun/action heads, which read that token).
    Written once to ``out``; the difference to the model shows how much its answers use the
    token (training a second model without it would double the demo's training time)."""
    from dataclasses import replace

    from verbnoun.model.architecture import LlavactionForCausalLM
    from verbnoun.model.checkpoint import load_model, save_checkpoint
    from verbnoun.model.tokenization import load_tokenizer

    if (out / "config.json").is_file():
        return out
    model = load_model(checkpoint)
    # the verb/noun/action heads read the action token: they go with it (unused in answering)
    ablated = LlavactionForCausalLM(replace(model.config, action_tokens=0, action_types=None))
    dropped = ("model.action_supervision", "verb_head.", "noun_head.", "action_head.")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(dropped)}
    missing, unexpected = ablated.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise VerbnounError(
            f"{checkpoint}: cannot drop the action token (missing {missing}, unexpected "
            f"{unexpected})"
        )
    tmp = out.with_name(out.name + ".tmp")
    save_checkpoint(ablated, tmp, tokenizer=load_tokenizer(checkpoint))
    tmp.replace(out)
    return out


def _evaluate(
    out, questions, annotations, videos, specialist, checkpoints, recipe, progress
) -> list:
    from verbnoun.bench.predictions import load_predictions
    from verbnoun.data.annotations import EK100Annotations
    from verbnoun.evaluate.adapters import PriorAdapter, RandomAdapter, SpecialistAdapter
    from verbnoun.evaluate.frames import make_frame_source
    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation
    from verbnoun.evaluate.score import load_run

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
    source = make_frame_source(videos, "chunks", recipe.frames, recipe.size)
    runs = []
    for bench in ("random", "hard"):
        for name, adapter in adapters.items():
            run = out / "eval" / f"{bench}-{name}"
            run_evaluation(
                questions[bench], adapter, run,
                EvalSettings(frames=recipe.frames, size=recipe.size),
                frame_source=source, progress=progress, annotations=annotations,
            )  # fmt: skip
            runs.append(load_run(run, annotations=annotations))
    return runs


def demo_claims() -> list:
    """The paper's pattern as claims on the demo's run labels (``{benchmark}-{model}``)."""
    from verbnoun.evaluate.findings import Claim

    claims = [
        Claim(
            "training on hard MQA beats training on random MQA, on hard MQA",
            "hard-model",
            "hard-random-mqa",
        ),
        Claim(
            "the hard-MQA model beats the prior baseline on hard MQA", "hard-model", "hard-prior"
        ),
        Claim(
            "the action token helps the hard-MQA model on hard MQA",
            "hard-model",
            "hard-no-action-token",
        ),
    ]
    for model in ("model", "random-mqa", "prior", "specialist"):
        claims.append(
            Claim(
                f"hard MQA is harder than random MQA for {model}",
                f"random-{model}",
                f"hard-{model}",
            )
        )
    return claims


def summarize_demo(runs: list) -> dict:
    """The demo's table (accuracy per benchmark and model) and the paper's pattern checked on it.

    ``hard_is_harder``: per model, random-benchmark minus hard-benchmark accuracy.
    ``hard_training``: on the hard benchmark, the model trained on hard MQA against the same
    model trained on random-distractor MQA (difference, exact paired McNemar test) and against
    the prior baseline."""
    from verbnoun.evaluate.metrics import mcnemar_exact

    by_name = {run.path.name: run for run in runs}
    table: dict[str, dict[str, float]] = {}
    for name, run in by_name.items():
        bench, _, model = name.partition("-")
        table.setdefault(model, {})[bench] = run.metrics["overall"]["accuracy"]
    from verbnoun.evaluate.findings import check_claims

    summary: dict = {"accuracy": table, "findings": check_claims(demo_claims(), runs)}
    summary["hard_is_harder"] = {
        model: round(accs["random"] - accs["hard"], 4)
        for model, accs in table.items()
        if "random" in accs and "hard" in accs
    }
    hard, rand = by_name.get("hard-model"), by_name.get("hard-random-mqa")
    if hard is not None and rand is not None:
        ids = [q.id for q in hard.questions]
        test = mcnemar_exact(
            [bool(hard.predictions[i]["correct"]) for i in ids],
            [bool(rand.predictions[i]["correct"]) for i in ids],
        )
        summary["hard_training"] = {
            "questions": len(ids),
            "hard_mqa_model": table["model"]["hard"],
            "random_mqa_model": table["random-mqa"]["hard"],
            "gain": round(table["model"]["hard"] - table["random-mqa"]["hard"], 4),
            "mcnemar": test,
            "over_prior_baseline": round(table["model"]["hard"] - table["prior"]["hard"], 4),
        }
    return summary


def summary_lines(summary: dict) -> list[str]:
    """The summary as a few printable lines (accuracy in %, per model: random / hard MQA)."""
    lines = ["accuracy (random MQA / hard MQA):"]
    for model, accs in summary["accuracy"].items():
        cells = " / ".join(f"{100 * accs[b]:.1f}%" for b in ("random", "hard") if b in accs)
        lines.append(f"  {model:<16} {cells}")
    gain = summary.get("hard_training")
    if gain:
        lines.append(
            f"training on hard MQA: {100 * gain['hard_mqa_model']:.1f}% on hard MQA vs "
            f"{100 * gain['random_mqa_model']:.1f}% trained on random MQA "
            f"(McNemar p={gain['mcnemar']['p_value']:.2g}), "
            f"{100 * gain['over_prior_baseline']:+.1f} points over the prior baseline"
        )
    return lines


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def render_html(report: dict) -> str:
    """The benchmark summary page; every string shown is escaped."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>verbnoun benchmarks</title>",
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


def annotate_stage(
    out: Path, kitchen: Path, specialist: Path, checkpoint: Path, r: DemoRecipe, progress: bool
) -> dict:
    """Annotate two held-out kitchen videos whole with the specialist and the trained model,
    score them against the truth (``annotate/``); returns their scores for ``summary.json``."""
    from verbnoun.annotate.held_out import annotate_held_out, summary_lines

    result = annotate_held_out(
        out / "annotate", kitchen, specialist, checkpoint, frames=r.frames, size=r.size
    )
    if progress:
        for line in summary_lines(result):
            print(line)
    return result
