"""Commands for video: ``verbnoun frames`` (see what the model sees), ``verbnoun frames cache``
and ``verbnoun synth``. Only typer is imported here at module level; numpy and PyAV are imported
when a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from verbnoun.cli_options import (
    ChunkOpt,
    FramesOpt,
    Layout,
    LayoutOpt,
    SizeOpt,
    VideosOpt,
)
from verbnoun.cli_options import chunk_seconds as _chunk_seconds

frames_app = typer.Typer(
    help=(
        "Sample a segment's frames like the model does: "
        "`verbnoun frames --videos DIR --video-id ID --start S --stop T --out DIR` "
        "(or `frames extract ...`), and `frames cache` to pre-decode a question file."
    ),
    invoke_without_command=True,
)


def extract(
    videos: Path,
    layout: Layout,
    video_id: str | None,
    start: float,
    stop: float,
    frames: int,
    out: Path,
    size: int | None = None,
    chunk_seconds: float | None = None,
) -> list[Path]:
    """Write a segment's N sampled frames as PNGs and one contact sheet; returns the paths."""
    from verbnoun.data.images import contact_sheet, write_png
    from verbnoun.data.layouts import make_layout
    from verbnoun.data.video import VideoReader

    if layout is not Layout.file and not video_id:
        raise typer.BadParameter("--video-id is required unless --layout file")
    reader = VideoReader(
        make_layout(layout.value, videos, chunk_seconds=_chunk_seconds(chunk_seconds))
    )
    name = video_id or videos.stem
    clip = reader.read(name, start, stop, frames, size=size)
    written = []
    for k, (index, frame) in enumerate(zip(clip.indices.tolist(), clip.frames, strict=True)):
        written.append(write_png(out / f"{name}_{k:02d}_frame{index:06d}.png", frame))
    written.append(write_png(out / f"{name}_contact_sheet.png", contact_sheet(clip.frames)))
    return written


VideoIdOpt = Annotated[str | None, typer.Option(help="Video id, e.g. P01_11.")]
StartOpt = Annotated[float | None, typer.Option(help="Segment start (seconds).")]
StopOpt = Annotated[float | None, typer.Option(help="Segment stop (seconds).")]
PngOutOpt = Annotated[Path | None, typer.Option(help="Output folder for the PNGs.")]


@frames_app.callback()
def frames_main(
    ctx: typer.Context,
    videos: VideosOpt = None,
    layout: LayoutOpt = Layout.ek100,
    video_id: VideoIdOpt = None,
    start: StartOpt = None,
    stop: StopOpt = None,
    frames: FramesOpt = 8,
    out: PngOutOpt = None,
    size: SizeOpt = None,
    chunk_seconds: ChunkOpt = None,
) -> None:
    """Write a segment's sampled frames as PNGs plus a contact sheet."""
    if ctx.invoked_subcommand is not None:
        return
    if all(v is None for v in (videos, video_id, start, stop, out)):
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    _run_extract(videos, layout, video_id, start, stop, frames, out, size, chunk_seconds)


@frames_app.command("extract")
def frames_extract(
    videos: VideosOpt = None,
    layout: LayoutOpt = Layout.ek100,
    video_id: VideoIdOpt = None,
    start: StartOpt = None,
    stop: StopOpt = None,
    frames: FramesOpt = 8,
    out: PngOutOpt = None,
    size: SizeOpt = None,
    chunk_seconds: ChunkOpt = None,
) -> None:
    """Same as `verbnoun frames --videos ...`: PNGs of a segment's frames and a contact sheet."""
    _run_extract(videos, layout, video_id, start, stop, frames, out, size, chunk_seconds)


def _run_extract(videos, layout, video_id, start, stop, frames, out, size, chunk_seconds) -> None:
    missing = [
        flag
        for flag, value in (
            ("--videos", videos),
            ("--start", start),
            ("--stop", stop),
            ("--out", out),
        )
        if value is None
    ]
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)}")
    written = extract(videos, layout, video_id, start, stop, frames, out, size, chunk_seconds)
    typer.echo(f"wrote {len(written) - 1} frames and a contact sheet to {out}")


@frames_app.command("cache")
def frames_cache(
    questions: Annotated[Path, typer.Option(help="Question file (.jsonl) from `mqa build`.")],
    videos: Annotated[Path, typer.Option(help="Video root.")],
    out: Annotated[Path, typer.Option(help="Cache folder (created; resumed if it exists).")],
    layout: LayoutOpt = Layout.ek100,
    frames: FramesOpt = 8,
    size: SizeOpt = None,
    chunk_seconds: ChunkOpt = None,
) -> None:
    """Decode each question's frames once into a content-addressed store that loaders read."""
    from rich.progress import Progress

    from verbnoun.data.frame_cache import build_cache

    with Progress(transient=True) as bar:
        task = bar.add_task("decoding", total=None)
        summary = build_cache(
            questions,
            videos,
            layout.value,
            frames,
            out,
            size=size,
            chunk_seconds=_chunk_seconds(chunk_seconds),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    counts = summary["counts"]
    typer.echo(
        f"{counts['segments']} segments: {counts['written']} decoded, {counts['existing']} "
        f"already cached, {counts['skipped']} skipped (reasons in {out / 'cache.json'})"
    )


def synth(
    out: Annotated[Path, typer.Option(help="Output folder (annotations/ and videos/).")],
    videos: Annotated[int, typer.Option(min=2, help="Number of videos.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same kitchen.")] = 0,
    frame_numbers: Annotated[
        bool, typer.Option(help="Draw each frame's index into its top rows (for tests).")
    ] = False,
    chunk_seconds: Annotated[float, typer.Option(min=1, help="Chunk length in seconds.")] = 15,
    workers: Annotated[int, typer.Option(min=0, help="Processes (0: one per CPU).")] = 0,
    validation_videos: Annotated[
        int,
        typer.Option(
            min=0,
            help="More videos after --videos, all in validation: more questions, the same "
            "training videos.",
        ),
    ] = 0,
    overlap: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Share of segments given a second, simultaneous action (the overlapping "
            "kitchen: several labels per segment, dataset.yaml with multi_label); 0: the kitchen.",
        ),
    ] = 0.0,
) -> None:
    """Write the synthetic kitchen: EK100-schema annotations and videos in the chunk layout."""
    from verbnoun.data.synth import render_kitchen

    if overlap > 0:
        from verbnoun.data.overlap import render_overlap_kitchen

        if frame_numbers or validation_videos:
            raise typer.BadParameter(
                "--frame-numbers and --validation-videos are not in the overlapping kitchen"
            )
        summary = render_overlap_kitchen(
            out, videos=videos, seed=seed, share=overlap, chunk_seconds=chunk_seconds,
            workers=workers or None,
        )  # fmt: skip
        typer.echo(
            f"wrote {summary['num_videos']} videos ({summary['num_segments']} segments, "
            f"{summary['num_two_label_segments']} with two labels) under {summary['videos']}; "
            f"description {summary['dataset']}"
        )
        return
    summary = render_kitchen(
        out,
        videos=videos,
        seed=seed,
        frame_numbers=frame_numbers,
        chunk_seconds=chunk_seconds,
        workers=workers or None,
        validation_videos=validation_videos,
    )
    typer.echo(
        f"wrote {summary['num_videos']} videos ({summary['num_segments']} segments, "
        f"{summary['num_files']} chunk files) under {summary['videos']}; "
        f"annotations in {summary['annotations']}"
    )
