"""``make demo``: the whole pipeline on the embedded synthetic kitchen, offline, on a CPU.

Does training on hard MQA (distractors = a specialist's confusions) teach finer action
understanding than training on random MQA? Both arms start from the same pretrained kitchen
base (:func:`verbnoun.model.kitchen_base.kitchen_base_path`: a tower that already sees, an LM
that already answers option lists with a letter) and differ only in their MQA distractors.
Stages compose by files under the run folder (each stage is also a CLI command):

1. ``kitchen/``: the synthetic kitchen, annotations and videos (``verbnoun synth``);
2. ``specialist/``: the built-in specialist, with cross-validated train predictions and
   predictions for validation (``verbnoun specialist train / predict``);
3. ``mqa/validation-{random,grid,hard}.jsonl``: benchmarks (``mqa build``): random distractors,
   the prior rule without any model (:data:`PRIOR_RULE`) and the specialist's confusions,
   summarised in ``benchmarks.html`` / ``benchmarks.json``;
4. ``sft/``: MQA records with prior actions and direct narration records, and their mixtures
   (``sft build``): ``mixture.yaml`` with hard distractors (4 of the specialist's
   cross-validated top 5, :attr:`DemoRecipe.specialist_pool`), ``mixture-random.yaml`` the
   same with random distractors;
5. ``train/{model,random-mqa,random-mqa-null}/``: the base fine-tuned on hard MQA, on random
   MQA, and on random MQA again with another training seed (data order, new heads' init): the
   **null pair** (random-mqa, random-mqa-null) shows what training noise alone does to the
   paired test (``verbnoun train``); ``train/model/no-action-token/``: the action-token ablation
   at test time;
6. ``eval/{bench}-{name}/``: baselines (random, prior, specialist), the arms and the ablation,
   scored by the option letter's logit (primary); the **controls** on hard MQA: both main arms
   with frames from another clip (``-other-clip``) and blank frames (``-blank``), a blind reader
   (:func:`verbnoun.bench.audit.fit_blind_reader`) fitted on the hard arm's SFT MQA records
   (``blind``) and on the random arm's (``blind-random-mqa``), both main arms scored by
   option likelihood (``-text``, secondary), and the untouched base both arms started from
   (``base``, on random and hard MQA: how far fine-tuning moved each arm);
7. ``summary.json``: the table of accuracies, the claims (findings) and their paired tests, and
   the controls: the gain with other clips' and blank frames, the margin over the blind reader
   and the null pair;
8. ``report.html``: all runs compared, with every hard question and its frames (``report``);
9. ``annotate/{specialist,model}/``: two held-out videos annotated whole (1 s windows every
   0.5 s) by the specialist and by the hard-trained model, scored against the truth.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from verbnoun.bench.build import BuildSettings, build_benchmark
from verbnoun.bench.questions import read_questions
from verbnoun.bench.stats import summarize
from verbnoun.errors import VerbnounError
from verbnoun.fileio import atomic_write_bytes, read_jsonl, sha256_file, write_json

PRIOR_RULE = "prior-grid"  # hard distractors without any model, not answerable blind
BENCHMARKS = {"random": "random", "grid": PRIOR_RULE, "hard": "specialist"}
# the fine-tuned arms, by the distractors of their SFT MQA records: the same recipe otherwise
ARMS = {"model": "specialist", "random-mqa": "random", "random-mqa-null": "random"}
MAIN_ARMS = ("model", "random-mqa")
NULL_SEED = 1000  # the null arm trains with seed + NULL_SEED (its data order, its heads' init)
CONTROLS = ("other-clip", "blank")
STAGES = ["kitchen", "specialist", "benchmarks", *(f"train {m}" for m in ARMS), "ablation",
          "evaluate", "annotate", "report"]  # fmt: skip


@dataclass(frozen=True)
class DemoRecipe:
    """The demo's data and fine-tuning recipe (``benchmarks/bench_demo_seeds.py`` checks it
    over seeds). ``base``: ``kitchen`` (the shipped base), a checkpoint directory, or
    ``scratch`` (a tiny model built from nothing, as before the base). ``tunable_parts``:
    comma-separated parts that train (``vision_tower``, ``projector``, ``language_model``,
    ``action_heads``; empty: every part), with ``vision_lr`` / ``projector_lr`` (0: ``lr``).
    ``text_scoring``: also score the main arms on hard MQA by option likelihood."""

    videos: int = 60  # 391 train segments; 24 validation videos (about 260 questions)
    validation_videos: int = 36  # more validation videos: about 650 questions per benchmark
    steps: int = 300  # per arm; three arms
    batch: int = 16
    frames: int = 4
    size: int = 32
    lr: float = 1e-3
    vision_lr: float = 1e-4  # the tower at a tenth of the rate, as the release trains it lower
    projector_lr: float = 0.0
    tunable_parts: str = ""
    warmup: int = 100
    specialist_epochs: int = 30
    mqa_copies: int = 3  # each train segment with this many sets of distractors
    # hard SFT distractors: 4 of the specialist's top 5 without the truth (the release: top 10
    # of EK100's 3,806 actions; the kitchen's top 10 of 91 reach past its real confusions)
    specialist_pool: int = 5
    base: str = "kitchen"
    text_scoring: bool = True


def base_checkpoint(recipe: DemoRecipe) -> Path | None:
    """The checkpoint both arms start from (``None``: a tiny model built from nothing)."""
    if recipe.base == "scratch":
        return None
    if recipe.base == "kitchen":
        from verbnoun.model.kitchen_base import kitchen_base_path

        return Path(kitchen_base_path())
    path = Path(recipe.base)
    if not (path / "config.json").is_file():
        raise VerbnounError(f"{path}: no checkpoint here (config.json missing)")
    return path


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
    from verbnoun.progress import Stages

    r = replace(recipe or DemoRecipe(), **overrides)
    out = Path(out)
    stages = Stages("demo", STAGES, enabled=progress)
    kitchen, specialist, questions = prepare(out, seed, r, stages, progress)
    annotations, video_root = kitchen / "annotations", kitchen / "videos"
    checkpoints, mixtures = {}, {}
    base = base_checkpoint(r)
    for name, distractors in ARMS.items():
        train_seed = seed + NULL_SEED if name.endswith("-null") else seed
        with stages(f"train {name}", f"{distractors} distractors, seed {train_seed}, "
                    f"{r.steps} steps"):  # fmt: skip
            mixtures[name] = _sft(
                out, annotations, specialist / "predictions_train.json", seed, distractors, r
            )
            checkpoints[name] = _train(
                out / "train" / name, mixtures[name], video_root, r, base, train_seed, progress
            )
    with stages("ablation"):
        checkpoints["no-action-token"] = without_action_token(
            checkpoints["model"], out / "train" / "model" / "no-action-token"
        )
    if base is not None:
        checkpoints["base"] = base
    plan = evaluation_plan(r)
    with stages("evaluate", f"{len(plan)} runs"):
        runs = _evaluate(out, questions, annotations, video_root, specialist, checkpoints,
                         mixtures, plan, r, progress)  # fmt: skip
    summary = summarize_demo(runs)
    summary["recipe"] = {**asdict(r), "seed": seed, "base_checkpoint": str(base) if base else None}
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


def prepare(out: Path, seed: int, r: DemoRecipe, stages, progress: bool = False):
    """The stages that do not depend on the fine-tuning recipe: the kitchen, the specialist and
    the benchmarks (reused when done). Returns the kitchen and specialist folders and the
    benchmarks' question files."""
    from verbnoun.data.layouts import make_layout
    from verbnoun.data.synth import render_kitchen
    from verbnoun.train.specialist import (
        SpecialistSettings,
        predict_specialist,
        train_specialist,
    )

    kitchen = out / "kitchen"
    made = {"videos": r.videos, "seed": seed, "validation_videos": r.validation_videos}
    marker = kitchen / "kitchen.json"
    with stages("kitchen", f"{r.videos} + {r.validation_videos} videos, seed {seed}"):
        if not marker.is_file() or json.loads(marker.read_text()) != made:
            render_kitchen(kitchen, videos=r.videos, seed=seed,
                           validation_videos=r.validation_videos)  # fmt: skip
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
    return kitchen, specialist, questions


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
    mixture = sft / (
        "mixture.yaml" if distractors == "specialist" else f"mixture-{distractors}.yaml"
    )
    if mixture.is_file():
        return mixture
    datasets = []
    for copy in range(recipe.mqa_copies):
        name = f"mqa-{copy}" if distractors == "specialist" else f"mqa-{distractors}-{copy}"
        pool = recipe.specialist_pool if distractors == "specialist" else 0
        settings = SftSettings(seed=seed + copy, tasks=("mqa", "prior"), distractors=distractors,
                               specialist_pool=pool)  # fmt: skip
        predictions = train_predictions if distractors == "specialist" else None
        build_sft(annotations, sft / name, settings, predictions)
        datasets.append({"json_path": f"{name}/mqa.jsonl", "sampling_strategy": "all"})
    if not (sft / "narration" / "narration.jsonl").is_file():
        build_sft(annotations, sft / "narration", SftSettings(seed=seed, tasks=("narration",)))
    datasets.append({"json_path": "narration/narration.jsonl", "sampling_strategy": "all"})
    atomic_write_bytes(mixture, yaml.safe_dump({"datasets": datasets}).encode("utf-8"))
    return mixture


