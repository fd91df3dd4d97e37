"""``verbnoun annotate`` (label whole videos) and ``verbnoun annotate score`` (typer commands).

Heavy imports stay inside the commands. Options are gathered into the dataclasses of
:mod:`verbnoun.annotate.runner` and :mod:`verbnoun.annotate.smoothing`, which the Python API
takes as they are.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from verbnoun.annotate.modes import names as mode_names
from verbnoun.cli_options import Layout, choice
from verbnoun.errors import VerbnounError

annotate_app = typer.Typer(
    help="Annotate whole videos with behaviours (segments, ethogram, timeline) and score them.",
    invoke_without_command=True,
    no_args_is_help=False,
)

_VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")


WINDOW_MODELS = ("specialist", "oracle", "adapted")  # annotate's own (annotate.models, adapt)


def window_adapters() -> tuple[str, ...]:
    """The registry's adapters that can answer a window: those that need frames at most."""
    from verbnoun.evaluate.registry import ADAPTERS

    return tuple(n for n, spec in ADAPTERS.items() if spec.needs <= {"frames"})


def annotate_models():
    """``--model`` choices: annotate's own models, then the registry's window adapters (read
    each time typer builds the command)."""
    from verbnoun.cli_options import choice

    return choice("AnnotateModel", (WINDOW_MODELS[0], *window_adapters(), *WINDOW_MODELS[1:]))


Mode = choice("Mode", mode_names())  # --mode: the registry of verbnoun.annotate.modes


class Smoothing(StrEnum):
    viterbi = "viterbi"
    none = "none"


def find_videos(video: Path, layout: str, video_ids: str | None = None) -> list:
    """The videos of ``--video``: a file, a folder of files, or a layout's root folder."""
    from verbnoun.annotate.runner import VideoSource
    from verbnoun.data.layouts import FileLayout, file_video_id, make_layout

    if not video.exists():
        raise VerbnounError(f"{video}: no such video file or folder")
    wanted = [v.strip() for v in video_ids.split(",") if v.strip()] if video_ids else None
    if video.is_file():
        return [VideoSource(file_video_id(video.stem), FileLayout(video))]
    if layout == "file":
        files = sorted(p for p in video.iterdir()
                       if p.is_file() and p.suffix.lower() in _VIDEO_SUFFIXES)  # fmt: skip
        sources, seen = [], {}
        for path in files:
            vid = file_video_id(path.stem)
            if vid in seen:
                raise VerbnounError(f"{path} and {seen[vid]} give the same video id {vid!r}")
            seen[vid] = path
            sources.append(VideoSource(vid, FileLayout(path)))
    else:
        root = make_layout(layout, video)
        pattern = "*/*.MP4" if layout == "chunks" else "*/videos/*.MP4"
        ids = sorted({p.name.removesuffix(".MP4") if layout == "chunks" else p.stem
                      for p in video.glob(pattern)})  # fmt: skip
        sources = [VideoSource(v, root) for v in ids]
    if wanted is not None:
        known = {s.video_id for s in sources}
        unknown = [v for v in wanted if v not in known]
        if unknown:
            raise VerbnounError(f"{video}: no video {unknown[0]!r} (layout {layout})")
        sources = [s for s in sources if s.video_id in wanted]
    if not sources:
        raise VerbnounError(f"{video}: no videos found (layout {layout})")
    return sources


