"""What a person checks after ``annotate``: example bouts per behaviour, and what to label next.

Written into the run folder with the other outputs (:func:`write_review`), linked from
``timeline.html``:

* ``review/NN-NAME.jpg``, one per behaviour with segments: a contact sheet
  (:func:`verbnoun.data.images.contact_sheet`) with one row per example bout, the most
  confident bouts first, then the least confident ones (``EXAMPLES`` of each; all bouts when
  there are fewer), each row ``THUMBS`` window thumbnails spread over the bout (from ``thumbs/``,
  so nothing is decoded again; no sheets when the run has no thumbnails). The page lists the
  rows in the same order with their times and confidences, each linked to its segment's row.
  A bout's confidence is its segment's (the mean probability of its label over its windows).
* ``label_next.csv``: the windows the model is least sure of, least sure first: ``video``,
  ``start``, ``stop`` (seconds), ``predicted`` (the window's own best behaviour, before
  smoothing), ``confidence`` (that behaviour's probability among the behaviours it scored) and an
  empty ``behaviour`` column for a person to fill in. Windows overlapping a window already listed
  are skipped, and so are those inside the stretches an adapted model was trained on. ``verbnoun
  annotate adapt --labels label_next.csv`` takes the file back (rows left empty are ignored).
  Models that answer with text only score one behaviour per window, so their confidences do not
  rank anything.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from verbnoun.annotate.metrics import BACKGROUND

EXAMPLES = 3  # most and least confident bouts per behaviour
THUMBS = 6  # thumbnails per bout
LABEL_NEXT = 50  # windows in label_next.csv at most
NO_BEHAVIOUR = "(no behaviour)"
COLUMNS = ["video", "start", "stop", "predicted", "confidence", "behaviour"]


@dataclass
class Review:
    """The review files written and the section of ``timeline.html`` that links them."""

    files: list[str] = field(default_factory=list)
    html: str = ""


def example_bouts(segments: Sequence[tuple[str, int, dict]]) -> list[tuple[str, int, dict, str]]:
    """``(video, k, segment, which)`` of one behaviour's segments: the ``EXAMPLES`` most
    confident (``which`` = ``most``), then the ``EXAMPLES`` least confident (``least``), least
    confident last; every segment once."""
    ranked = sorted(segments, key=lambda s: (-(s[2]["confidence"] or 0.0), s[0], s[1]))
    if len(ranked) <= 2 * EXAMPLES:
        half = math.ceil(len(ranked) / 2)
        return [(*s, "most" if i < half else "least") for i, s in enumerate(ranked)]
    return [(*s, "most") for s in ranked[:EXAMPLES]] + [(*s, "least") for s in ranked[-EXAMPLES:]]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:40] or "behaviour"


def _thumb(out: Path, video: str, index: int) -> np.ndarray | None:
    from PIL import Image

    path = out / "thumbs" / video / f"{index:06d}.jpg"
    if not path.is_file():
        return None
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _sheet(out: Path, rows: list[tuple[str, list[int]]]) -> np.ndarray | None:
    """One row of ``THUMBS`` thumbnails per bout (padded dark), or ``None`` without thumbnails."""
    from verbnoun.data.images import contact_sheet

    images: list[list[np.ndarray]] = []
    for video, windows in rows:
        picks = windows
        if len(windows) > THUMBS:
            picks = [
                windows[i] for i in np.linspace(0, len(windows) - 1, THUMBS).round().astype(int)
            ]
        found = [t for t in (_thumb(out, video, i) for i in picks) if t is not None]
        images.append(found)
    if not any(images):
        return None
    height = max(t.shape[0] for row in images for t in row)
    width = max(t.shape[1] for row in images for t in row)
    tiles = np.full((len(rows) * THUMBS, height, width, 3), 40, dtype=np.uint8)
    for r, row in enumerate(images):
        for c, thumb in enumerate(row[:THUMBS]):
            tiles[r * THUMBS + c, : thumb.shape[0], : thumb.shape[1]] = thumb
    return contact_sheet(tiles, columns=THUMBS, gap=3)


def window_confidences(answers, floor: float) -> tuple[list[str], np.ndarray]:
    """Each window's best label (before smoothing) and its probability among the labels."""
    from verbnoun.annotate.smoothing import log_probabilities

    if not len(answers.index):
        return [], np.zeros(0)
    matrix = log_probabilities(answers.scores, answers.labels, floor)
    best = matrix.argmax(axis=1)
    return [answers.labels[i] for i in best], np.exp(matrix.max(axis=1))