def mqa_records(mixture: Path) -> tuple[list[dict], list[Path]]:
    """The MQA records of a demo mixture (its ``mqa*.jsonl`` files) and those files."""
    import yaml

    datasets = yaml.safe_load(mixture.read_text(encoding="utf-8"))["datasets"]
    files = [mixture.parent / d["json_path"] for d in datasets if "mqa" in d["json_path"]]
    records = [record for path in files for _, record in read_jsonl(path, expect=dict)]
    return records, files


def _action_types(mixture: Path) -> list[int]:
    """Sizes of the verb / noun / action heads for the kitchen's records (largest id + 1)."""
    from verbnoun.train.data import class_ids, load_records

    ids = [class_ids(r) for r in load_records(mixture, 0)]
    return [max(max(row[k] for row in ids), 0) + 1 for k in range(3)]


def _train(
    run_dir: Path,
    mixture: Path,
    videos: Path,
    recipe: DemoRecipe,
    base: Path | None,
    seed: int,
    progress: bool,
) -> Path:
    """Fine-tune ``base`` (or a tiny model built here) on ``mixture`` (reused when its last
    checkpoint exists). ``seed`` sets the data order, the frame jitter and the init of new
    parameters (the base's action heads)."""
    import torch

    from verbnoun.train.config import config_from_dict
    from verbnoun.train.trainer import train

    checkpoint = run_dir / "checkpoints" / f"step-{recipe.steps:06d}"
    if checkpoint.is_dir():
        return checkpoint
    if base is None:
        model: dict = {"tiny": True, "action_tokens": 1}
    else:
        model = {"checkpoint": str(base), "action_tokens": 1}
        if json.loads((base / "config.json").read_text()).get("action_types") is None:
            model["action_types"] = _action_types(mixture)
    if recipe.tunable_parts:
        model["tunable_parts"] = recipe.tunable_parts.split(",")
    optim = {"lr": recipe.lr, "warmup_steps": recipe.warmup, "min_lr_ratio": 0.1}
    if recipe.vision_lr:
        optim["vision_lr"] = recipe.vision_lr
    if recipe.projector_lr:
        optim["projector_lr"] = recipe.projector_lr
    config = config_from_dict({
        "run_dir": str(run_dir), "seed": seed, "steps": recipe.steps,
        "batch_size": recipe.batch, "threads": 1, "progress": progress, "log_every": 50,
        "save_every": 0, "model": model,
        "data": {"mixture": str(mixture), "videos": str(videos), "frames": recipe.frames,
                 "size": recipe.size, "workers": 2},
        "optim": optim,
    })  # fmt: skip
    torch.manual_seed(seed)  # new parameters added to a base are drawn from this
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


