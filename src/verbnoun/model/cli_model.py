"""``verbnoun ask``: ask a checkpoint one question about one clip of a video file.

Only typer is imported at module level; torch, transformers and the video decoder are imported
when the command runs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class ScoreMode(StrEnum):
    letters = "letters"
    text = "text"


def ask(
    checkpoint: Annotated[
        Path, typer.Option(help="Checkpoint directory (released LLaVA-NeXT layout or ours).")
    ],
    video: Annotated[Path, typer.Option(help="Video file.")],
    question: Annotated[
        str, typer.Argument(help="The question (with --options, the MQA prompt is asked).")
    ] = "",
    start: Annotated[float | None, typer.Option(help="Segment start, seconds.")] = None,
    stop: Annotated[
        float | None, typer.Option(help="Segment stop, seconds (default: the end).")
    ] = None,
    frames: Annotated[int, typer.Option(min=1, help="Frames sampled from the segment.")] = 16,
    options: Annotated[
        str | None,
        typer.Option(help='Comma-separated answer options, e.g. "open door,close door".'),
    ] = None,
    score: Annotated[
        ScoreMode, typer.Option(help="letters: option-letter logits; text: answer likelihood.")
    ] = ScoreMode.letters,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest free-form answer.")] = 64,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda (default: cuda if present).")
    ] = None,
    time_instruction: Annotated[
        bool, typer.Option(help="Tell the model the clip's duration and frame count.")
    ] = True,
) -> None:
    """Answer a question about a video segment; with --options, choose one and print the scores."""
    from verbnoun.bench import prompts
    from verbnoun.errors import VerbnounError
    from verbnoun.model.checkpoint import load_pretrained
    from verbnoun.model.inference import generate, score_options

    choices = [o.strip() for o in options.split(",")] if options is not None else None
    if choices is not None and (len(choices) < 2 or not all(choices)):
        raise VerbnounError("--options needs at least two non-empty, comma-separated options")
    if choices is None and not question.strip():
        raise VerbnounError("give a question, or --options for a multiple-choice question")
    clip_frames, begin, end = _load_frames(video, start, stop, frames)
    model, processor = load_pretrained(checkpoint, device=device)
    task = prompts.mqa_task(choices) if choices is not None else question
    # the duration asked for (stop - start), even past the video's end: the runner's and the
    # original's time instruction (frames stop at the last one either way)
    duration = round(end - begin, 6) if time_instruction else None
    turn = prompts.user_turn(task, duration=duration, n_frames=frames)
    ids = processor.encode_prompt(turn).input_ids
    pixels = processor.pixel_values(clip_frames).to(model.dtype)
    if choices is None:
        (answer,) = generate(
            model,
            [ids],
            [pixels],
            eos_ids=processor.eos_ids,
            max_new_tokens=max_new_tokens,
            vocab_limit=processor.vocab_limit,
        )
        typer.echo(processor.decode(answer).strip())
        return
    (choice,) = score_options(model, processor, [ids], [pixels], [choices], mode=score.value)
    typer.echo(f"{choice.letter}. {choices[choice.index]}")
    for i, (text, value) in enumerate(zip(choices, choice.scores, strict=True)):
        typer.echo(f"  {prompts.letter(i)}. {text}\t{value:.4f}")


def _load_frames(video: Path, start: float | None, stop: float | None, n: int):
    """``n`` frames of ``[start, stop]`` sampled as SPEC 2 says (a stop past the end is clamped
    to the last frame), with the segment's bounds as asked (``stop``: the video's duration when
    not given)."""
    from verbnoun.data.layouts import FileLayout
    from verbnoun.data.video import VideoReader

    reader = VideoReader(FileLayout(video))
    info = reader.info(video.stem)
    begin = 0.0 if start is None else start
    end = info.duration if stop is None else stop
    clip = reader.read(video.stem, begin, end, n)
    return clip.frames, begin, end
