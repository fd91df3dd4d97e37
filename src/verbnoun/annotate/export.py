"""Exports of a run's bouts that behaviour tools read (``verbnoun annotate export RUN``).

In: a finished ``annotate`` run folder; its bouts come from ``segments.csv`` (so corrections made
there by hand are exported) and ``videos.csv`` (:func:`verbnoun.annotate.bouts.read_run_bouts`),
its behaviours from ``behaviours.json``. Out, each file written atomically:

* **NWB** (``--nwb FILE``), with the ``ndx-ethogram`` extension (``pip install
  'verbnoun[nwb]'``): in the processing module ``behavior``, an ``Ethogram`` table ``ethogram``
  (one row per behaviour of the run, seen or not: ``behavior`` its name, ``definition`` its
  option text, ``exclusive``: one behaviour at a time) and, per video, an ``EthogramBouts`` table
  ``bouts_<video id>`` (``/`` in an id becomes ``_``): one row per bout, ``start_time`` and
  ``stop_time`` in seconds from the video's start, ``label`` the behaviour's name, plus the
  columns ``start_frame``, ``stop_frame`` and ``confidence`` (NaN when unknown);
  ``labeling_method`` is ``automated``, ``source_software`` names verbnoun and ``parameters``
  holds the run's model and smoothing settings as JSON.
* **BORIS** (``--boris FILE.tsv`` or ``.csv``): BORIS's *tabular events* export, one START and
  one STOP row per bout, each video one observation (its id the video id). The columns and their
  values follow ``export_tabular_events`` in BORIS's ``boris/export_observation.py`` (commit
  73bdf07, 2026) for a media observation with one media file, no independent variables and no
  modifiers: Observation id, Observation date, Description, Observation duration, Observation
  type (``Media file(s)``), Source (``player #1:<media>``), Time offset (s), Media duration (s),
  FPS, Subject (empty: no focal subject), Behavior, Behavioral category (empty), Behavior type
  (``START``/``STOP``), Time (seconds, 3 decimals), Media file name, Image index (the frame
  index), Image file path (``NA``), Comment (the bout's mean confidence). The media file is named
  by the video id (the run keeps no paths). Rows go by observation, then time (a STOP before a
  START at the same time).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from verbnoun import __version__
from verbnoun.annotate.bouts import Bout, VideoFacts, read_run_bouts
from verbnoun.errors import VerbnounError
from verbnoun.fileio import atomic_outputs, atomic_write_bytes

BORIS_COLUMNS = [
    "Observation id", "Observation date", "Description", "Observation duration",
    "Observation type", "Source", "Time offset (s)", "Media duration (s)", "FPS", "Subject",
    "Behavior", "Behavioral category", "Behavior type", "Time", "Media file name", "Image index",
    "Image file path", "Comment",
]  # fmt: skip


@dataclass
class RunBouts:
    """What the exports need of a run folder."""

    run: Path
    bouts: list[Bout]
    videos: dict[str, VideoFacts]
    behaviours: list[tuple[str, str]]  # (name, definition) of every behaviour of the run
    parameters: dict


def read_run(run: Path) -> RunBouts:
    """The bouts, videos, behaviours and settings of a finished annotate run folder."""
    from verbnoun.annotate.scoring import load_behaviours
    from verbnoun.fileio import read_json

    run = Path(run)
    if not run.is_dir():
        raise VerbnounError(f"{run}: no such run folder")
    bouts, videos = read_run_bouts(run)
    known = load_behaviours(run)
    behaviours = []
    if known is not None:
        behaviours = [(known.name(x), text)
                      for x, text in zip(known.labels, known.option_texts, strict=True)]  # fmt: skip
    names = {name for name, _ in behaviours}
    behaviours += [(n, n) for n in sorted({b.behaviour for b in bouts} - names)]
    parameters: dict = {}
    if (run / "config.json").is_file():
        config = read_json(run / "config.json")
        parameters = {k: config.get(k) for k in ("model", "model_settings", "window", "stride")}
    if (run / "summary.json").is_file():
        parameters["smoothing"] = read_json(run / "summary.json").get("smoothing")
    return RunBouts(run, bouts, videos, behaviours, parameters)


def session_time(text: str | None) -> datetime:
    """``--session-start``: an ISO 8601 time (UTC when it names no zone); default now."""
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise VerbnounError(
            f"--session-start {text!r}: not an ISO 8601 time (e.g. 2024-05-01T09:30:00)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def nwb_name(video_id: str) -> str:
    return "bouts_" + re.sub(r"[/:]", "_", video_id)


def write_nwb(path: Path, data: RunBouts, start: datetime) -> None:
    """The NWB file of the run's bouts (see the module)."""
    try:
        from ndx_ethogram import Ethogram, EthogramBouts
        from pynwb import NWBHDF5IO, NWBFile
    except ImportError:
        raise VerbnounError(
            "--nwb needs pynwb and ndx-ethogram: pip install 'verbnoun[nwb]'"
        ) from None

    nwb = NWBFile(
        session_description=f"behaviour bouts of {len(data.videos)} video(s) labelled by "
        f"verbnoun annotate ({data.run.name})",
        identifier=str(uuid.uuid4()),
        session_start_time=start,
    )
    module = nwb.create_processing_module("behavior", "behaviour bouts from verbnoun annotate")
    ethogram = Ethogram(name="ethogram", description="the behaviours the run was asked about",
                        exclusive=True)  # fmt: skip
    for name, definition in data.behaviours:
        ethogram.add_row(behavior=name, definition=definition)
    module.add(ethogram)
    by_video: dict[str, list[Bout]] = {v: [] for v in data.videos}
    for bout in data.bouts:
        by_video[bout.video_id].append(bout)
    seen: set[str] = set()
    for video, bouts in by_video.items():
        name = nwb_name(video)
        if name in seen:
            raise VerbnounError(f"{data.run}: two videos give the NWB table name {name!r}")
        seen.add(name)
        table = EthogramBouts(
            name=name,
            description=f"bouts of video {video} ({data.videos[video].duration:g} s, "
            f"{data.videos[video].fps:g} fps); times from the video's start",
            labeling_method="automated",
            source_software=f"verbnoun {__version__} (annotate)",
            parameters=json.dumps(data.parameters, sort_keys=True),
        )
        for bout in bouts:
            table.add_row(start_time=bout.start, stop_time=bout.stop, label=bout.behaviour)
        # typed arrays: a video without bouts still gets its (empty) columns
        table.add_column(name="start_frame", description="first frame of the bout",
                         data=np.array([b.start_frame for b in bouts], dtype=np.int64))  # fmt: skip
        table.add_column(name="stop_frame", description="first frame after the bout",
                         data=np.array([b.stop_frame for b in bouts], dtype=np.int64))  # fmt: skip
        table.add_column(
            name="confidence",
            description="mean probability of the behaviour over the bout's windows (NaN: none)",
            data=np.array([math.nan if b.confidence is None else b.confidence for b in bouts],
                          dtype=np.float64),
        )  # fmt: skip
        table.ethogram = ethogram
        module.add(table)
    with atomic_outputs(path) as (tmp,), NWBHDF5IO(str(tmp), "w") as handle:
        handle.write(nwb)