def label_next_rows(
    videos, answers: dict, behaviours, floor: float,
    exclude: dict[str, list[tuple[float, float]]] | None = None, limit: int = LABEL_NEXT,
) -> list[list]:  # fmt: skip
    """The least sure windows, least sure first, none overlapping another or an excluded
    stretch (seconds)."""
    candidates = []
    for video in videos:
        found = answers.get(video.video_id)
        if found is None:
            continue
        labels, confidence = window_confidences(found, floor)
        for k in range(len(labels)):
            first, end = int(found.first[k]), int(found.end[k])
            candidates.append((float(confidence[k]), video.video_id, first, end, labels[k],
                               video.fps))  # fmt: skip
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    taken: dict[str, list[tuple[int, int]]] = {}
    rows = []
    for confidence, video, first, end, label, fps in candidates:
        if len(rows) >= limit:
            break
        if any(first < b and a < end for a, b in taken.get(video, ())):
            continue
        start, stop = first / fps, end / fps
        if any(start < b and a < stop for a, b in (exclude or {}).get(video, ())):
            continue
        taken.setdefault(video, []).append((first, end))
        name = NO_BEHAVIOUR if label == BACKGROUND else behaviours.name(label)
        rows.append([video, f"{start:.3f}", f"{stop:.3f}", name, f"{confidence:.4f}", ""])
    return rows


def adapted_stretches(out: Path) -> dict[str, list[tuple[float, float]]] | None:
    """The stretches an adapted model of this run was trained on (``None`` for other models, or
    when its folder is gone)."""
    from verbnoun.errors import VerbnounError
    from verbnoun.fileio import read_json

    try:
        config = read_json(out / "config.json")
        if config.get("model") != "adapted":
            return None
        from verbnoun.annotate.adapt import read_config

        scored = read_config(config["model_settings"]["adapted"]).get("scored") or {}
        return {v: [(float(a), float(b)) for a, b in spans] for v, spans in scored.items()}
    except (VerbnounError, KeyError, TypeError, ValueError):
        return None


def write_review(
    out: Path, videos, answers: dict, behaviours, floor: float, thumbs: bool
) -> Review:
    """Write ``review/*.jpg`` (with thumbnails) and ``label_next.csv``; returns the files and
    the HTML section for ``timeline.html`` (every string escaped)."""
    from verbnoun.data.images import jpeg_bytes
    from verbnoun.fileio import atomic_write_bytes, csv_bytes

    e = html.escape
    review = Review()
    rows = label_next_rows(videos, answers, behaviours, floor, adapted_stretches(out))
    atomic_write_bytes(out / "label_next.csv", csv_bytes(COLUMNS, rows))
    review.files.append("label_next.csv")
    parts = [
        "<h2>review</h2>",
        f"<p><a href='label_next.csv'>label_next.csv</a>: the {len(rows)} windows the model is "
        "least sure of, least sure first; fill in the behaviour column and give the file to "
        "<code>verbnoun annotate adapt --labels</code> (empty rows are ignored).</p>",
    ]
    by_label: dict[str, list[tuple[str, int, dict]]] = {}
    for video in videos:
        for k, segment in enumerate(video.segments):
            by_label.setdefault(segment["label"], []).append((video.video_id, k, segment))
    order = [x for x in behaviours.labels if x in by_label] + sorted(
        set(by_label) - set(behaviours.labels)
    )
    fps = {v.video_id: v.fps for v in videos}
    for number, label in enumerate(order, start=1):
        name = behaviours.name(label)
        examples = example_bouts(by_label[label])
        image = ""
        if thumbs:
            sheet = _sheet(out, [(video, seg["windows"]) for video, _, seg, _ in examples])
            if sheet is not None:
                relative = f"review/{number:02d}-{_slug(name)}.jpg"
                atomic_write_bytes(out / relative, jpeg_bytes(sheet))
                review.files.append(relative)
                image = (f"<p><img loading='lazy' alt='example bouts of {e(name)}' "
                         f"src='{e(relative)}'></p>")  # fmt: skip
        items = []
        for video, k, seg, which in examples:
            start, stop = seg["first"] / fps[video], seg["end"] / fps[video]
            confidence = "-" if seg["confidence"] is None else f"{seg['confidence']:.2f}"
            items.append(
                f"<li><a href='#{e(video)}_{k}'>{e(video)} {start:.2f}-{stop:.2f} s</a>, "
                f"confidence {confidence} ({which} confident)</li>"
            )
        parts.append(
            f"<div data-label='{e(label)}'><h3>{e(name)}: {len(by_label[label])} bouts</h3>"
            f"{image}<ol>{''.join(items)}</ol></div>"
        )
    review.html = "\n".join(parts)
    return review