def read_segment_spans(path: Path) -> dict[str, list[tuple[float, float]]]:
    """``--segments FILE``: a CSV with ``video_id``, ``start`` and ``stop`` (seconds or
    ``HH:MM:SS.ff``; EK100's ``start_timestamp``/``stop_timestamp`` work too)."""
    from verbnoun.data.ek100 import time_field
    from verbnoun.errors import AnnotationError
    from verbnoun.fileio import read_csv

    table = read_csv(path, error=AnnotationError)
    start = next((c for c in ("start", "start_timestamp") if c in table.header), None)
    stop = next((c for c in ("stop", "stop_timestamp") if c in table.header), None)
    if "video_id" not in table.header or start is None or stop is None:
        raise AnnotationError(path, "--segments needs video_id, start and stop columns", line=1)
    spans: dict[str, list[tuple[float, float]]] = {}
    for line, row in table.rows:
        a, b = time_field(row[start], path, line, start), time_field(row[stop], path, line, stop)
        if b <= a:
            raise AnnotationError(path, "stop is not after start", line=line)
        spans.setdefault(row["video_id"].strip(), []).append((a, b))
    if not spans:
        raise AnnotationError(path, "no segments")
    return spans


def _behaviours(actions: str | None, dataset: Path | None, option_text: str, specialist):
    from verbnoun.annotate import vocabulary

    if actions is not None:
        candidate = Path(actions)
        if actions.lower().endswith(".csv"):
            return vocabulary.from_class_file(candidate)
        return vocabulary.from_list(actions)
    if dataset is not None:
        from verbnoun.data.dataset import open_dataset

        return vocabulary.from_dataset(open_dataset(annotations=dataset), str(dataset), option_text)
    if specialist is not None:
        from verbnoun.data.dataset import open_dataset
        from verbnoun.fileio import read_json

        config = read_json(Path(specialist) / "specialist.json")
        source = Path(config.get("annotations", ""))
        return vocabulary.from_dataset(open_dataset(annotations=source), str(source), option_text)
    raise VerbnounError(
        "give the behaviours: --actions 'groom,rear,walk' (or a class CSV), or --dataset FILE.yaml"
    )


