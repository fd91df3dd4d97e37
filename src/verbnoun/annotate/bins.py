"""Time bins (``annotate --bin 5min``): how behaviour changes over a session.

In: the bouts of a run (:mod:`verbnoun.annotate.bouts`), its videos' frame rates and lengths, and
a bin length. Out: ``summary.json``'s ``bins`` and the plot ``time_bins.png``.

Each video is cut into bins from its own start: bin k covers ``[k * bin, (k + 1) * bin)`` seconds
(in frames: ``round(k * bin * fps)`` up to ``round((k + 1) * bin * fps)``), the last one shorter
when the video ends inside it. Per bin:

* ``time_budget``: seconds (and share of the bin) of each behaviour, counted frame by frame, so a
  bout that crosses a bin edge is split between the bins; ``(no behaviour)`` is the rest;
* ``bouts``: per behaviour, the number of bouts that *start* in the bin and their mean duration
  (whole bouts, also the part past the bin's end);
* ``transitions``: counts of one bout followed by the next in the same video, counted in the bin
  where the second bout starts; rows are "from", columns "to", both in the order of
  ``behaviours``.

``overall`` adds bin k of every video together (the first five minutes of each video, then the
next five, ...); ``videos`` holds each video's bins.
"""

from __future__ import annotations

import bisect
import io
import itertools
import math
import re
from collections.abc import Sequence
from pathlib import Path

from verbnoun.annotate.bouts import Bout, VideoFacts
from verbnoun.errors import VerbnounError

NO_BEHAVIOUR = "(no behaviour)"
_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)")


def parse_duration(text: str, option: str = "--bin") -> float:
    """Seconds of ``30s``, ``5min`` (or ``5m``), ``1h``, ``1.5h`` or a plain number of seconds."""
    match = _DURATION.fullmatch(str(text).strip().lower())
    if match is None or match.group(2) not in _UNITS:
        raise VerbnounError(f"{option} {text!r}: not a duration; write e.g. 30s, 5min or 1h")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not seconds > 0:
        raise VerbnounError(f"{option} {text!r}: a bin must be longer than 0 s")
    return seconds


def _bins_of(fact: VideoFacts, seconds: float) -> list[tuple[int, int]]:
    count = max(math.ceil(fact.num_frames / fact.fps / seconds - 1e-9), 1)
    edges = [min(round(k * seconds * fact.fps), fact.num_frames) for k in range(count + 1)]
    edges[-1] = fact.num_frames
    return list(itertools.pairwise(edges))


def _empty(names: Sequence[str]) -> dict:
    return {"frames": {n: 0 for n in names}, "durations": {n: [] for n in names},
            "transitions": [[0] * len(names) for _ in names], "seconds": 0.0}  # fmt: skip


def _tally(
    bouts: Sequence[Bout], fact: VideoFacts, seconds: float, names: Sequence[str]
) -> list[dict]:
    bins = _bins_of(fact, seconds)
    tallies = [_empty(names) for _ in bins]
    starts = [a for a, _ in bins]
    index = {n: i for i, n in enumerate(names)}
    for (a, b), tally in zip(bins, tallies, strict=True):
        tally["seconds"] = (b - a) / fact.fps
        tally["span"] = (a / fact.fps, b / fact.fps)
    previous = None
    for bout in bouts:
        first = max(bisect.bisect_right(starts, bout.start_frame) - 1, 0)
        for k in range(first, bisect.bisect_left(starts, bout.stop_frame)):
            a, b = bins[k]
            tallies[k]["frames"][bout.behaviour] += max(
                min(bout.stop_frame, b) - max(bout.start_frame, a), 0
            )
        home = tallies[first]
        home["durations"][bout.behaviour].append(bout.duration)
        if previous is not None:
            home["transitions"][index[previous]][index[bout.behaviour]] += 1
        previous = bout.behaviour
    for tally in tallies:
        tally["frames"] = {n: f / fact.fps for n, f in tally["frames"].items()}
    return tallies


def _report(tally: dict, k: int, seconds: float, names: Sequence[str]) -> dict:
    total = tally["seconds"]
    busy = sum(tally["frames"].values())
    budget = {n: {"seconds": round(tally["frames"][n], 3),
                  "fraction": round(tally["frames"][n] / total, 4) if total else 0.0}
              for n in names}  # fmt: skip
    rest = max(total - busy, 0.0)
    budget[NO_BEHAVIOUR] = {"seconds": round(rest, 3),
                            "fraction": round(rest / total, 4) if total else 0.0}  # fmt: skip
    bouts = {n: {"count": len(d), "mean_seconds": round(sum(d) / len(d), 3) if d else None}
             for n in names for d in [tally["durations"][n]]}  # fmt: skip
    start, stop = tally["span"]
    return {"bin": k, "start_s": round(start, 3), "stop_s": round(stop, 3),
            "seconds": round(total, 3), "time_budget": budget, "bouts": bouts,
            "transitions": tally["transitions"]}  # fmt: skip


