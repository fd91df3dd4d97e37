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
from verbnoun.cli_options import Layout, choice, option

annotate_app = typer.Typer(
    help="Annotate whole videos with behaviours (segments, ethogram, timeline) and score them.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def annotate_models():
    """``--model`` choices: annotate's own models and the registry's window adapters (read each
    time typer builds the command)."""
    from verbnoun.annotate.job import model_names

    return choice("AnnotateModel", model_names())


Mode = choice("Mode", mode_names())  # --mode: the registry of verbnoun.annotate.modes


class Smoothing(StrEnum):
    viterbi = "viterbi"
    none = "none"


class PerWindow(StrEnum):
    one = "one"
    several = "several"


VideoOpt = option(Path | None, "A video file, a folder of them, or a layout's root.")
OutOpt = option(Path | None, "Run folder (resumed when it exists).")
LayoutOpt = option(Layout, "How --video DIR holds videos.")
VideoIdsOpt = option(str | None, "Only these videos of --video DIR (comma-separated).")
ActionsOpt = option(str | None, "Behaviours: 'groom,rear,walk' or a class CSV file.")
DatasetOpt = option(Path | None, "Data set description (YAML) or EK100 folder: behaviours, and "
                  "videos.")  # fmt: skip
SplitOpt = option(str | None, "Without --video: annotate this split's videos.")
SegmentsOpt = option(Path | None, "Label these segments (CSV video_id,start,stop).")
WindowOpt = option(float | None, "Window length (s) [default: 2, or --adapted's].")
StrideOpt = option(float | None, "Window step (s) [default: 1, or --adapted's].")
AdaptedOpt = option(Path | None, "A folder of `annotate adapt` (implies --model adapted).")
ModeOpt = option(Mode, "For llavaction/openai/hf/random: how a window is asked.")
SpecialistOpt = option(Path | None, "Specialist folder (--model specialist, two-stage).")
TopKOpt = option(int, "Two-stage: the specialist's top-k as options.")
CheckpointOpt = option(Path | None, "--model llavaction folder.")
ScoringOpt = option(str, "llavaction: letters, text or generate.")
HfModelOpt = option(str | None, "--model hf: folder or cached id.")
ApiModelOpt = option(str | None, "--model openai: model name.")
BaseUrlOpt = option(str | None, "OpenAI-compatible endpoint.")
KeyEnvOpt = option(str, "Variable holding the key.")
ConcurrencyOpt = option(int, "Parallel API requests.", min=1)
DeviceOpt = option(str | None, "cpu, cuda, cuda:1.")
FramesOpt = option(int, "Frames per window shown to the model.", min=1)
SizeOpt = option(int | None, "Resize frames to SIZE x SIZE.")
OptionTextOpt = option(str, "Option wording from a data set: narration or official_key.")
SeedOpt = option(int, "Seed of --model random.")
SmoothingOpt = option(Smoothing, "viterbi (sticky prior over window scores) or none.")
SwitchOpt = option(float, "Viterbi: prior probability of a change.")
MinDurationOpt = option(float, "Shortest segment kept (s).")
MinConfidenceOpt = option(float, "Windows less sure than this are 'no behaviour'.")
PerWindowOpt = option(PerWindow, "several: every behaviour reaching --threshold (bouts overlap).")
ThresholdOpt = option(float, "--behaviours-per-window several: the probability that turns one on.")
TruthOpt = option(Path | None, "Ground truth (data set or CSV): scores and ethogram.")
TruthSplitOpt = option(str | None, "Split of --truth to use.")
ScoredOpt = option(Path | None, "CSV video_id,start,stop: the stretches --truth covers.")
BinOpt = option(str | None, "Time bins in summary.json and time_bins.png: 30s, 5min, 1h.", "--bin")
ShardOpt = option(str | None, "K/N: this process's part of the windows.")
BatchOpt = option(int, "Windows per model call.", min=1)
ThumbnailsOpt = option(bool, "Thumbnails for timeline.html.")


@annotate_app.callback(invoke_without_command=True)
def annotate_command(
    ctx: typer.Context,
    video: VideoOpt = None,
    out: OutOpt = None,
    layout: LayoutOpt = Layout.file,
    video_ids: VideoIdsOpt = None,
    actions: ActionsOpt = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = None,
    segments: SegmentsOpt = None,
    window: WindowOpt = None,
    stride: StrideOpt = None,
    model: Annotated[annotate_models(), typer.Option(help="Who answers.")] = "specialist",  # type: ignore[valid-type]
    adapted: AdaptedOpt = None,
    mode: ModeOpt = Mode.choice,
    specialist: SpecialistOpt = None,
    top_k: TopKOpt = 5,
    checkpoint: CheckpointOpt = None,
    scoring: ScoringOpt = "text",
    hf_model: HfModelOpt = None,
    api_model: ApiModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: KeyEnvOpt = "OPENAI_API_KEY",
    concurrency: ConcurrencyOpt = 4,
    device: DeviceOpt = None,
    frames: FramesOpt = 8,
    size: SizeOpt = None,
    option_text: OptionTextOpt = "narration",
    seed: SeedOpt = 0,
    smoothing: SmoothingOpt = Smoothing.viterbi,
    switch: SwitchOpt = 0.1,
    min_duration: MinDurationOpt = 0.0,
    min_confidence: MinConfidenceOpt = 0.0,
    behaviours_per_window: PerWindowOpt = PerWindow.one,
    threshold: ThresholdOpt = 0.3,
    truth: TruthOpt = None,
    truth_split: TruthSplitOpt = None,
    scored: ScoredOpt = None,
    bin_: BinOpt = None,
    shard: ShardOpt = None,
    batch_size: BatchOpt = 8,
    thumbnails: ThumbnailsOpt = True,
    oracle_shift: Annotated[int, typer.Option(hidden=True)] = 0,
) -> None:
    """Slide windows over whole videos, ask a model per window, merge the answers into
    segments; write segments.csv, ethogram.png, summary.json and timeline.html."""
    options = {k: getattr(v, "value", v) for k, v in locals().items() if k != "ctx"}
    if ctx.invoked_subcommand is not None:
        return
    if out is None and video is None and dataset is None:  # called bare: show the options
        typer.echo(ctx.get_help())
        return
    from verbnoun.annotate.job import annotate_job, run_annotate

    result, sources = run_annotate(annotate_job(**options))
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


def _multilabel_line(multi: dict) -> str:
    """``  multi-label  Jaccard 83.3 [80.1, 86.0] over 600 frames (120 with several), micro
    F1 ...``: each frame's behaviour against its set of true ones."""
    jaccard = multi["jaccard"]
    low, high = jaccard["ci95"]
    interval = "" if low != low else f" [{100 * low:.1f}, {100 * high:.1f}]"  # NaN: none
    f1 = multi["micro"]["f1"]
    return (
        f"  multi-label Jaccard {100 * jaccard['value']:.1f}{interval} over {jaccard['frames']} "
        f"frames with a behaviour ({multi['frames_with_several']} with several), micro F1 "
        + ("-" if f1 is None else f"{100 * f1:.1f}")
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
    if "multilabel" in scores:  # a truth with several behaviours at once
        typer.echo(_multilabel_line(scores["multilabel"]))


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