@annotate_app.callback(invoke_without_command=True)
def annotate_command(
    ctx: typer.Context,
    video: Annotated[
        Path | None, typer.Option(help="A video file, a folder of them, or a layout's root.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (resumed when it exists).")] = None,
    layout: Annotated[Layout, typer.Option(help="How --video DIR holds videos.")] = Layout.file,
    video_ids: Annotated[
        str | None, typer.Option(help="Only these videos of --video DIR (comma-separated).")
    ] = None,
    actions: Annotated[
        str | None, typer.Option(help="Behaviours: 'groom,rear,walk' or a class CSV file.")
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(help="Data set description (YAML) or EK100 folder: behaviours, and videos."),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Without --video: annotate this split's videos.")
    ] = None,
    segments: Annotated[
        Path | None, typer.Option(help="Label these segments (CSV video_id,start,stop).")
    ] = None,
    window: Annotated[
        float | None, typer.Option(help="Window length (s) [default: 2, or --adapted's].")
    ] = None,
    stride: Annotated[
        float | None, typer.Option(help="Window step (s) [default: 1, or --adapted's].")
    ] = None,
    model: Annotated[annotate_models(), typer.Option(help="Who answers.")] = "specialist",  # type: ignore[valid-type]
    adapted: Annotated[
        Path | None, typer.Option(help="A folder of `annotate adapt` (implies --model adapted).")
    ] = None,
    mode: Annotated[
        Mode, typer.Option(help="For llavaction/openai/hf/random: how a window is asked.")
    ] = Mode.choice,
    specialist: Annotated[
        Path | None, typer.Option(help="Specialist folder (--model specialist, two-stage).")
    ] = None,
    top_k: Annotated[int, typer.Option(help="Two-stage: the specialist's top-k as options.")] = 5,
    checkpoint: Annotated[Path | None, typer.Option(help="--model llavaction folder.")] = None,
    scoring: Annotated[str, typer.Option(help="llavaction: letters, text or generate.")] = "text",
    hf_model: Annotated[str | None, typer.Option(help="--model hf: folder or cached id.")] = None,
    api_model: Annotated[str | None, typer.Option(help="--model openai: model name.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint.")] = None,
    api_key_env: Annotated[str, typer.Option(help="Variable holding the key.")] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(min=1, help="Parallel API requests.")] = 4,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1.")] = None,
    frames: Annotated[int, typer.Option(min=1, help="Frames per window shown to the model.")] = 8,
    size: Annotated[int | None, typer.Option(help="Resize frames to SIZE x SIZE.")] = None,
    option_text: Annotated[
        str, typer.Option(help="Option wording from a data set: narration or official_key.")
    ] = "narration",
    seed: Annotated[int, typer.Option(help="Seed of --model random.")] = 0,
    smoothing: Annotated[
        Smoothing, typer.Option(help="viterbi (sticky prior over window scores) or none.")
    ] = Smoothing.viterbi,
    switch: Annotated[float, typer.Option(help="Viterbi: prior probability of a change.")] = 0.1,
    min_duration: Annotated[float, typer.Option(help="Shortest segment kept (s).")] = 0.0,
    min_confidence: Annotated[
        float, typer.Option(help="Windows less sure than this are 'no behaviour'.")
    ] = 0.0,
    truth: Annotated[
        Path | None, typer.Option(help="Ground truth (data set or CSV): scores and ethogram.")
    ] = None,
    truth_split: Annotated[str | None, typer.Option(help="Split of --truth to use.")] = None,
    scored: Annotated[
        Path | None, typer.Option(help="CSV video_id,start,stop: the stretches --truth covers.")
    ] = None,
    bin_: Annotated[
        str | None,
        typer.Option("--bin", help="Time bins in summary.json and time_bins.png: 30s, 5min, 1h."),
    ] = None,
    shard: Annotated[
        str | None, typer.Option(help="K/N: this process's part of the windows.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per model call.")] = 8,
    thumbnails: Annotated[bool, typer.Option(help="Thumbnails for timeline.html.")] = True,
    oracle_shift: Annotated[int, typer.Option(hidden=True)] = 0,
) -> None:
    """Slide windows over whole videos, ask a model per window, merge the answers into
    segments; write segments.csv, ethogram.png, summary.json and timeline.html."""
    if ctx.invoked_subcommand is not None:
        return
    from verbnoun.annotate.runner import AnnotateSettings, VideoSource, plan, run_annotation
    from verbnoun.annotate.smoothing import SmoothingSettings
    from verbnoun.runs import Shard

    if out is None and video is None and dataset is None:  # called bare: show the options
        typer.echo(ctx.get_help())
        return
    if out is None:
        raise VerbnounError("give --out DIR")
    if scored is not None and truth is None:
        raise VerbnounError("--scored says which stretches --truth covers: give --truth too")
    from verbnoun.annotate.bins import parse_duration

    bin_seconds = None if bin_ is None else parse_duration(bin_)
    if video is None and dataset is None:
        raise VerbnounError("give --video FILE|DIR, or --dataset FILE.yaml with --split")
    adapted_config = None
    model = getattr(model, "value", model)
    if adapted is not None or model == "adapted":
        from verbnoun.annotate.adapt import read_config

        if model not in ("specialist", "adapted"):
            raise VerbnounError(f"--adapted goes with --model adapted, not --model {model}")
        if adapted is None:
            raise VerbnounError("--model adapted needs --adapted DIR (a folder of annotate adapt)")
        if actions is not None:
            raise VerbnounError("--adapted brings its own behaviours: drop --actions")
        model, adapted_config = "adapted", read_config(adapted)
    window = window if window is not None else (adapted_config or {}).get("window", 2.0)
    stride = stride if stride is not None else (adapted_config or {}).get("stride", 1.0)
    settings = AnnotateSettings(window=window, stride=stride, batch_size=batch_size,
                                thumbnails=thumbnails)  # fmt: skip
    settings.check()
    smooth = SmoothingSettings(method=smoothing.value, switch=switch, min_duration=min_duration,
                               min_confidence=min_confidence)  # fmt: skip
    smooth.check()
    if video is not None:
        sources = find_videos(video, layout.value, video_ids)
    else:
        from verbnoun.data.dataset import GenericDataset, open_dataset

        described = open_dataset(annotations=dataset)
        if not isinstance(described, GenericDataset) or described.description.videos is None:
            raise VerbnounError(f"{dataset}: no videos: section; give --video")
        if split is None:
            raise VerbnounError("--dataset without --video needs --split (whose videos)")
        ids = sorted({s.video_id for s in described.segments(split)})
        if video_ids:
            keep = {v.strip() for v in video_ids.split(",")}
            ids = [v for v in ids if v in keep]
        sources = [VideoSource(v, described.video_layout()) for v in ids]
    if segments is not None:
        spans = read_segment_spans(segments)
        unknown = sorted(set(spans) - {s.video_id for s in sources})
        if unknown:
            raise VerbnounError(f"{segments}: video {unknown[0]!r} is not among the videos")
        sources = [VideoSource(s.video_id, s.layout, tuple(spans[s.video_id]))
                   for s in sources if s.video_id in spans]  # fmt: skip
    plan(sources, settings)  # bad videos and windows fail before a model is loaded
    if adapted_config is not None:
        from verbnoun.annotate.adapt import CONFIG, behaviours_of

        behaviours = behaviours_of(adapted_config, str(Path(adapted) / CONFIG))
    else:
        behaviours = _behaviours(actions, dataset, option_text, specialist)
    from verbnoun.progress import Heartbeat

    with Heartbeat("annotate"):  # off a terminal, a slow model load talks too
        window_model = make_window_model(
            model, mode.value, behaviours, specialist=specialist, top_k=top_k,
            checkpoint=checkpoint, scoring=scoring, hf_model=hf_model, api_model=api_model,
            base_url=base_url, api_key_env=api_key_env, concurrency=concurrency, device=device,
            frames=frames, size=size, seed=seed, dataset=dataset, truth=truth,
            truth_split=truth_split, sources=sources, settings=settings, shift=oracle_shift,
            adapted=adapted,
        )  # fmt: skip
        result = run_annotation(
            out, sources, window_model, behaviours, settings, smooth,
            shard=Shard.from_environment(shard), truth=truth, truth_split=truth_split,
            scored=scored, bin_seconds=bin_seconds, progress=True,
        )  # fmt: skip
    if result["missing"]:
        typer.echo(f"{out}: {result['missing']} of {result['windows']} windows still to answer "
                   "(other shards); run again to finish")  # fmt: skip
        return
    typer.echo(f"{out}: {result['outputs']['segments']} segments in {len(sources)} video(s); "
               f"see {out / 'timeline.html'} and {out / 'ethogram.png'}")  # fmt: skip
    scores = result["outputs"].get("scores")
    if scores:
        for name, metrics in scores.items():
            if name != "agreement":
                typer.echo(_score_line(name, metrics))
        if "agreement" in scores:
            typer.echo(_agreement_line({m: {"value": v} for m, v in scores["agreement"].items()}))


