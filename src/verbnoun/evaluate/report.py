"""``verbnoun report``: one static page that states what the runs found and shows every question.

Writes ``OUT.html`` and, when frames are given, ``OUT_files/frames/``: one contact sheet (JPEG
or WebP) per distinct segment, written once (two benchmarks on the same segments share them; a
later report into the same folder keeps the files whose frame settings match, recorded in
``frames.json``). The page needs no server and no external asset. From the top:

1. **findings**: each claim the run set can test (:mod:`verbnoun.evaluate.findings`: each model
   against the strongest baseline, hard vs random distractors, or the claims a caller passes,
   like the demo's), its effect, its exact paired test and whether it held;
2. a pivot table: models down, benchmarks across, accuracy with its 95% bootstrap interval;
3. a grouped bar chart of the same (horizontal bars, sized to its labels);
4. the paired tests that answer a question (each model against the baselines and against each
   other on the same benchmark), with the full matrix of pairs folded away;
5. the question browser: every question of every benchmark, a page at a time, filtered by
   benchmark, run, right/wrong, verb, noun or text, with keyboard navigation. The question data
   is one compact JSON block (strings stored once, columns of numbers); the page's size at
   10,000 questions x 12 runs is measured by ``benchmarks/bench_report.py`` (``make bench``
   writes it into ``benchmarks/results.md``).

Every string reaches the page escaped: HTML text through :func:`html.escape`, the data block as
JSON with ``<``, ``>`` and ``&`` written as ``\\u`` escapes and shown by ``textContent``. A
record with a ``failure`` (retries exhausted) is shown as failed and counts as neither right nor
wrong.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from verbnoun.bench.prompts import letter
from verbnoun.bench.questions import Question
from verbnoun.evaluate.findings import (
    Claim,
    check_claims,
    default_claims,
    failed,
    layout,
    relevant_pairs,
)
from verbnoun.evaluate.report_assets import SCRIPT, STYLE
from verbnoun.evaluate.score import Run, compare
from verbnoun.fileio import atomic_write_bytes
from verbnoun.progress import Progress

FORMATS = {"jpeg": ".jpg", "webp": ".webp"}
PAGE_SIZE = 50
RAW_LIMIT = 200  # characters of a raw answer kept in the page


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _tex(text: str) -> str:
    """Matplotlib text shown literally (a ``$`` would start mathtext)."""
    return text.replace("$", r"\$")


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", pad_inches=0.15)
    plt.close(figure)
    return buffer.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accuracy_plot(rows: Sequence[dict]) -> bytes:
    """One horizontal bar per run (``score``'s rows) with its 95% interval, as PNG bytes."""
    plt = _pyplot()
    labels = [_tex(Path(r["run"]).name) for r in rows]
    values = [100 * r["accuracy"] for r in rows]
    errors = [
        [100 * (r["accuracy"] - r["ci95"][0]) for r in rows],
        [100 * (r["ci95"][1] - r["accuracy"]) for r in rows],
    ]
    figure, axis = plt.subplots(figsize=(6.5, 0.9 + 0.32 * len(rows)), dpi=100)
    positions = list(range(len(rows)))[::-1]
    axis.barh(positions, values, xerr=errors, capsize=3, color="#4c72b0", height=0.6)
    axis.set_yticks(positions, labels)
    axis.set_xlim(0, 100)
    axis.set_xlabel("accuracy (%) with 95% bootstrap interval")
    return _png(figure)


def chart_figure(grid: dict):
    """The grouped bar chart of :func:`verbnoun.evaluate.findings.layout`: a group of bars per
    model (top to bottom as in the pivot), a bar per benchmark with its 95% interval and its
    value written past the interval. The height grows with the bars, so labels never overlap;
    the page saves it with a tight bounding box, so nothing is cut off."""
    plt = _pyplot()
    models = [m["name"] for m in grid["models"]]
    benches = [b["name"] for b in grid["benchmarks"]]
    bar = 0.8 / max(1, len(benches))
    height = 0.8 + len(models) * (0.22 * len(benches) + 0.18) + 0.25 * len(benches)
    figure, axis = plt.subplots(figsize=(7.0, height), dpi=100)
    colours = plt.get_cmap("tab10").colors
    for j, bench in enumerate(benches):
        ys, xs, low, high = [], [], [], []
        for i, model in enumerate(models):
            cell = grid["cells"][model].get(bench)
            if cell is None or cell["n"] == 0:
                continue
            y = (len(models) - 1 - i) + (len(benches) - 1 - j - (len(benches) - 1) / 2) * bar
            ys.append(y)
            xs.append(100 * cell["accuracy"])
            low.append(max(0.0, 100 * (cell["accuracy"] - cell["ci95"][0])))
            high.append(max(0.0, 100 * (cell["ci95"][1] - cell["accuracy"])))
        axis.barh(
            ys, xs, height=bar * 0.9, xerr=[low, high], capsize=2, color=colours[j % 10],
            label=_tex(bench), error_kw={"elinewidth": 0.8},
        )  # fmt: skip
        for y, x, h in zip(ys, xs, high, strict=True):
            axis.text(x + h + 1.0, y, f"{x:.1f}", va="center", fontsize=7)
    axis.set_yticks(range(len(models)), [_tex(m) for m in reversed(models)])
    axis.set_xlim(0, 112)
    axis.set_xticks(range(0, 101, 20))
    axis.set_xlabel("accuracy (%), 95% bootstrap interval")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.7 / height - 0.05), ncol=min(3, len(benches)),
        frameon=False, fontsize=8,
    )  # fmt: skip
    return figure