@dataclass(frozen=True)
class PlannedRun:
    """One evaluation of the demo: ``{bench}-{name}`` under ``eval/``. ``answerer``: a baseline
    (``random``, ``prior``, ``specialist``), ``blind:ARM`` (the blind reader fitted on that
    arm's SFT MQA records) or a trained checkpoint (an arm, ``no-action-token``); ``mode``:
    the local model's scoring; ``control``: the frames control."""

    bench: str
    name: str
    answerer: str
    mode: str = "letters"
    control: str = "none"

    @property
    def label(self) -> str:
        return f"{self.bench}-{self.name}"


def evaluation_plan(recipe: DemoRecipe) -> list[PlannedRun]:
    """Every evaluation of a demo run, in order."""
    plan = [
        PlannedRun(bench, b, b) for bench in BENCHMARKS for b in ("random", "prior", "specialist")
    ]
    for bench in ("random", "hard"):
        plan += [PlannedRun(bench, arm, arm) for arm in (*ARMS, "no-action-token")]
    plan += [PlannedRun("grid", arm, arm) for arm in MAIN_ARMS]
    plan += [PlannedRun("hard", "blind", "blind:model"),
             PlannedRun("hard", "blind-random-mqa", "blind:random-mqa")]  # fmt: skip
    plan += [
        PlannedRun("hard", f"{arm}-{control}", arm, control=control)
        for arm in MAIN_ARMS
        for control in CONTROLS
    ]
    if recipe.text_scoring:
        plan += [PlannedRun("hard", f"{arm}-text", arm, mode="text") for arm in MAIN_ARMS]
    if recipe.base != "scratch":  # where both arms started: how far fine-tuning moved each
        plan += [PlannedRun(bench, "base", "base") for bench in ("random", "hard")]
    return plan