def binned_summary(
    bouts: Sequence[Bout], facts: dict[str, VideoFacts], seconds: float,
    order: Sequence[str] = (),
) -> dict:  # fmt: skip
    """``summary.json``'s ``bins``: per video and overall (bin k of every video added)."""
    present = {b.behaviour for b in bouts}
    names = [n for n in order if n in present] + sorted(present - set(order))
    by_video: dict[str, list[Bout]] = {v: [] for v in facts}
    for bout in bouts:
        if bout.video_id not in by_video:
            raise VerbnounError(f"bout {bout.bout}: video {bout.video_id!r} has no frame rate")
        by_video[bout.video_id].append(bout)
    videos, pooled = {}, []
    for video, fact in facts.items():
        mine = sorted(by_video[video], key=lambda b: (b.start_frame, b.stop_frame))
        tallies = _tally(mine, fact, seconds, names)
        videos[video] = [_report(t, k, seconds, names) for k, t in enumerate(tallies)]
        for k, tally in enumerate(tallies):
            if k == len(pooled):
                pooled.append(_empty(names))
            total = pooled[k]
            total["seconds"] += tally["seconds"]
            for n in names:
                total["frames"][n] += tally["frames"][n]
                total["durations"][n] += tally["durations"][n]
            for i, row in enumerate(tally["transitions"]):
                for j, value in enumerate(row):
                    total["transitions"][i][j] += value
    overall = []
    for k, tally in enumerate(pooled):  # as long as the longest video's bin k
        longest = max(bins[k]["seconds"] for bins in videos.values() if k < len(bins))
        tally["span"] = (k * seconds, k * seconds + longest)
        overall.append(_report(tally, k, seconds, names))
    return {"bin_seconds": seconds, "behaviours": names, "transitions": "from_row_to_column",
            "overall": overall, "videos": videos}  # fmt: skip


def plain_text(text: str) -> str:
    """Text matplotlib shows as written (``$`` would start mathematics)."""
    return text.replace("$", r"\$")


def write_bin_plot(path: Path, bins: dict, colours_of: Sequence[str] = ()) -> None:
    """``time_bins.png``: per bin (all videos), the share of time of each behaviour (stacked
    bars) above the number of bouts that start in it (one line per behaviour)."""
    try:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is in the eval extra
        raise VerbnounError(
            "time_bins.png needs matplotlib: pip install 'verbnoun[eval]'"
        ) from None
    from verbnoun.fileio import atomic_write_bytes

    names, overall = bins["behaviours"], bins["overall"]
    rank = {n: i for i, n in enumerate(colours_of or names)}
    palette = colormaps["tab20"]
    minutes = bins["bin_seconds"] >= 120
    scale = 60.0 if minutes else 1.0
    x = [b["start_s"] / scale for b in overall]
    width = [b["seconds"] / scale * 0.9 for b in overall]
    fig = Figure(figsize=(10, 6))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    base = [0.0] * len(overall)
    for n in [*names, NO_BEHAVIOUR]:
        share = [b["time_budget"][n]["fraction"] for b in overall]
        colour = "#cccccc" if n == NO_BEHAVIOUR else palette(rank.get(n, len(rank)) % 20)
        top.bar(x, share, width=width, bottom=base, align="edge", color=colour, label=plain_text(n))
        base = [a + b for a, b in zip(base, share, strict=True)]
        if n != NO_BEHAVIOUR:
            centre = [a + w / 2 for a, w in zip(x, width, strict=True)]
            counts = [b["bouts"][n]["count"] for b in overall]
            bottom.plot(centre, counts, marker="o", color=colour, label=plain_text(n))
    top.set_ylim(0, 1)
    top.set_ylabel("share of time", fontsize=8)
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel("bouts started", fontsize=8)
    bottom.set_xlabel(f"time ({'min' if minutes else 's'}), bins of {bins['bin_seconds']:g} s",
                      fontsize=8)  # fmt: skip
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.08, right=0.8, top=0.97, bottom=0.09, hspace=0.12)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())