def segment(question: Question) -> tuple:
    """What a contact sheet shows: the video and the time span."""
    return (question.video_id, question.start, question.stop)


def segment_key(question: Question, settings: dict) -> str:
    """The file stem of a segment's contact sheet (same segment and settings, same file)."""
    text = json.dumps([question.video_id, question.start, question.stop, settings], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def write_thumbnails(
    questions: Sequence[Question],
    frames_of: Callable[[Question], object],
    folder: Path,
    *,
    image_format: str = "jpeg",
    quality: int = 80,
    settings: dict | None = None,
    workers: int = 4,
    progress: bool = False,
) -> tuple[dict[tuple, str], tuple[int, int]]:
    """One contact sheet per distinct segment of ``questions`` under ``folder``; files already
    there with the same settings are kept. Returns :func:`segment` -> file name, and the
    sheets' ``(width, height)``."""
    from PIL import Image

    from verbnoun.data.images import contact_sheet

    if image_format not in FORMATS:
        raise ValueError(f"unknown thumbnail format {image_format!r}")
    settings = {**(settings or {}), "format": image_format, "quality": quality}
    manifest = folder / "frames.json"
    try:  # a damaged manifest of the sheets only means they are made again
        old = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else None
    except (OSError, ValueError):
        old = None
    keep = isinstance(old, dict) and old.get("settings") == settings
    suffix = FORMATS[image_format]
    wanted: dict[tuple, Question] = {}
    for q in questions:
        wanted.setdefault(segment(q), q)
    names = {key: segment_key(q, settings) + suffix for key, q in wanted.items()}
    todo = [key for key in wanted if not (keep and (folder / names[key]).is_file())]
    folder.mkdir(parents=True, exist_ok=True)
    current = set(names.values())
    for stale in folder.iterdir():  # sheets of other settings or of questions gone
        if stale.suffix in FORMATS.values() and stale.name not in current:
            stale.unlink()
    size = tuple(old["size"]) if keep and old.get("size") else None

    def one(key: tuple) -> tuple[int, int]:
        import numpy as np

        sheet = contact_sheet(np.asarray(frames_of(wanted[key])))
        buffer = io.BytesIO()
        Image.fromarray(sheet).save(buffer, format=image_format.upper(), quality=quality)
        atomic_write_bytes(folder / names[key], buffer.getvalue())
        return sheet.shape[1], sheet.shape[0]

    with (
        Progress("thumbnails", len(todo), enabled=progress and bool(todo)) as advance,
        ThreadPoolExecutor(max(1, workers)) as pool,
    ):
        for shape in pool.map(one, todo):
            size = size or shape
            advance(1)
    if size is None and names:  # every file kept, no size recorded: read one
        with Image.open(folder / next(iter(names.values()))) as image:
            size = image.size
    size = size or (0, 0)
    atomic_write_bytes(
        manifest,
        json.dumps({"settings": settings, "size": list(size)}, indent=2).encode("utf-8"),
    )
    return names, (int(size[0]), int(size[1]))


class _Strings:
    """Each distinct string once; the data refers to it by index."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.items)
            self.items.append(text)
        return found


def _failures(run: Run) -> dict[str, dict]:
    """The run's questions whose endpoint never answered (``failed*.jsonl``), by id."""
    from verbnoun.evaluate.records import failures

    return failures(run.path, run.predictions) if run.path.is_dir() else {}


def _failure_text(record: dict) -> str:
    """Why the endpoint never answered, in a few words."""
    reason = record.get("failure") or record.get("failed")
    if not isinstance(reason, dict):
        return str(reason)
    text = str(reason.get("kind", "failed"))
    if reason.get("status") is not None:
        text += f" (HTTP {reason['status']})"
    if reason.get("attempts"):
        text += f" after {reason['attempts']} tries"
    return text + (f": {reason['message']}" if reason.get("message") else "")


def _shown(record: dict) -> str | None:
    """What a run answered, when not an option letter (open vocabulary: the mapped action;
    multi-select: the set of action ids and the rule that read it)."""
    if "labels" in record:
        labels = record["labels"]
        if labels is None:
            return f"no set ({record.get('rule', 'unparsed')})"
        return f"{{{', '.join(labels)}}} ({record.get('rule', '')})"
    if "action_id" in record and "method" in record:
        action = record["action_id"]
        return f"{action} ({record['method']})" if action else "unmapped"
    return None


def question_data(
    runs: Sequence[Run],
    grid: dict,
    *,
    images: dict[tuple, str] | None = None,
    names: tuple[dict, dict] | None = None,
) -> dict:
    """The browser's data: benchmarks, questions in columns, each run's answers in columns.

    Questions are numbered benchmark after benchmark; a run's ``choice`` (option index, -1
    none) and ``outcome`` (1 right, 0 wrong, 2 failed, -1 not answered) follow its benchmark's
    question order; ``raw`` / ``shown`` are sparse (local index -> string index)."""
    strings = _Strings()
    bench_names = [b["name"] for b in grid["benchmarks"]]
    first_run = {}
    for run in runs:
        first_run.setdefault(grid["run_benchmark"][run.label], run)
    columns: dict[str, list] = {k: [] for k in (
        "b", "id", "video", "start", "stop", "narration", "verb", "noun", "answer", "options",
        "image",
    )}  # fmt: skip
    for b, bench in enumerate(bench_names):
        for q in first_run[bench].questions:
            columns["b"].append(b)
            columns["id"].append(q.id)
            columns["video"].append(strings(q.video_id))
            columns["start"].append(q.start)
            columns["stop"].append(q.stop)
            columns["narration"].append(strings(q.narration))
            columns["verb"].append(q.verb_class if q.verb_class is not None else q.action_class)
            columns["noun"].append(q.noun_class)
            columns["answer"].append(q.answer_index)
            flat = []
            for o in q.options:
                flat += [strings(o.text), strings(o.action_id), strings(o.source)]
            columns["options"].append(flat)
            image = (images or {}).get(segment(q))
            columns["image"].append(strings(image) if image else -1)
    run_rows = []
    for run in runs:
        bench = grid["run_benchmark"][run.label]
        choice, outcome, raw, shown = [], [], {}, {}
        gave_up = _failures(run)
        for i, q in enumerate(first_run[bench].questions):
            record = run.predictions.get(q.id) or gave_up.get(q.id)
            if record is None:
                choice.append(-1)
                outcome.append(-1)
                continue
            if failed(record):
                choice.append(-1)
                outcome.append(2)
                raw[i] = strings(_failure_text(record)[:RAW_LIMIT])
                continue
            index = record.get("choice")
            choice.append(index if isinstance(index, int) else -1)
            outcome.append(1 if record["correct"] else 0)
            text = str(record.get("raw", ""))[:RAW_LIMIT]
            if text.strip() != (letter(index) if isinstance(index, int) else ""):
                raw[i] = strings(text)
            mapped = _shown(record)
            if mapped is not None:
                shown[i] = strings(mapped)
        run_rows.append({
            "label": run.label, "bench": bench_names.index(bench),
            "model": grid["run_model"][run.label], "choice": choice, "outcome": outcome,
            "raw": raw, "shown": shown,
        })  # fmt: skip
    verb_names, noun_names = names or ({}, {})
    return {
        "benchmarks": [{"name": b, "count": len(first_run[b].questions)} for b in bench_names],
        "questions": columns,
        "runs": run_rows,
        "strings": strings.items,
        "verb_names": {str(k): v for k, v in verb_names.items()},
        "noun_names": {str(k): v for k, v in noun_names.items()},
    }


def _json_block(data: dict) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` left as such."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}"


def _findings_html(findings: list[dict], blind: Sequence[dict] = ()) -> str:
    if not findings and not blind:
        return "<p class='muted'>No claim can be tested on these runs.</p>"
    rows = []
    for f in findings:
        verdict = "held" if f["held"] else "not held"
        rows.append(
            f"<tr><td>{_e(f['claim'])}</td>"
            f"<td class='num'>{100 * f['effect']:+.1f} points</td>"
            f"<td class='num'>{_pct(f['accuracy_a'])}% vs {_pct(f['accuracy_b'])}%</td>"
            f"<td>{f['questions']} questions, right only in the first {f['a_only']}, only in "
            f"the second {f['b_only']}; exact McNemar p = {f['p_value']:.2g}</td>"
            f"<td class='{verdict.replace(' ', '-')}'><b>{verdict}</b></td></tr>"
        )
    for b in blind:  # verbnoun.bench.audit.answerable_without_looking
        low, high = b["ci95"]
        rows.append(
            f"<tr class='blind'><td>answerable without looking: {_e(b['benchmark'])}</td>"
            f"<td class='num'>{100 * b['gain']:+.1f} points</td>"
            f"<td class='num'>{_pct(b['accuracy'])}% vs {_pct(b['chance'])}% chance</td>"
            f"<td>best of {b['rules']} blind rules: {_e(b['rule'])}, 95% interval "
            f"{_pct(low)}-{_pct(high)}%, cross-fitted on the benchmark's own questions (two "
            f"folds by video; <code>verbnoun mqa audit</code>); above chance: one-sided "
            f"binomial p = {b['p_value']:.2g}, Bonferroni over the rules</td>"
            f"<td><b>{'yes' if b['answerable'] else 'no'}</b></td></tr>"
        )
    alpha = findings[0]["alpha"] if findings else 0.05
    return (
        "<table id='findings'><tr><th>claim</th><th>effect</th><th>accuracy</th>"
        f"<th>paired test</th><th>p &lt; {alpha:g}</th></tr>{''.join(rows)}"
        "</table>"
    )


def _pivot_html(grid: dict) -> str:
    head = "".join(f"<th>{_e(b['name'])} <small>({_e(b['kind'])})</small></th>"
                   for b in grid["benchmarks"])  # fmt: skip
    rows = []
    for model in grid["models"]:
        tag = " <span class='tag'>baseline</span>" if model["baseline"] else ""
        cells = []
        for bench in grid["benchmarks"]:
            cell = grid["cells"][model["name"]].get(bench["name"])
            if cell is None:
                cells.append("<td class='muted'>-</td>")
                continue
            low, high = cell["ci95"]
            failed_note = f", {cell['failed']} failed" if cell["failed"] else ""
            cells.append(
                f"<td class='num'>{_pct(cell['accuracy'])} <small class='muted'>"
                f"[{_pct(low)}-{_pct(high)}], n={cell['n']}{failed_note}</small></td>"
            )
        rows.append(f"<tr><th>{_e(model['name'])}{tag}</th>{''.join(cells)}</tr>")
    return f"<table id='pivot'><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"


def _multilabel_section(comparison: dict) -> list[str]:
    """The multi-label table (runs on multi-select questions: Jaccard accuracy, exact match,
    mAP with 95% intervals, macro F1); nothing when no run has one."""
    rows = [r for r in comparison["runs"] if r.get("multilabel")]
    if not rows:
        return []

    def figure(entry: dict | None) -> str:
        if not entry or entry["value"] is None or entry["value"] != entry["value"]:
            return "<td class='muted'>-</td>"
        low, high = entry["ci95"]
        return (f"<td class='num'>{_pct(entry['value'])} <small class='muted'>[{_pct(low)}-"
                f"{_pct(high)}]</small></td>")  # fmt: skip

    body = "".join(
        f"<tr><td>{_e(Path(r['run']).name)}</td><td>{_e(r['model'])}</td>"
        f"<td>{_e(r['multilabel']['answer_set'] or '-')}</td>"
        f"<td class='num'>{r['multilabel']['n']}</td>{figure(r['multilabel']['jaccard'])}"
        f"<td class='num'>{_pct(r['multilabel']['exact_match']['value'])}</td>"
        f"{figure(r['multilabel']['map'])}<td class='num'>"
        + (_pct(r["multilabel"]["macro_f1"]) if r["multilabel"]["macro_f1"] is not None else "-")
        + "</td></tr>"
        for r in rows
    )
    return [
        "<h2>several behaviours per clip (%)</h2>",
        "<p class='muted'>Multi-select questions: each reply read as a set (answer set); Jaccard "
        "accuracy is the mean over clips of |predicted &cap; true| / |predicted &cup; true|, "
        "exact match the share of clips whose set is the truth, mAP the mean average precision "
        "over classes from option scores; 95% bootstrap intervals.</p>",
        "<table id='multilabel'><tr><th>run</th><th>model</th><th>answer set</th><th>clips</th>"
        "<th>Jaccard</th><th>exact match</th><th>mAP</th><th>macro F1</th></tr>"
        f"{body}</table>",
    ]


def _pairs_html(pairs: list[dict]) -> str:
    if not pairs:
        return "<p class='muted'>No pair of runs on the same benchmark.</p>"
    rows = "".join(
        f"<tr><td>{_e(p['benchmark'])}</td><td>{_e(p['model_a'])}</td>"
        f"<td>{_e(p['model_b'])}</td><td>{_e(p['kind'])}</td><td class='num'>{p['questions']}"
        f"</td><td class='num'>{100 * p['effect']:+.1f}</td><td class='num'>{p['a_only']}</td>"
        f"<td class='num'>{p['b_only']}</td><td class='num'>{p['p_value']:.3g}</td></tr>"
        for p in pairs
    )
    return (
        "<table id='pairs'><tr><th>benchmark</th><th>model</th><th>against</th><th></th>"
        "<th>questions</th><th>difference (points)</th><th>right in model only</th>"
        f"<th>right in other only</th><th>p</th></tr>{rows}</table>"
    )


def _matrix_html(comparison: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(Path(p['a']).name)}</td><td>{_e(Path(p['b']).name)}</td>"
        f"<td class='num'>{p['questions']}</td><td class='num'>{p['a_only']}</td>"
        f"<td class='num'>{p['b_only']}</td><td class='num'>{p['p_value']:.3g}</td></tr>"
        for p in comparison["paired"]
    )
    runs = "".join(
        f"<tr><td>{_e(Path(r['run']).name)}</td><td>{_e(r['model'])}</td>"
        f"<td class='num'>{r['answered']}/{r['questions']}</td>"
        f"<td class='num'>{_pct(r['unparsed_rate'])}%</td></tr>"
        for r in comparison["runs"]
    )
    return (
        f"<details><summary>all {len(comparison['runs'])} runs</summary><table><tr><th>run</th>"
        f"<th>adapter</th><th>answered</th><th>unparsed</th></tr>{runs}</table></details>"
        f"<details id='matrix'><summary>all {len(comparison['paired'])} paired tests (every "
        "pair of runs on the same questions, exact McNemar)</summary><table><tr><th>a</th>"
        "<th>b</th><th>questions</th><th>right in a only</th><th>right in b only</th>"
        f"<th>p</th></tr>{rows}</table></details>"
    )


BROWSER = """
<h2 id='browser'>questions (<span id='shown'>0</span> of {total} shown)</h2>
<div id='controls'>
<label>benchmark <select id='f-bench'></select></label>
<label>run <select id='f-run'></select></label>
<label>outcome <select id='f-outcome'></select></label>
<label>verb <select id='f-verb'></select></label>
<label>noun <select id='f-noun'></select></label>
<label>text <input id='f-text' type='search' size='14'></label>
<span id='pager'><button id='prev' type='button'>&larr; previous</button>page
<span id='page'>1</span> of <span id='pages'>1</span><button id='next' type='button'>next
&rarr;</button></span>
<div class='muted'><small>keys: j / k next / previous question, n / p (or &rarr; / &larr;)
next / previous page, / text filter</small></div>
</div>
<div id='questions'></div>
"""


def _blind(runs: Sequence[Run], grid: dict) -> list[dict]:
    """Each benchmark's "answerable without looking" finding (too small ones left out)."""
    from verbnoun.bench.audit import answerable_without_looking

    found = []
    for bench in grid["benchmarks"]:
        run = next(r for r in runs if grid["run_benchmark"][r.label] == bench["name"])
        finding = answerable_without_looking(bench["name"], run.questions)
        if finding is not None:
            found.append(finding)
    return found


def render_report(
    runs: Sequence[Run],
    *,
    title: str = "verbnoun evaluation report",
    claims: Sequence[Claim] | None = None,
    images: dict[tuple, str] | None = None,
    image_dir: str = "",
    image_size: tuple[int, int] = (0, 0),
    names: tuple[dict, dict] | None = None,
    page_size: int = PAGE_SIZE,
) -> str:
    """The whole page as a string (``images``: :func:`segment` -> file under ``image_dir``)."""
    import base64

    runs = list(runs)
    grid = layout(runs)
    findings = check_claims(claims if claims is not None else default_claims(runs, grid), runs)
    comparison = compare(runs)
    chart = base64.b64encode(_png(chart_figure(grid))).decode("ascii")
    data = question_data(runs, grid, images=images, names=names)
    data.update(page_size=page_size, image_dir=image_dir, image_size=list(image_size))
    total = len(data["questions"]["id"])
    benches = ", ".join(f"{b['name']} ({b['count']})" for b in data["benchmarks"])
    return "\n".join([
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='muted'>{len(runs)} runs of {len(grid['models'])} models on "
        f"{len(grid['benchmarks'])} benchmarks: {_e(benches)} questions.</p>",
        "<h2>findings</h2>", _findings_html(findings, _blind(runs, grid)),
        "<h2>accuracy (%)</h2>", _pivot_html(grid),
        f"<img id='accuracy-plot' src='data:image/png;base64,{chart}' alt='accuracy chart'>",
        *_multilabel_section(comparison),
        "<h2>paired tests that answer a question</h2>",
        "<p class='muted'>On each benchmark: each model against each baseline and against each "
        "other model (exact McNemar on the questions both answered).</p>",
        _pairs_html(relevant_pairs(runs, grid)), _matrix_html(comparison),
        BROWSER.format(total=total),
        f"<script type='application/json' id='report-data'>{_json_block(data)}</script>",
        f"<script>{SCRIPT}</script>",
        "</body></html>\n",
    ])  # fmt: skip


def class_names(dataset) -> tuple[dict, dict]:
    """Verb and noun names of a data set (an annotation folder or a description)."""
    from verbnoun.data.dataset import as_dataset

    source = as_dataset(dataset)
    if source is None:
        return {}, {}
    verbs, nouns = source.verbs(), source.nouns()
    return (
        {i: verbs.display(i) for i in range(len(verbs))},
        {i: nouns.display(i) for i in range(len(nouns))},
    )


def write_report(
    runs: Sequence[Run],
    out: str | Path,
    *,
    frames_of: Callable[[Question], object] | None = None,
    frame_settings: dict | None = None,
    image_format: str = "jpeg",
    dataset=None,
    progress: bool = False,
    **options,
) -> Path:
    """Write the page (atomically) and, given ``frames_of``, its contact sheets in
    ``OUT_files/frames/``; returns the page's path. ``frame_settings`` (frames, size, layout)
    names what ``frames_of`` returns, so that sheets are redone when it changes; ``dataset``
    (annotation folder or description) names verbs and nouns; ``options`` go to
    :func:`render_report`."""
    out = Path(out)
    runs = list(runs)
    if not runs:
        from verbnoun.errors import VerbnounError

        raise VerbnounError("report: no runs given")
    images, size, image_dir = None, (0, 0), ""
    if frames_of is not None:
        folder = out.with_name(out.stem + "_files") / "frames"
        grid = layout(runs)
        seen, questions = set(), []
        for run in runs:
            bench = grid["run_benchmark"][run.label]
            if bench not in seen:
                seen.add(bench)
                questions += run.questions
        images, size = write_thumbnails(
            questions, frames_of, folder, image_format=image_format,
            settings=frame_settings, progress=progress,
        )  # fmt: skip
        image_dir = f"{folder.parent.name}/{folder.name}"
    names = class_names(dataset) if dataset is not None else None
    page = render_report(
        runs, images=images, image_dir=image_dir, image_size=size, names=names, **options,
    )  # fmt: skip
    atomic_write_bytes(out, page.encode("utf-8"))
    return out