class BlindReaderAdapter:
    """Answers without frames: the blind reader of :mod:`verbnoun.bench.audit`, fitted on SFT
    MQA records (the files are named in the run's config)."""

    name = "blind"
    needs_frames = False

    def __init__(self, files: list[Path]) -> None:
        from verbnoun.bench.audit import fit_blind_reader

        records = [record for path in files for _, record in read_jsonl(path, expect=dict)]
        self.reader = fit_blind_reader(records)
        self.files = files

    def settings(self) -> dict:
        return {
            "reader": self.reader.model_name,
            "fitted_on": [{"file": str(p.resolve()), "sha256": sha256_file(p)} for p in self.files],
        }

    def answer(self, requests):
        from verbnoun.bench.prompts import letter
        from verbnoun.evaluate.adapters import Reply

        return [Reply(letter(c)) for c in self.reader.choices([r.question for r in requests])]


def _evaluate(
    out, questions, annotations, videos, specialist, checkpoints, mixtures, plan, recipe, progress
) -> list:
    from verbnoun.bench.predictions import load_predictions
    from verbnoun.data.annotations import EK100Annotations
    from verbnoun.evaluate.adapters import PriorAdapter, RandomAdapter, SpecialistAdapter
    from verbnoun.evaluate.frames import CachedFrames, make_frame_source
    from verbnoun.evaluate.local_adapter import LlavactionAdapter
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation
    from verbnoun.evaluate.score import load_run

    folder = EK100Annotations(annotations)
    vocabulary = folder.action_vocabulary(("train",))
    frequency = {a: vocabulary.frequency(a) for a in vocabulary.actions}
    predictions = load_predictions(specialist / "predictions_validation.json")
    by_id = {s.narration_id: predictions.ranked(s) for s in folder.segments("validation")}
    # a baseline by its name, a blind reader by ``blind:ARM``, anything else a checkpoint
    baselines = {
        "random": lambda run: RandomAdapter(0),
        "prior": lambda run: PriorAdapter(frequency, "kitchen:train"),
        "specialist": lambda run: SpecialistAdapter(by_id, "predictions_validation.json"),
        "blind": lambda run: BlindReaderAdapter(
            mqa_records(mixtures[run.answerer.removeprefix("blind:")])[1]
        ),
    }

    def checkpoint(run: PlannedRun):
        return LlavactionAdapter(checkpoints[run.answerer], mode=run.mode, device="cpu")

    adapters: dict = {}

    def adapter_of(run: PlannedRun):
        key = (run.answerer, run.mode)
        if key not in adapters:
            kind = run.answerer.partition(":")[0]
            adapters[key] = baselines.get(kind, checkpoint)(run)
        return adapters[key]

    # every run shows the same segments: each clip decoded once
    source = CachedFrames(make_frame_source(videos, "chunks", recipe.frames, recipe.size))
    runs = []
    for planned in plan:
        folder_out = out / "eval" / planned.label
        settings = EvalSettings(frames=recipe.frames, size=recipe.size,
                                frames_control=planned.control)  # fmt: skip
        # a finished run is resumed (nothing to ask), and refused if its settings changed
        run_evaluation(
            questions[planned.bench], adapter_of(planned), folder_out, settings,
            frame_source=source, progress=progress, annotations=annotations,
        )  # fmt: skip
        runs.append(load_run(folder_out, annotations=annotations))
    return runs


