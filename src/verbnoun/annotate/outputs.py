"""The files a person uses, written from the labels of :mod:`verbnoun.annotate.labels` (every
one atomic; this module only writes).

* ``segments.csv``: EK100's schema (``narration_id`` ... ``all_noun_classes``) plus
  ``action``/``action_class`` (single-label behaviours), ``fps``, ``confidence`` (mean
  probability of the label over the segment's windows) and ``windows``; ``videos.csv`` (frame
  rate and length of each video); ``behaviours.json`` (the vocabulary);
* ``dataset.yaml``: a data set description of ``segments.csv`` (split ``train``, frame-exact
  times, the class lists written beside it), so that ``mqa build``, ``sft build`` and ``eval``
  take the machine-made labels once a person has corrected them;
* ``bouts.csv``: one row per bout (:mod:`verbnoun.annotate.bouts`);
* ``summary.json``: per video and overall, the time budget per behaviour, bouts (count and
  durations) and the transition matrix between consecutive bouts; with ``--bin``, the same per
  time bin (:mod:`verbnoun.annotate.bins`, plotted in ``time_bins.png``);
* ``ethogram.png``: time along x, one row per behaviour, per video; with ground truth, the truth
  in the upper half of each row and the prediction in the lower half;
* ``timeline.html``: the ethogram as inline SVG and every segment with a contact sheet of its
  windows' thumbnails (``thumbs/``, small JPEG files loaded lazily), with a filter by behaviour;
  every string is escaped;
* ``scores.json`` (with ground truth): :func:`verbnoun.annotate.scoring.score_run`.
"""

from __future__ import annotations

import html
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from verbnoun.annotate.bins import binned_summary, plain_text, write_bin_plot
from verbnoun.annotate.labels import VideoLabels, derive, load_answers
from verbnoun.annotate.metrics import BACKGROUND, Run, runs
from verbnoun.annotate.smoothing import SmoothingSettings
from verbnoun.annotate.vocabulary import Behaviours
from verbnoun.data.dataset import format_timestamp
from verbnoun.errors import VerbnounError
from verbnoun.fileio import atomic_write_bytes, csv_bytes, write_json

EK100_COLUMNS = [
    "narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
    "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
    "noun_class", "all_nouns", "all_noun_classes",
]  # fmt: skip
EXTRA_COLUMNS = ["action", "action_class", "fps", "confidence", "windows"]
THUMBS_PER_SEGMENT = 6


def segment_rows(videos: Sequence[VideoLabels], behaviours: Behaviours) -> list[list]:
    """Rows of ``segments.csv`` (EK100 columns, then the extra ones)."""
    from verbnoun.data.ek100 import parse_action_id, single_action_class

    rows = []
    for video in videos:
        participant = video.video_id.partition("_")[0] or video.video_id
        for k, seg in enumerate(video.segments):
            start, stop = seg["first"] / video.fps, seg["end"] / video.fps
            label = seg["label"]
            verb = verb_class = noun = noun_class = all_nouns = all_noun_classes = ""
            action_class = ""
            if single_action_class(label) is not None:
                action_class = label
            elif ":" in label:
                v, n = parse_action_id(label)
                verb_class, noun_class = v, n
                verb = (
                    behaviours.verbs.keys[v] if behaviours.verbs and v in behaviours.verbs else ""
                )
                if behaviours.nouns and n in behaviours.nouns:
                    noun = behaviours.nouns.keys[n]
                all_nouns, all_noun_classes = str([noun]), str([n])
            stamp = format_timestamp(start)
            rows.append([
                f"{video.video_id}_{k}", participant, video.video_id, stamp, stamp,
                format_timestamp(stop), seg["first"], seg["end"], seg["narration"], verb,
                verb_class, noun, noun_class, all_nouns, all_noun_classes,
                behaviours.name(label), action_class, f"{video.fps:g}",
                "" if seg["confidence"] is None else seg["confidence"], len(seg["windows"]),
            ])  # fmt: skip
    return rows