def make_window_model(model: str, mode: str, behaviours, **options):
    """The window model of the command line options (see :mod:`verbnoun.annotate.models`)."""
    from verbnoun.annotate import models

    if model == "adapted":
        from verbnoun.annotate.adapt import AdaptedModel

        return AdaptedModel(options["adapted"])
    if model == "specialist":
        if options["specialist"] is None:
            raise VerbnounError("--model specialist needs --specialist DIR")
        return models.SpecialistModel(options["specialist"], behaviours)
    if model == "oracle":
        return _oracle(behaviours, options)
    from verbnoun.annotate.modes import ModeInputs, window_model

    inputs = ModeInputs(_adapter(model, options), behaviours, frames=options["frames"],
                        size=options["size"], top_k=options["top_k"],
                        specialist=options["specialist"])  # fmt: skip
    return window_model(mode, inputs)


def _adapter(model: str, options: dict):
    """The registry's adapter ``model``, its settings taken from the command's options."""
    from verbnoun.evaluate.registry import build_adapter, settings_for

    return build_adapter(model, settings_for(model, options))


def _oracle(behaviours, options: dict):
    from verbnoun.annotate.models import OracleModel
    from verbnoun.annotate.runner import plan
    from verbnoun.annotate.scoring import rasterise, read_truth

    if options["truth"] is None:
        raise VerbnounError("--model oracle answers from the ground truth: give --truth")
    planned = plan(options["sources"], options["settings"])
    spans = read_truth(options["truth"], behaviours, {p.info.video_id for p in planned},
                       options["truth_split"])  # fmt: skip
    frames = {p.info.video_id: rasterise(spans[p.info.video_id], p.info.num_frames, p.info.fps)
              for p in planned}  # fmt: skip
    return OracleModel(frames, str(options["truth"]), options["shift"])


