"""The demo's annotate stage: label whole held-out kitchen videos and score them.

:func:`annotate_held_out` runs ``annotate`` on the first ``videos`` validation videos of the
synthetic kitchen with the demo's specialist (its ranking over the actions) and with the demo's
trained tiny model (two-stage: the specialist's top-5 actions of each window as options, scored
by option likelihood), each against the kitchen's ground truth. Each run folder holds
``ethogram.png`` (truth above prediction), ``timeline.html``, ``segments.csv`` and
``scores.json``; the returned summary has the scores of both models, unsmoothed and the
majority-class baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

from verbnoun.annotate.smoothing import SmoothingSettings

# 1 s windows every 0.5 s (the kitchen's actions last 1-3.5 s), Viterbi with a 0.5 s minimum
WINDOW, STRIDE, MIN_DURATION = 1.0, 0.5, 0.5


def annotate_held_out(
    out: str | Path,
    kitchen: str | Path,
    specialist: str | Path,
    checkpoint: str | Path | None,
    *,
    videos: int = 2,
    frames: int = 4,
    size: int = 32,
    progress: bool = False,
) -> dict:
    """Annotate and score held-out kitchen videos (reused when finished); returns the scores."""
    from verbnoun.annotate.models import AdapterModel, SpecialistModel
    from verbnoun.annotate.runner import AnnotateSettings, VideoSource, run_annotation
    from verbnoun.annotate.vocabulary import from_dataset
    from verbnoun.data.dataset import open_dataset

    out, description = Path(out), Path(kitchen) / "dataset.yaml"
    dataset = open_dataset(annotations=description)
    ids = sorted({s.video_id for s in dataset.segments("validation")})[:videos]
    behaviours = from_dataset(dataset, str(description))
    sources = [VideoSource(v, dataset.video_layout()) for v in ids]
    settings = AnnotateSettings(window=WINDOW, stride=STRIDE)
    smoothing = SmoothingSettings(method="viterbi", min_duration=MIN_DURATION)
    ranker = SpecialistModel(specialist, behaviours)
    models: dict = {"specialist": ranker}
    if checkpoint is not None:
        from verbnoun.evaluate.local_adapter import LlavactionAdapter

        adapter = LlavactionAdapter(checkpoint, mode="text", device="cpu")
        models["model"] = AdapterModel(
            adapter, behaviours, mode="two-stage", frames=frames, size=size, specialist=ranker,
            top_k=5,
        )  # fmt: skip
    summary: dict = {"videos": ids, "window": WINDOW, "stride": STRIDE, "runs": {}}
    for name, model in models.items():
        folder = out / name
        run_annotation(
            folder, sources, model, behaviours, settings, smoothing, truth=description,
            truth_split="validation", progress=progress,
        )  # fmt: skip
        scores = json.loads((folder / "scores.json").read_text(encoding="utf-8"))
        keys = ("frame_accuracy", "edit", "f1@10", "f1@25", "f1@50")
        summary["runs"][name] = {
            "folder": str(folder),
            "ethogram": str(folder / "ethogram.png"),
            "timeline": str(folder / "timeline.html"),
            **{kind: {k: round(scores[kind][k], 2) for k in keys}
               for kind in ("model", "unsmoothed", "majority")},
        }  # fmt: skip
    return summary


def summary_lines(summary: dict) -> list[str]:
    """The stage's scores as printable lines."""
    lines = [f"annotate ({len(summary['videos'])} held-out videos, frame acc / edit / F1@25):"]
    for name, run in summary["runs"].items():
        for kind in ("model", "unsmoothed"):
            m = run[kind]
            label = f"{name}{'' if kind == 'model' else ' unsmoothed'}"
            lines.append(f"  {label:<22} {m['frame_accuracy']:5.1f} / {m['edit']:5.1f} / "
                         f"{m['f1@25']:5.1f}")  # fmt: skip
    m = next(iter(summary["runs"].values()))["majority"]
    lines.append(f"  {'majority baseline':<22} {m['frame_accuracy']:5.1f} / {m['edit']:5.1f} / "
                 f"{m['f1@25']:5.1f}")  # fmt: skip
    return lines