def _class_csv(classes) -> bytes:
    rows = [[i, key, str(list(classes.instances[i])), classes.categories[i]]
            for i, key in enumerate(classes.keys)]  # fmt: skip
    return csv_bytes(["id", "key", "instances", "category"], rows)


def description_yaml(out: Path, behaviours: Behaviours, videos) -> str:
    """``dataset.yaml`` of the run's ``segments.csv`` (writes the class lists it names)."""
    import yaml

    columns = {"id": "narration_id", "video": "video_id", "participant": "participant_id",
               "start": "start_frame", "stop": "stop_frame", "narration": "narration"}  # fmt: skip
    if behaviours.kind == "action":
        assert behaviours.actions is not None
        columns["action"] = "action_class"
        atomic_write_bytes(out / "action_classes.csv", _class_csv(behaviours.actions))
        classes = {"action": "action_classes.csv"}
    else:
        assert behaviours.verbs is not None and behaviours.nouns is not None
        columns.update(verb="verb_class", noun="noun_class")
        atomic_write_bytes(out / "verb_classes.csv", _class_csv(behaviours.verbs))
        atomic_write_bytes(out / "noun_classes.csv", _class_csv(behaviours.nouns))
        classes = {"verb": "verb_classes.csv", "noun": "noun_classes.csv"}
    data: dict = {
        "format_version": 1,
        "name": f"annotated-{out.resolve().name}",
        "labels": behaviours.kind,
        "segments": {
            "columns": columns,
            "time": "frames",
            "fps_column": "fps",
            "class_values": "id",
        },
        "classes": classes,
        "splits": {"train": "segments.csv"},
    }
    layouts = {(type(v.source.layout).__name__, str(getattr(v.source.layout, "root", "")))
               for v in videos}  # fmt: skip
    first = videos[0].source.layout
    if len(layouts) == 1 and first.name in ("chunks", "ek100"):
        spec: dict = {"layout": first.name, "root": str(Path(first.root).resolve())}
        if first.name == "chunks":
            spec["chunk_seconds"] = first.chunk_seconds
        data["videos"] = spec
    header = (
        "# Machine-made labels of `verbnoun annotate`, as a data set: correct segments.csv, then\n"
        "#   verbnoun sft build --dataset dataset.yaml --split train --out sft\n"
        "#   verbnoun mqa build --dataset dataset.yaml --split train --out mqa.jsonl\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False)


def bouts_summary(videos: Sequence[VideoLabels], behaviours: Behaviours) -> dict:
    """Time budget, bouts and transitions of a set of videos (names as keys)."""
    seconds: Counter = Counter()
    durations: dict[str, list[float]] = {}
    transitions: Counter = Counter()
    total = 0.0
    for video in videos:
        total += video.num_frames / video.fps
        if video.sets is not None:  # several behaviours per window: fractions may sum over 1
            for seg in video.segments:
                seconds[behaviours.name(seg["label"])] += (seg["end"] - seg["first"]) / video.fps
            idle = sum(1 for s in video.sets if not s)
            if idle:
                seconds["(no behaviour)"] += idle / video.fps
        for run in runs(video.frames) if video.sets is None else ():
            name = behaviours.name(run.label) if run.label else "(no behaviour)"
            seconds[name] += (run.end - run.start) / video.fps
        previous = None
        for seg in video.segments:
            name = behaviours.name(seg["label"])
            durations.setdefault(name, []).append((seg["end"] - seg["first"]) / video.fps)
            if previous is not None:
                transitions[(previous, name)] += 1
            previous = name
    order = [behaviours.name(x) for x in behaviours.labels]
    names = [n for n in order if n in durations] + sorted(set(durations) - set(order))
    budget = {n: {"seconds": round(s, 3), "fraction": round(s / total, 4) if total else 0.0}
              for n, s in sorted(seconds.items(), key=lambda kv: -kv[1])}  # fmt: skip
    bouts = {n: {"count": len(d), "total_seconds": round(sum(d), 3),
                 "mean_seconds": round(float(np.mean(d)), 3),
                 "median_seconds": round(float(np.median(d)), 3),
                 "min_seconds": round(min(d), 3), "max_seconds": round(max(d), 3)}
             for n in names for d in [durations[n]]}  # fmt: skip
    matrix = [[transitions[(a, b)] for b in names] for a in names]
    return {"seconds": round(total, 3), "time_budget": budget, "bouts": bouts,
            "transitions": {"from_row_to_column": names, "counts": matrix}}  # fmt: skip


def write_ethogram(
    path: Path, videos: Sequence[VideoLabels], behaviours: Behaviours,
    truth: dict[str, list[str]] | None = None,
) -> None:  # fmt: skip
    """``ethogram.png``: per video, one row per behaviour it shows (in the vocabulary's order);
    with ground truth, the truth in the upper half of each row and the prediction below."""
    try:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is in the eval extra
        raise VerbnounError("ethogram.png needs matplotlib: pip install 'verbnoun[eval]'") from None
    rank = {label: i for i, label in enumerate(behaviours.labels)}
    layout = []
    for video in videos:
        predicted = (runs(video.frames) if video.sets is None else  # several: they overlap
                     [Run(s["label"], s["first"], s["end"]) for s in video.segments])  # fmt: skip
        layers = [(predicted, 0.47 if truth else 0.0, 0.45 if truth else 0.9, 1.0)]
        if truth is not None:  # upper half (the y axis runs downwards)
            layers.append((runs(truth[video.video_id]), 0.0, 0.45, 0.5))
        spans: dict[str, list] = {}
        for label_runs, offset, thick, alpha in layers:
            for run in label_runs:
                if run.label != BACKGROUND:
                    spans.setdefault(run.label, []).append((run, offset, thick, alpha))
        order = sorted(spans, key=lambda x: (rank.get(x, len(rank)), x))
        layout.append((video, order, spans))
    heights = [0.7 + 0.22 * max(len(order), 1) for _, order, _ in layout]
    fig = Figure(figsize=(11, sum(heights) + 0.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(videos), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    colours = colormaps["tab20"]
    for ax, (video, order, spans) in zip(axes[:, 0], layout, strict=True):
        for y, label in enumerate(order):
            for run, offset, thick, alpha in spans[label]:
                ax.broken_barh(
                    [(run.start / video.fps, (run.end - run.start) / video.fps)],
                    (y - 0.46 + offset, thick), color=colours(rank.get(label, y) % 20),
                    alpha=alpha,
                )  # fmt: skip
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels([plain_text(behaviours.name(x)) for x in order], fontsize=7)
        ax.set_ylim(len(order) - 0.4, -0.6)
        ax.set_xlim(0, video.num_frames / video.fps)
        ax.tick_params(axis="x", labelsize=7)
        title = plain_text(video.video_id) + ("  (each row: truth above, prediction below)"
                                          if truth else "")  # fmt: skip
        ax.set_title(title, fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("time (s)", fontsize=8)
    fig.subplots_adjust(left=0.2, right=0.98, top=1 - 0.3 / sum(heights),
                        bottom=0.5 / sum(heights), hspace=0.3)  # fmt: skip
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:80em}table{border-collapse:collapse}"
    "td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:middle}"
    "img.t{margin-right:2px;background:#eee}svg{display:block;margin:.3em 0 1em 0}"
    ".hidden{display:none}"
)
_SCRIPT = (
    "function pick(v){for(const r of document.querySelectorAll('[data-label]'))"
    "{r.classList.toggle('hidden',v!=='' && r.dataset.label!==v);}}"
)


def _svg(video: VideoLabels, order: list[str], behaviours: Behaviours, width: int = 900) -> str:
    row = 12
    scale = width / max(video.num_frames, 1)
    parts = [f"<svg width='{width + 160}' height='{row * len(order) + 4}' "
             "xmlns='http://www.w3.org/2000/svg'>"]  # fmt: skip
    for y, label in enumerate(order):
        parts.append(f"<text x='0' y='{y * row + 10}' font-size='9'>"
                     f"{html.escape(behaviours.name(label)[:28])}</text>")  # fmt: skip
    for seg in video.segments:
        y = order.index(seg["label"]) if seg["label"] in order else 0
        hue = (order.index(seg["label"]) * 47) % 360 if seg["label"] in order else 0
        name = html.escape(behaviours.name(seg["label"]))
        parts.append(
            f"<rect data-label='{html.escape(seg['label'])}' x='{160 + seg['first'] * scale:.1f}' "
            f"y='{y * row + 1}' width='{max((seg['end'] - seg['first']) * scale, 1):.1f}' "
            f"height='{row - 2}' fill='hsl({hue},60%,50%)'><title>{name} "
            f"{seg['first'] / video.fps:.2f}-{seg['end'] / video.fps:.2f} s</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def write_timeline(
    path: Path, videos: Sequence[VideoLabels], behaviours: Behaviours, thumbs: bool,
    thumb_size: tuple[int, int], scores: dict | None = None, review: str = "",
) -> None:  # fmt: skip
    """``timeline.html``: one small page, images loaded lazily, every string escaped;
    ``review``: the section of :mod:`verbnoun.annotate.review` (HTML, already escaped)."""
    e = html.escape
    present = [x for x in behaviours.labels if any(s["label"] == x for v in videos
                                                  for s in v.segments)]  # fmt: skip
    present += sorted({s["label"] for v in videos for s in v.segments} - set(present))
    options = "".join(f"<option value='{e(x)}'>{e(behaviours.name(x))}</option>" for x in present)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>verbnoun annotate: timeline"
        f"</title><style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>",
        "<h1>annotation timeline</h1>",
        "<p><a href='ethogram.png'>ethogram.png</a> · <a href='segments.csv'>segments.csv</a> · "
        "<a href='summary.json'>summary.json</a>"
        + (" · <a href='#review'>review: example bouts, label these next</a>" if review else "")
        + "</p>",
        f"<p>behaviour: <select onchange='pick(this.value)'><option value=''>all</option>"
        f"{options}</select></p>",
    ]
    if scores:
        model = scores["model"]
        parts.append(
            "<p>against the ground truth: "
            + ", ".join(
                f"{e(k)} {model[k]:.1f}"
                for k in ("frame_accuracy", "edit", "f1@10", "f1@25", "f1@50")
            )
            + "</p>"
        )
    width, height = thumb_size
    for video in videos:
        order = [x for x in present if any(s["label"] == x for s in video.segments)]
        parts.append(f"<h2>{e(video.video_id)}</h2>{_svg(video, order, behaviours)}")
        parts.append("<table><tr><th>start</th><th>stop</th><th>behaviour</th><th>confidence"
                     "</th><th>frames</th></tr>")  # fmt: skip
        for k, seg in enumerate(video.segments):
            chosen = seg["windows"]
            if len(chosen) > THUMBS_PER_SEGMENT:
                picks = np.linspace(0, len(chosen) - 1, THUMBS_PER_SEGMENT).round().astype(int)
                chosen = [chosen[i] for i in picks]
            images = "".join(
                f"<img class='t' loading='lazy' width='{width}' height='{height}' alt='' "
                f"src='thumbs/{e(video.video_id)}/{i:06d}.jpg'>" for i in chosen
            ) if thumbs else ""  # fmt: skip
            confidence = "" if seg["confidence"] is None else f"{seg['confidence']:.2f}"
            parts.append(
                f"<tr id='{e(video.video_id)}_{k}' data-label='{e(seg['label'])}'>"
                f"<td>{seg['first'] / video.fps:.2f}</td>"
                f"<td>{seg['end'] / video.fps:.2f}</td><td>{e(behaviours.name(seg['label']))}"
                f"</td><td>{confidence}</td><td>{images}</td></tr>"
            )
        parts.append("</table>")
    if review:
        parts.append(f"<div id='review'>{review}</div>")
    parts.append("</body></html>\n")
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))