def boris_rows(data: RunBouts, start: datetime, description: str) -> list[list[str]]:
    """The rows (no header) of BORIS's tabular events export of the run's bouts."""
    date = start.strftime("%Y-%m-%d %H:%M:%S")
    rows = []
    for video, facts in data.videos.items():
        events = []
        for bout in (b for b in data.bouts if b.video_id == video):
            comment = "" if bout.confidence is None else f"confidence {bout.confidence:.3f}"
            events.append((bout.start, 1, bout.behaviour, "START", bout.start_frame, comment))
            events.append((bout.stop, 0, bout.behaviour, "STOP", bout.stop_frame, comment))
        duration = f"{facts.duration:.3f}"
        for time, _, behaviour, kind, frame, comment in sorted(events, key=lambda e: e[:2]):
            rows.append([
                video, date, description, duration, "Media file(s)", f"player #1:{video}",
                "0.0", duration, f"{facts.fps:.3f}", "", behaviour, "", kind, f"{time:.3f}",
                video, str(frame), "NA", comment,
            ])  # fmt: skip
    return rows


def write_boris(path: Path, data: RunBouts, start: datetime) -> None:
    """BORIS's tabular events export (TSV, or CSV when the name ends in ``.csv``)."""
    path = Path(path)
    buffer = io.StringIO()
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(BORIS_COLUMNS)
    writer.writerows(boris_rows(data, start, f"verbnoun annotate {data.run.name}"))
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def export_run(
    run: Path, *, nwb: Path | None = None, boris: Path | None = None,
    session_start: str | None = None,
) -> list[Path]:  # fmt: skip
    """Write the asked-for exports of a run folder; returns the files written."""
    if nwb is None and boris is None:
        raise VerbnounError("nothing to export: give --nwb FILE and/or --boris FILE")
    start = session_time(session_start)
    data = read_run(run)
    written = []
    if nwb is not None:
        write_nwb(nwb, data, start)
        written.append(Path(nwb))
    if boris is not None:
        write_boris(boris, data, start)
        written.append(Path(boris))
    return written