def demo_claims() -> list:
    """The demo's claims on its run labels (``{benchmark}-{model}``): the paper's claim first,
    then its controls (the claims marked "a control" are expected not to hold)."""
    from verbnoun.evaluate.findings import Claim

    claims = [
        Claim(
            "training on hard MQA beats training on random MQA, on hard MQA",
            "hard-model",
            "hard-random-mqa",
        ),
        Claim(
            "training on hard MQA beats training on random MQA, on hard MQA, scored by option "
            "likelihood",
            "hard-model-text",
            "hard-random-mqa-text",
        ),
    ]
    for control, shown in (("other-clip", "frames from another clip"), ("blank", "blank frames")):
        claims.append(
            Claim(
                f"a control: training on hard MQA beats training on random MQA with {shown} "
                "(expected not to hold: the gain must come from seeing)",
                f"hard-model-{control}",
                f"hard-random-mqa-{control}",
            )
        )
        for arm, text in (("model", "hard-MQA"), ("random-mqa", "random-MQA")):
            claims.append(
                Claim(
                    f"the {text} model does better seeing its clip than with {shown}, on hard MQA",
                    f"hard-{arm}",
                    f"hard-{arm}-{control}",
                )
            )
    claims += [
        Claim(
            "the hard-MQA model beats the blind reader fitted on its own training records, on "
            "hard MQA",
            "hard-model",
            "hard-blind",
        ),
        Claim(
            "the random-MQA model beats the blind reader fitted on the hard-MQA training "
            "records, on hard MQA",
            "hard-random-mqa",
            "hard-blind",
        ),
        Claim(
            "a control: the null pair differs, random-MQA beating its twin trained with another "
            "seed, on hard MQA (expected not to hold: training noise)",
            "hard-random-mqa",
            "hard-random-mqa-null",
        ),
        Claim(
            "a control: the null pair differs, the twin trained with another seed beating "
            "random-MQA, on hard MQA (expected not to hold: training noise)",
            "hard-random-mqa-null",
            "hard-random-mqa",
        ),
        Claim(
            "the hard-MQA model beats the prior baseline on hard MQA", "hard-model", "hard-prior"
        ),
        Claim(
            "the hard-MQA model beats the base it started from, on hard MQA",
            "hard-model",
            "hard-base",
        ),
        Claim(
            "the random-MQA model beats the base it started from, on hard MQA",
            "hard-random-mqa",
            "hard-base",
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


def _pair(by_name: dict, better: str, worse: str) -> dict | None:
    """Accuracies of two runs on their shared questions, the difference and the exact McNemar
    test (``None`` when a run is missing)."""
    from verbnoun.evaluate.findings import paired

    if better not in by_name or worse not in by_name:
        return None
    test = paired(by_name[better], by_name[worse])
    return {
        "questions": test["questions"],
        better: round(test["accuracy_a"], 4),
        worse: round(test["accuracy_b"], 4),
        "difference": round(test["effect"], 4),
        "mcnemar": {k: test[k] for k in ("a_only", "b_only", "p_value")},
    }


def summarize_demo(runs: list) -> dict:
    """The demo's table (accuracy per benchmark and model), its claims and its controls.

    ``hard_is_harder``: per model, random-benchmark minus hard-benchmark accuracy.
    ``hard_training``: on the hard benchmark, the arm trained on hard MQA against the arm
    trained on random MQA, by letters (difference, exact paired McNemar test; ``text``: the
    same by option likelihood), the margin over the prior baseline and (``over_base``) each
    arm's gain over the base both started from.
    ``controls``: the same pair with frames from another clip and with blank frames (the gain
    should vanish), each arm against itself under each control (what seeing is worth), the
    blind reader fitted on each arm's SFT MQA records and both arms' margins over it, and the
    null pair (two random-MQA arms of different training seeds; ``differs``: p < 0.05)."""
    from verbnoun.evaluate.findings import ALPHA, check_claims

    by_name = {run.path.name: run for run in runs}
    table: dict[str, dict[str, float]] = {}
    for name, run in by_name.items():
        bench, _, model = name.partition("-")
        table.setdefault(model, {})[bench] = run.metrics["overall"]["accuracy"]
    summary: dict = {"accuracy": table, "findings": check_claims(demo_claims(), runs)}
    summary["hard_is_harder"] = {
        model: round(accs["random"] - accs["hard"], 4)
        for model, accs in table.items()
        if "random" in accs and "hard" in accs
    }
    main = _pair(by_name, "hard-model", "hard-random-mqa")
    if main is not None:
        summary["hard_training"] = {
            "scoring": "letters",
            "questions": main["questions"],
            "hard_mqa_model": table["model"]["hard"],
            "random_mqa_model": table["random-mqa"]["hard"],
            "gain": round(table["model"]["hard"] - table["random-mqa"]["hard"], 4),
            "mcnemar": main["mcnemar"],
        }
        if "hard" in table.get("prior", {}):
            summary["hard_training"]["over_prior_baseline"] = round(
                table["model"]["hard"] - table["prior"]["hard"], 4
            )
        if "hard" in table.get("base", {}):  # how far fine-tuning moved each arm
            summary["hard_training"]["over_base"] = {
                arm: round(table[arm]["hard"] - table["base"]["hard"], 4) for arm in MAIN_ARMS
            }
        text = _pair(by_name, "hard-model-text", "hard-random-mqa-text")
        if text is not None:
            summary["hard_training"]["text"] = text
    controls: dict = {}
    for control in CONTROLS:
        pairs = {
            "gain": _pair(by_name, f"hard-model-{control}", f"hard-random-mqa-{control}"),
            **{f"{arm}_seeing": _pair(by_name, f"hard-{arm}", f"hard-{arm}-{control}")
               for arm in MAIN_ARMS},
        }  # fmt: skip
        if any(pairs.values()):
            controls[control] = pairs
    blind = {
        f"{arm}_over_{reader}": _pair(by_name, f"hard-{arm}", f"hard-{reader}")
        for arm in ARMS
        for reader in ("blind", "blind-random-mqa")
    }
    if any(blind.values()):
        controls["blind_reader"] = {
            "fitted_on_hard_records": table.get("blind", {}).get("hard"),
            "fitted_on_random_records": table.get("blind-random-mqa", {}).get("hard"),
            **{k: v for k, v in blind.items() if v is not None},
        }
    null = _pair(by_name, "hard-random-mqa", "hard-random-mqa-null")
    if null is not None:
        null_random = _pair(by_name, "random-random-mqa", "random-random-mqa-null")
        controls["null_pair"] = {
            "hard": {**null, "differs": null["mcnemar"]["p_value"] < ALPHA},
            "random": null_random,
        }
    summary["controls"] = controls
    return summary


def summary_lines(summary: dict) -> list[str]:
    """The summary as a few printable lines (accuracy in %, per model: random / hard MQA)."""
    lines = ["accuracy (random MQA / prior-rule MQA / hard MQA):"]
    for model, accs in summary["accuracy"].items():
        cells = " / ".join(
            f"{100 * accs[b]:.1f}%" if b in accs else "-" for b in ("random", "grid", "hard")
        )
        lines.append(f"  {model:<24} {cells}")
    gain = summary.get("hard_training")
    if gain:
        over = gain.get("over_prior_baseline")
        lines.append(
            f"training on hard MQA: {100 * gain['hard_mqa_model']:.1f}% on hard MQA vs "
            f"{100 * gain['random_mqa_model']:.1f}% trained on random MQA "
            f"(letters, McNemar p={gain['mcnemar']['p_value']:.2g})"
            + (f", {100 * over:+.1f} points over the prior baseline" if over is not None else "")
        )
        moved = gain.get("over_base")
        if moved:
            lines.append(
                f"  over the base both started from: hard-trained {100 * moved['model']:+.1f}, "
                f"random-trained {100 * moved['random-mqa']:+.1f} points"
            )
    controls = summary.get("controls", {})
    for control in CONTROLS:
        pair = (controls.get(control) or {}).get("gain")
        if pair:
            lines.append(
                f"  with {control} frames: gain {100 * pair['difference']:+.1f} points "
                f"(p={pair['mcnemar']['p_value']:.2g})"
            )
    blind = controls.get("blind_reader")
    if blind and blind.get("fitted_on_hard_records") is not None:
        lines.append(
            f"  blind reader (fitted on the hard records) on hard MQA: "
            f"{100 * blind['fitted_on_hard_records']:.1f}%"
        )
    null = controls.get("null_pair")
    if null:
        hard = null["hard"]
        lines.append(
            f"  null pair (random MQA, another seed) on hard MQA: "
            f"{100 * hard['difference']:+.1f} points (p={hard['mcnemar']['p_value']:.2g})"
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