def write_outputs(
    out: Path, planned, behaviours: Behaviours,
    smoothing: SmoothingSettings, settings, *, truth: Path | None = None,
    truth_split: str | None = None, scored: Path | None = None, bin_seconds: float | None = None,
) -> dict:  # fmt: skip
    """Derive segments from the answers of every window and write every output file
    (``scored``: the stretches ``truth`` covers; ``bin_seconds``: time bins in the summary)."""
    from verbnoun.annotate.bouts import VideoFacts, bouts_of, write_bout_table
    from verbnoun.annotate.review import write_review

    answers = load_answers(out, behaviours)
    videos = [derive(v, answers[v.info.video_id], behaviours, smoothing) for v in planned]
    review = write_review(out, videos, answers, behaviours, smoothing.floor, settings.thumbnails)
    del answers
    atomic_write_bytes(out / "videos.csv", csv_bytes(
        ["video_id", "fps", "num_frames", "duration"],
        [[v.video_id, f"{v.fps:g}", v.num_frames, round(v.num_frames / v.fps, 3)]
         for v in videos],
    ))  # fmt: skip
    write_json(out / "behaviours.json", {**behaviours.settings(), "names": list(behaviours.names),
                                         "by_name": behaviours.by_name})  # fmt: skip
    atomic_write_bytes(
        out / "segments.csv",
        csv_bytes(EK100_COLUMNS + EXTRA_COLUMNS, segment_rows(videos, behaviours)),
    )
    atomic_write_bytes(out / "dataset.yaml", description_yaml(out, behaviours, planned).encode())
    bouts = bouts_of(videos, behaviours)
    write_bout_table(out / "bouts.csv", bouts)
    summary = {
        "overall": bouts_summary(videos, behaviours),
        "videos": {v.video_id: bouts_summary([v], behaviours) for v in videos},
        "smoothing": {k: v for k, v in asdict(smoothing).items() if k != "several"},
        "windows": {"window": settings.window, "stride": settings.stride},
    }
    if smoothing.several is not None:
        summary["behaviours_per_window"] = {
            "per_window": "several", "threshold": smoothing.several,
            "none_reaching": "the most probable behaviour", "viterbi": "not applied",
        }  # fmt: skip
    if bin_seconds is not None:
        facts = {v.video_id: VideoFacts(v.video_id, v.fps, v.num_frames) for v in videos}
        order = [behaviours.name(x) for x in behaviours.labels]
        summary["bins"] = binned_summary(bouts, facts, bin_seconds, order)
        write_bin_plot(out / "time_bins.png", summary["bins"], order)
    scores = None
    truth_frames = None
    if truth is not None:
        from verbnoun.annotate.agreement import AgreementSettings
        from verbnoun.annotate.scoring import score_run

        scores, truth_frames = score_run(out / "segments.csv", truth, truth_split, scored=scored,
                                         agreement=AgreementSettings())  # fmt: skip
        write_json(out / "scores.json", scores)
        summary["scores"] = {k: {m: scores[k][m] for m in
                                 ("frame_accuracy", "edit", "f1@10", "f1@25", "f1@50")}
                             for k in ("model", "unsmoothed", "majority") if k in scores}  # fmt: skip
        summary["scores"]["agreement"] = {m: v["value"] for m, v in
                                          scores["agreement"]["overall"].items()}  # fmt: skip
    write_json(out / "summary.json", summary)
    write_ethogram(out / "ethogram.png", videos, behaviours, truth_frames)
    thumb = (round(settings.thumb_height * planned[0].size[0] / planned[0].size[1]),
             settings.thumb_height)  # fmt: skip
    write_timeline(out / "timeline.html", videos, behaviours, settings.thumbnails, thumb, scores,
                   review.html)  # fmt: skip
    written = ["segments.csv", "bouts.csv", "videos.csv", "behaviours.json", "dataset.yaml",
               "summary.json", "ethogram.png", "timeline.html"]  # fmt: skip
    written += review.files
    written += ["scores.json"] if scores else []
    written += ["time_bins.png"] if bin_seconds is not None else []
    return {"files": written, "segments": sum(len(v.segments) for v in videos),
            "scores": summary.get("scores")}  # fmt: skip
