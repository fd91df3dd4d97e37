"""``verbnoun sft`` (SFT task files and GPT-4o captions) and ``verbnoun specialist``.

Imports stay lazy: torch and the openai client are imported only by the commands that use them.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from verbnoun.bench.strategies import names as distractor_names
from verbnoun.cli_options import (
    ChunkOpt,
    FirstWaitOpt,
    Layout,
    LayoutOpt,
    MaxFailuresOpt,
    MaxWaitOpt,
    RequestTimeoutOpt,
    TriesOpt,
)
from verbnoun.cli_options import (
    chunk_seconds as chunk_seconds_of,
)
from verbnoun.evaluate.endpoint import MAX_CONSECUTIVE_FAILURES, RetryPolicy

sft_app = typer.Typer(
    help="Generate supervised fine-tuning data (SPEC 5) and mixture files.", no_args_is_help=True
)
specialist_app = typer.Typer(
    help="The built-in specialist: a small action classifier writing prediction files.",
    no_args_is_help=True,
)


class Split(StrEnum):
    train = "train"
    validation = "validation"


AnnotationsOpt = Annotated[Path, typer.Option(help="EK100 annotation folder.")]
VideosOpt = Annotated[Path, typer.Option(help="Video root folder.")]
WorkersOpt = Annotated[int, typer.Option(min=0, help="Frame-decoding worker processes.")]


def _layout(layout: Layout, videos: Path, chunk_seconds: float | None):
    from verbnoun.data.layouts import make_layout

    return make_layout(layout.value, videos, chunk_seconds=chunk_seconds_of(chunk_seconds))


@sft_app.command("build")
def sft_build(
    out: Annotated[Path, typer.Option(help="Output folder (task JSONL, mixture.yaml, manifest).")],
    annotations: Annotated[
        Path | None,
        typer.Option(
            help="EK100 annotation folder; with --dataset, the folder its paths are relative to."
        ),
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset description (YAML) of any data set.")
    ] = None,
    split: Annotated[str, typer.Option(help="Split whose segments become samples.")] = "train",
    tasks: Annotated[
        str, typer.Option(help="Comma-separated: mqa, prior (changes mqa), temporal, narration.")
    ] = "mqa,prior,temporal,narration",
    predictions: Annotated[
        Path | None,
        typer.Option(help="Specialist predictions for hard MQA (without: prior-hard distractors)."),
    ] = None,
    num_options: Annotated[int, typer.Option(min=2, max=26, help="Options per question.")] = 5,
    option_text: Annotated[
        str, typer.Option(help="Option wording: narration or official_key.")
    ] = "narration",
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same bytes.")] = 0,
    distractors: Annotated[
        str | None,
        typer.Option(
            help=f"MQA distractors: {', '.join(distractor_names())} (default: specialist with "
            "--predictions, else prior-hard)."
        ),
    ] = None,
    specialist_pool: Annotated[
        int,
        typer.Option(
            min=0,
            help="Specialist distractors: K-1 at random from its top N without the truth "
            "(0: 2K, the release's top 10).",
        ),
    ] = 0,
) -> None:
    """Write one LLaVA-format JSONL per task, a mixture YAML and a manifest."""
    from verbnoun.data.dataset import open_dataset
    from verbnoun.errors import VerbnounError
    from verbnoun.train.sft import SftSettings, build_sft

    source = open_dataset(dataset, annotations)
    if source is None:
        raise VerbnounError("give --annotations DIR (EK100) or --dataset FILE.yaml")
    settings = SftSettings(
        split=split,
        tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
        num_options=num_options,
        option_text=option_text,
        seed=seed,
        distractors=distractors,
        specialist_pool=specialist_pool,
    )
    manifest = build_sft(source, out, settings, predictions)
    for task, output in manifest["outputs"].items():
        typer.echo(f"{task}: {output['records']} records -> {out / output['path']}")
    typer.echo(f"mixture: {out / manifest['mixture']}")


@sft_app.command("captions")
def sft_captions(
    annotations: AnnotationsOpt,
    videos: VideosOpt,
    api_model: Annotated[str, typer.Option(help="Model name at the endpoint, e.g. gpt-4o.")],
    out: Annotated[Path, typer.Option(help="Output folder (records, cache/, manifest).")],
    split: Annotated[Split, typer.Option(help="Split to caption.")] = Split.train,
    layout: LayoutOpt = Layout.chunks,
    chunk_seconds: ChunkOpt = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint (default: OpenAI).")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the API key (never written).")
    ] = "OPENAI_API_KEY",
    requests_per_minute: Annotated[
        float | None, typer.Option("--rpm", min=0.001, help="Rate limit of requests sent.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 4,
    tries: TriesOpt = RetryPolicy.tries,
    max_wait: MaxWaitOpt = RetryPolicy.max_wait,
    first_wait: FirstWaitOpt = RetryPolicy.first_wait,
    request_timeout: RequestTimeoutOpt = RetryPolicy.request_timeout,
    max_consecutive_failures: MaxFailuresOpt = MAX_CONSECUTIVE_FAILURES,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Caption only the first N segments.")
    ] = None,
    workers: WorkersOpt = 0,
) -> None:
    """GPT-4o captions with the disagreement filter, and 3 QA pairs per caption (cached).

    Exits with status 3 when some requests failed: running the same command again asks only
    those (the others come from the cache)."""
    from verbnoun.evaluate.openai_adapter import ApiSettings
    from verbnoun.evaluate.registry import build_adapter
    from verbnoun.train.captions import CaptionSettings, build_captions, video_frames

    settings = CaptionSettings(
        split=split.value, limit=limit, requests_per_minute=requests_per_minute,
        max_consecutive_failures=max_consecutive_failures,
    )  # fmt: skip
    retry = RetryPolicy(tries, max_wait, first_wait, request_timeout=request_timeout)
    api = ApiSettings(api_model, base_url, api_key_env, concurrency, retry=retry)
    adapter = build_adapter("openai", api)  # the endpoint client of `eval --model openai`
    source = video_frames(_layout(layout, videos, chunk_seconds), settings.frames, workers)
    manifest = build_captions(annotations, out, adapter, source, settings)
    counts = manifest["counts"]
    typer.echo(
        f"{counts['kept']} captions and {counts['qa_pairs']} QA pairs from {counts['segments']} "
        f"segments ({counts['disagreed']} disagreed, {counts['invalid']} invalid, "
        f"{counts['failed']} failed, {counts['skipped']} unreadable; {counts['requests']} "
        f"requests, {counts['cache_hits']} cached; {counts['prompt_tokens']} prompt + "
        f"{counts['completion_tokens']} completion tokens) -> {out}"
    )
    if counts["failed"]:
        typer.echo("some requests failed: run the same command again to retry them", err=True)
        raise typer.Exit(3)


@specialist_app.command("train")
def specialist_train(
    annotations: AnnotationsOpt,
    videos: VideosOpt,
    out: Annotated[Path, typer.Option(help="Output folder (weights, config, train predictions).")],
    layout: LayoutOpt = Layout.chunks,
    chunk_seconds: ChunkOpt = None,
    folds: Annotated[
        int, typer.Option(min=0, help="Cross-validation folds for train predictions (0: none).")
    ] = 5,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 40,
    frames: Annotated[int, typer.Option(min=1, help="Frames per clip.")] = 8,
    size: Annotated[int, typer.Option(min=8, help="Frame size in pixels.")] = 32,
    top_k: Annotated[int, typer.Option(min=1, help="Actions per prediction.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of folds and training.")] = 0,
    workers: WorkersOpt = 0,
) -> None:
    """Train the specialist on the train split, with k-fold cross-validated train predictions."""
    from verbnoun.train.specialist import SpecialistSettings, train_specialist

    if folds == 1:
        raise typer.BadParameter("use 0 (no cross-validation) or at least 2", param_hint="--folds")
    settings = SpecialistSettings(
        frames=frames, size=size, epochs=epochs, folds=folds, seed=seed, top_k=top_k,
        workers=workers,
    )  # fmt: skip
    config = train_specialist(
        annotations, _layout(layout, videos, chunk_seconds), out, settings, progress=True
    )
    if "cross_validation" in config:
        acc = config["cross_validation"]["accuracy"]
        typer.echo(
            f"cross-validated train top-1: verb {acc['verb_top1']:.3f}, noun "
            f"{acc['noun_top1']:.3f}, action {acc['action_top1']:.3f} -> "
            f"{out / 'predictions_train.json'}"
        )
    typer.echo(f"model: {out}")


@specialist_app.command("predict")
def specialist_predict(
    model: Annotated[Path, typer.Option(help="Folder written by 'specialist train'.")],
    annotations: AnnotationsOpt,
    videos: VideosOpt,
    out: Annotated[Path, typer.Option(help="Prediction file to write (JSON, SPEC 3 format).")],
    split: Annotated[Split, typer.Option(help="Split to predict.")] = Split.validation,
    layout: LayoutOpt = Layout.chunks,
    chunk_seconds: ChunkOpt = None,
    top_k: Annotated[int | None, typer.Option(min=1, help="Actions per prediction.")] = None,
    workers: WorkersOpt = 0,
) -> None:
    """Predict ranked actions for every segment of a split."""
    from verbnoun.train.specialist import predict_specialist

    result = predict_specialist(
        model, annotations, _layout(layout, videos, chunk_seconds), split.value, out,
        top_k=top_k, workers=workers,
    )  # fmt: skip
    acc = result["accuracy"]
    if acc:
        typer.echo(
            f"top-1 on {split.value}: verb {acc['verb_top1']:.3f}, noun {acc['noun_top1']:.3f}, "
            f"action {acc['action_top1']:.3f}; top-5 action {acc['action_top5']:.3f}"
        )
    typer.echo(f"wrote predictions for {result['segments']} segments to {out}")