def _score_line(name: str, m: dict) -> str:
    return (f"  {name:<11} frame acc {m['frame_accuracy']:5.1f}  edit {m['edit']:5.1f}  "
            f"F1@10 {m['f1@10']:5.1f}  F1@25 {m['f1@25']:5.1f}  F1@50 {m['f1@50']:5.1f}")  # fmt: skip


def _agreement_line(overall: dict, interval: bool = False) -> str:
    def show(metric: str, digits: int) -> str:
        entry = overall[metric]
        if entry["value"] is None:
            return f"{metric} -"
        text = f"{metric} {entry['value']:.{digits}f}"
        if interval and entry.get("low") is not None:
            text += f" [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"
        return text

    return "  agreement   " + "  ".join(
        [show("kappa", 3), show("mcc", 3), *(show(m, 1) for m in ("precision", "recall", "f1"))]
    )


class BootstrapUnit(StrEnum):
    bout = "bout"
    video = "video"


@annotate_app.command("score")
def score_command(
    pred: Annotated[Path, typer.Option(help="segments.csv of an annotate run.")],
    truth: Annotated[Path, typer.Option(help="Ground truth: data set (YAML/EK100) or CSV.")],
    split: Annotated[str | None, typer.Option(help="Split of --truth (default: all).")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the scores here (JSON; default: print only).")
    ] = None,
    scored: Annotated[
        Path | None,
        typer.Option(help="CSV video_id,start,stop: score only where a human scored."),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples of the intervals (0: none).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    unit: Annotated[
        BootstrapUnit, typer.Option(help="What the bootstrap resamples: bouts or videos.")
    ] = BootstrapUnit.bout,
) -> None:
    """Frame accuracy, edit score and F1@{10,25,50} (overall and per class) of a prediction,
    with a majority-class baseline and the unsmoothed per-window answers; agreement with the
    human (Cohen's kappa, Matthews correlation, frame precision/recall/F1, F1@k, edit) with 95%
    bootstrap intervals."""
    from verbnoun.annotate.agreement import AgreementSettings
    from verbnoun.annotate.scoring import score_run
    from verbnoun.fileio import write_json

    settings = AgreementSettings(replicates=bootstrap, seed=seed, unit=unit.value)
    settings.check()
    scores, _ = score_run(pred, truth, split, scored=scored, agreement=settings)
    if out is not None:
        write_json(out, scores)
    where = scores["scored"]
    typer.echo(f"{pred} against {truth} ({where['videos']} videos, {where['stretches']} scored "
               f"stretches, {where['frames']} frames):")  # fmt: skip
    for name in ("model", "unsmoothed", "majority"):
        if name in scores:
            typer.echo(_score_line(name, scores[name]))
    agreement = scores["agreement"]
    typer.echo(_agreement_line(agreement["overall"], interval=True))
    if bootstrap:
        typer.echo(f"  (95% intervals: {bootstrap} bootstrap resamples of {agreement['units']} "
                   f"{unit.value}s, seed {seed})")  # fmt: skip
        if "note" in agreement:
            typer.echo(f"  note: {agreement['note']}")


@annotate_app.command("export")
def export_command(
    run: Annotated[Path, typer.Argument(help="A finished annotate run folder.")],
    nwb: Annotated[
        Path | None, typer.Option(help="NWB file of the bouts (ndx-ethogram extension).")
    ] = None,
    boris: Annotated[
        Path | None, typer.Option(help="BORIS tabular events file (.tsv, or .csv).")
    ] = None,
    session_start: Annotated[
        str | None, typer.Option(help="Session start, ISO 8601 (default: now, UTC).")
    ] = None,
) -> None:
    """Export a run's bouts (its segments.csv, corrections included) for behaviour tools: NWB
    with the ndx-ethogram extension, and BORIS's tabular events."""
    from verbnoun.annotate.export import export_run

    for path in export_run(run, nwb=nwb, boris=boris, session_start=session_start):
        typer.echo(f"wrote {path}")


class Gaps(StrEnum):
    background = "background"
    ignore = "ignore"


@annotate_app.command("adapt")
def adapt_command(
    videos: Annotated[
        Path,
        typer.Option(
            "--videos",
            "--video",
            help="A video file, a folder of them, or a layout's root: the videos labels name.",
        ),
    ],
    labels: Annotated[
        list[Path],
        typer.Option(
            help="Scored intervals, CSV video,behaviour,start,stop (seconds); repeat for more "
            "files; a filled-in label_next.csv of a run works too."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Model folder to write (for annotate --adapted).")],
    layout: Annotated[Layout, typer.Option(help="How --videos DIR holds videos.")] = Layout.file,
    window: Annotated[float, typer.Option(help="Window length (s).")] = 1.0,
    stride: Annotated[float, typer.Option(help="Window step of annotate with it (s).")] = 0.5,
    frames: Annotated[int, typer.Option(help="Frames per window the features see.")] = 16,
    size: Annotated[int, typer.Option(help="Frames resized to SIZE x SIZE px.")] = 32,
    trees: Annotated[int, typer.Option(help="Trees of the random forest.")] = 200,
    gaps: Annotated[
        Gaps,
        typer.Option(
            help="Unscored time between a file's scored intervals of a video: '(no behaviour)' "
            "(background) or left out (ignore)."
        ),
    ] = Gaps.background,
    min_gap: Annotated[
        float, typer.Option(help="Unscored stretches shorter than this (s) are left out.")
    ] = 0.5,
    scored: Annotated[
        Path | None,
        typer.Option(
            help="CSV video_id,start,stop: the stretches scored exhaustively (unscored time in "
            "them is '(no behaviour)'); default: each file's first start to last stop."
        ),
    ] = None,
    holdout: Annotated[
        float, typer.Option(help="Share of each behaviour's bouts held out to measure agreement.")
    ] = 0.2,
    refit: Annotated[
        bool, typer.Option(help="Train the kept model on every label (held-out bouts too).")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the forest.")] = 0,
) -> None:
    """Train a classifier of your own behaviours from a few scored bouts; write a model folder
    that `verbnoun annotate --adapted DIR` uses on every other video, and its agreement with
    your labels on held-out bouts (agreement.json)."""
    from verbnoun.annotate.adapt import AdaptSettings, adapt, summary_lines

    settings = AdaptSettings(
        window=window, stride=stride, frames=frames, size=size, trees=trees, gaps=gaps.value,
        min_gap=min_gap, holdout=holdout, refit=refit, seed=seed,
    )  # fmt: skip
    settings.check()
    sources = find_videos(videos, layout.value)
    config = adapt(sources, labels, out, settings, scored=scored, progress=True)
    for text in summary_lines(config, out):
        typer.echo(text)
